"""/metrics, /healthz, /readyz and JSON logs (issue 6, item 5), on the session app's real SQLite
database, Huey queue and blob folder, through a FastAPI app that has only the operator's routes."""
from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import types
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines import Txt2Img, WorkflowSpec
from queueing.logs import JobIdFilter, current_job_id, install_huey_job_context, job_context
from queueing.metrics import Metrics, serve_worker_metrics
from queueing.observability import Readiness, blob_check, database_check, queue_check, workers_check
from storage.models import Job
from web.logs import JsonFormatter, TextFormatter, make_handler
from web.ops import install_ops_routes

ROOT = pathlib.Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label pairs): value} of a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, tuple(sorted(labels.items()))))


def app_with(metrics: Metrics, readiness: Readiness, token: str = ""):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    install_ops_routes(app, metrics, readiness, metrics_token=token)
    return TestClient(app)


def real_checks(atelier) -> dict:
    from storage.db import database

    return {"database": database_check(database), "queue": queue_check(atelier.huey),
            "blobs": blob_check(atelier.service.blobs)}


@pytest.fixture(scope="module")
def ops(atelier):
    """The operator's routes over the session app's database, queue and blobs."""
    with app_with(Metrics(), Readiness(real_checks(atelier))) as client:
        yield client


def run_job(atelier, owner, prompt: str) -> Job:
    job = atelier.service.submit(owner, WorkflowSpec.single(Txt2Img(prompt=prompt, steps=2)))
    return atelier.service.wait(owner, job.id, timeout=60)


def scrape_matching_db(ops, db_count, name: str, **labels) -> tuple[float, int]:
    """(scraped value, the database's count) taken when the database did not change around the scrape."""
    for _ in range(20):
        before = db_count()
        scraped = value(samples(ops.get("/metrics").text), name, **labels)
        if db_count() == before:
            return scraped, before
    raise AssertionError("the job table kept changing during the scrape")


def test_jobs_by_state_are_counted_from_the_job_table(atelier, owner, ops):
    def succeeded():
        return Job.select().where(Job.status == "succeeded").count()

    first, db_first = scrape_matching_db(ops, succeeded, "atelier_jobs", state="succeeded")
    assert first == db_first
    jobs = [run_job(atelier, owner, f"metrics {i}") for i in range(2)]
    assert [j.status for j in jobs] == ["succeeded", "succeeded"]
    then, db_then = scrape_matching_db(ops, succeeded, "atelier_jobs", state="succeeded")
    assert then == db_then and then >= first + 2
    scraped = samples(ops.get("/metrics").text)
    for state in ("queued", "running", "succeeded", "failed", "cancelled"):
        assert value(scraped, "atelier_jobs", state=state) is not None, state
    assert value(scraped, "atelier_job_table_up") == 1


def test_queue_depth_by_priority_counts_queued_rows(atelier, owner, ops):
    from storage.jobs import create_job

    from queueing import settlement

    made = [create_job(owner, spec="", plan="{}", plan_hash="0" * 64, priority=priority)
            for priority in (987, 987, 986, 987)]
    Job.update(created_at=time.time() - 120).where(Job.id == made[0].id).execute()
    assert settlement.cancel(made[3].id) == "cancelled"                 # no longer queued: not counted
    try:
        queued, db_queued = scrape_matching_db(ops, lambda: Job.select().where(Job.status == "queued").count(),
                                               "atelier_jobs", state="queued")
        assert queued == db_queued >= 3
        scraped = samples(ops.get("/metrics").text)
        assert value(scraped, "atelier_queue_depth", priority="987") == 2
        assert value(scraped, "atelier_queue_depth", priority="986") == 1
        assert 120 <= value(scraped, "atelier_queue_oldest_age_seconds", priority="987") < 180
        assert value(scraped, "atelier_queue_oldest_age_seconds", priority="986") < 60
    finally:
        Job.delete().where(Job.id.in_([j.id for j in made])).execute()
    assert value(samples(ops.get("/metrics").text), "atelier_queue_depth", priority="987") is None


def test_job_histograms_come_from_the_rows_timestamps(atelier, owner):
    from queueing import settlement
    from storage.jobs import create_job

    metrics = Metrics(job_table=False, process=False)
    job = run_job(atelier, owner, "timed")
    assert job.status == "succeeded"
    metrics.job_started(job)
    metrics.job_finished(job.id)
    never_started = create_job(owner, spec="", plan="{}", plan_hash="0" * 64)
    assert settlement.cancel(never_started.id) == "cancelled"
    metrics.job_finished(never_started)
    metrics.model_loaded(3.2, "sd15")
    metrics.job_requeued("lease_expired")

    scraped = samples(metrics.scrape().decode())
    duration = job.finished_at - job.started_at
    assert value(scraped, "atelier_job_duration_seconds_count", status="succeeded") == 1
    assert value(scraped, "atelier_job_duration_seconds_sum", status="succeeded") == pytest.approx(duration)
    assert value(scraped, "atelier_job_duration_seconds_bucket", status="succeeded", le="+Inf") == 1
    assert value(scraped, "atelier_job_duration_seconds_bucket", status="succeeded", le="0.1") == (duration <= 0.1)
    assert value(scraped, "atelier_job_duration_seconds_bucket", status="succeeded", le="3600.0") == 1
    assert value(scraped, "atelier_job_duration_seconds_count", status="cancelled") == 0    # never ran
    assert value(scraped, "atelier_job_duration_seconds_count", status="failed") == 0
    wait = job.started_at - job.created_at
    assert value(scraped, "atelier_job_queue_wait_seconds_count", priority="0") == 1
    assert value(scraped, "atelier_job_queue_wait_seconds_sum", priority="0") == pytest.approx(wait)
    assert value(scraped, "atelier_model_load_seconds_bucket", family="sd15", le="2.5") == 0
    assert value(scraped, "atelier_model_load_seconds_bucket", family="sd15", le="5.0") == 1
    assert value(scraped, "atelier_job_requeues_total", reason="lease_expired") == 1
    assert not any(name.startswith("atelier_jobs") or name.startswith("process_") for name, _ in scraped)


def test_a_worker_serves_its_own_metrics_on_its_own_port():
    metrics = Metrics(job_table=False)
    metrics.model_loaded(0.7, "sdxl")
    server, thread = serve_worker_metrics(0, metrics, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as response:
            scraped = samples(response.read().decode())
    finally:
        server.shutdown()
        thread.join(5)
    assert value(scraped, "atelier_model_load_seconds_bucket", family="sdxl", le="1.0") == 1
    assert value(scraped, "process_cpu_seconds_total") is not None
    assert not any(name.startswith("atelier_jobs") for name, _ in scraped)


def test_metrics_can_ask_for_a_bearer_token(atelier):
    with app_with(Metrics(process=False), Readiness({}), token="s3cret-token") as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert answer.status_code == 200 and "atelier_jobs{" in answer.text
        assert client.get("/healthz").json() == {"ok": True}


def test_healthz_and_readyz_when_everything_answers(ops):
    assert ops.get("/healthz").json() == {"ok": True}
    answer = ops.get("/readyz")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and list(body["checks"]) == ["database", "queue", "blobs"]
    assert all(check["ok"] and check["seconds"] < 5 for check in body["checks"].values())
    assert isinstance(body["checks"]["queue"]["detail"], int)        # SqliteHuey: pending tasks


def test_readyz_names_a_database_that_does_not_answer(atelier, tmp_path):
    from peewee import SqliteDatabase

    checks = real_checks(atelier) | {"database": database_check(SqliteDatabase(str(tmp_path / "gone" / "x.db")))}
    with app_with(Metrics(process=False), Readiness(checks)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ok"] is False
    assert body["checks"]["database"]["ok"] is False
    assert "unable to open database file" in body["checks"]["database"]["error"]
    assert body["checks"]["queue"]["ok"] and body["checks"]["blobs"]["ok"]


def broken_copies(atelier, folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """The session's SQLite database copied whole (SQLite's backup API: a plain copy of a live WAL
    database may be torn), then two copies of that: one whose header is garbage, one cut in half."""
    import sqlite3

    copies = {name: folder / f"{name}.db" for name in ("healthy", "garbage", "truncated")}
    source, copy = sqlite3.connect(atelier.settings.data_dir / "atelier.db"), sqlite3.connect(copies["healthy"])
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    for name in ("garbage", "truncated"):
        shutil.copyfile(copies["healthy"], copies[name])
    with open(copies["garbage"], "r+b") as f:
        f.write(b"not a database header any more" * 4)
    with open(copies["truncated"], "r+b") as f:
        f.truncate(copies["healthy"].stat().st_size // 2)
    return copies


def test_readyz_reads_the_database_so_a_broken_file_answers_503(atelier, tmp_path):
    """Issue 11, item 5: `SELECT 1` never reads SQLite's file, so /readyz said ok on a file that was no
    longer a database."""
    from peewee import SqliteDatabase

    copies = broken_copies(atelier, tmp_path)
    assert database_check(SqliteDatabase(str(copies["healthy"])))() is None
    garbage = SqliteDatabase(str(copies["garbage"]))
    assert garbage.execute_sql("SELECT 1").fetchone() == (1,)          # what the check ran before: no error
    garbage.close()
    expected = {"garbage": "file is not a database", "truncated": "database disk image is malformed"}
    for name, error in expected.items():
        checks = real_checks(atelier) | {"database": database_check(SqliteDatabase(str(copies[name])))}
        with app_with(Metrics(process=False), Readiness(checks)) as client:
            answer = client.get("/readyz")
        assert answer.status_code == 503, (name, answer.text)
        body = answer.json()["checks"]
        assert not body["database"]["ok"] and error in body["database"]["error"], (name, body)
        assert body["queue"]["ok"] and body["blobs"]["ok"]


def test_readyz_reports_the_running_workers_and_never_fails_for_want_of_one(atelier):
    from storage.db import database
    from storage.models import Worker

    now = time.time()
    names = {"alive": "test:readyz-alive", "stopping": "test:readyz-stopping", "gone": "test:readyz-gone"}
    Worker.create(name=names["alive"], started_at=now, heartbeat_at=now)
    Worker.create(name=names["stopping"], started_at=now, heartbeat_at=now, stopping_at=now)
    Worker.create(name=names["gone"], started_at=now - 700, heartbeat_at=now - 600)
    try:
        ok, checks = Readiness({"workers": workers_check(database, 60, runs_jobs=False)}).run()
    finally:
        Worker.delete().where(Worker.name.in_(list(names.values()))).execute()
    report = checks["workers"]["detail"]
    assert ok and checks["workers"]["ok"]
    assert {names["alive"], atelier.executor.worker} <= set(report["names"])     # this process's own consumer too
    assert not {names["stopping"], names["gone"]} & set(report["names"])
    assert report["count"] == len(report["names"]) and "warning" not in report

    # No worker beat in the last millisecond: still ready, with a warning where this process runs no jobs.
    for runs_jobs in (False, True):
        ok, checks = Readiness({"workers": workers_check(database, 0.001, runs_jobs=runs_jobs)}).run()
        report = checks["workers"]["detail"]
        assert ok and (report["count"], report["names"]) == (0, [])
        assert ("warning" in report) is (not runs_jobs)
    assert report == {"count": 0, "names": []}


def test_the_app_wires_the_workers_report_into_readyz(atelier):
    import httpx

    answer = httpx.get(atelier.url + "readyz", timeout=10)
    assert answer.status_code == 200, answer.text
    checks = answer.json()["checks"]
    assert list(checks) == ["database", "queue", "blobs", "workers"]
    assert atelier.executor.worker in checks["workers"]["detail"]["names"]


def test_readyz_names_an_unreachable_redis_queue_and_a_broken_blob_store(tmp_path):
    from huey import PriorityRedisHuey

    from storage.blobs import LocalBlobStore
    from tests.conftest import free_port

    blobs = LocalBlobStore(tmp_path / "blobs")
    shutil.rmtree(blobs.root)
    blobs.root.write_text("a file where the blob folder was")
    redis = PriorityRedisHuey("atelier-ready", url=f"redis://127.0.0.1:{free_port()}/0", results=False)
    ok, checks = Readiness({"queue": queue_check(redis), "blobs": blob_check(blobs)}).run()
    assert not ok
    assert not checks["queue"]["ok"] and "ConnectionError" in checks["queue"]["error"]
    assert not checks["blobs"]["ok"] and checks["blobs"]["error"].startswith(("NotADirectoryError", "FileExistsError"))


def test_readyz_pings_a_real_redis_queue():
    from huey import PriorityRedisHuey
    import redis as redis_client

    from tests.conftest import need

    url = "redis://127.0.0.1:6379/15"
    try:
        redis_client.Redis.from_url(url, socket_timeout=2).ping()
    except redis_client.RedisError as e:
        need(f"Redis is not reachable on 127.0.0.1:6379 ({e})")
    ok, checks = Readiness({"queue": queue_check(PriorityRedisHuey("atelier-ready", url=url))}).run()
    assert ok and checks["queue"]["ok"] and "detail" not in checks["queue"]


def test_a_hung_check_fails_readyz_in_time_and_is_not_started_twice():
    release, calls = threading.Event(), []

    def hangs():
        calls.append(1)
        release.wait(10)

    readiness = Readiness({"hangs": hangs, "fine": lambda: "yes"}, timeout=0.2)
    try:
        for _ in range(2):
            started = time.monotonic()
            ok, checks = readiness.run()
            assert time.monotonic() - started < 1.5
            assert not ok and checks["hangs"] == {"ok": False, "seconds": 0.2, "error": "no answer in 0.2 s"}
            assert checks["fine"]["ok"] and checks["fine"]["detail"] == "yes"
        assert len(calls) == 1                      # the second probe waited on the first
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while not readiness.run()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert readiness.run()[0] and len(calls) >= 2


def test_gpu_memory_is_reported_only_where_cuda_is_in_use(monkeypatch):
    initialized = [False]
    cuda = types.SimpleNamespace(
        is_available=lambda: True, is_initialized=lambda: initialized[0], device_count=lambda: 2,
        memory_allocated=lambda i: 1000 + i, memory_reserved=lambda i: 2000 + i,
        get_device_properties=lambda i: types.SimpleNamespace(total_memory=80_000 + i))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    metrics = Metrics(job_table=False, process=False)
    assert "atelier_gpu_memory_bytes" not in metrics.scrape().decode()        # no CUDA context yet: none made
    initialized[0] = True
    scraped = samples(metrics.scrape().decode())
    assert value(scraped, "atelier_gpu_memory_bytes", device="cuda:1", kind="allocated") == 1001
    assert value(scraped, "atelier_gpu_memory_bytes", device="cuda:0", kind="reserved") == 2000
    assert value(scraped, "atelier_gpu_memory_bytes", device="cuda:1", kind="total") == 80_001
    monkeypatch.delitem(sys.modules, "torch")
    assert "atelier_gpu_memory_bytes" not in metrics.scrape().decode()


def test_the_web_side_of_observability_never_imports_torch(tmp_path):
    script = f"""
import sys
from storage.db import open_database
from queueing.metrics import Metrics
from queueing.observability import Readiness, database_check
from web.ops import install_ops_routes
from storage.db import database
open_database("sqlite:///{tmp_path / 'web.db'}")
text = Metrics().scrape().decode()
assert 'atelier_jobs{{state="queued"}} 0.0' in text, text
assert Readiness({{"database": database_check(database)}}).run()[0]
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.fixture
def log_lines():
    """A logger "atelier.test.observability" (and Huey's) writing JSON lines into a buffer; call the
    fixture's value to get the lines parsed."""
    buffer = io.StringIO()
    handler = make_handler(json=True, stream=buffer, filters=(JobIdFilter(),))
    loggers = [logging.getLogger("atelier.test.observability"), logging.getLogger("huey")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    for lg, (level, propagate) in zip(loggers, saved):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


def test_json_lines_carry_the_job_id_inside_job_context_only(log_lines):
    log = logging.getLogger("atelier.test.observability")
    job_id, inner = uuid.uuid4().hex, uuid.uuid4().hex
    log.info("before any job")
    with job_context(job_id):
        log.info("loading %s", "demo-sd15")
        with job_context(inner):
            log.warning("a nested job")
        log.info("two\nlines", extra={"worker": "host:42"})
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("it broke")
    log.info("after the job")
    named = uuid.uuid4().hex
    log.info("job %s: queued (someone, plan abc)", named)
    log.info("plan %s stored", uuid.uuid4().hex)

    lines = log_lines()
    assert [line.get("job_id") for line in lines] == [None, job_id, inner, job_id, job_id, None, named, None]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert lines[1]["message"] == "loading demo-sd15" and lines[1]["level"] == "INFO"
    assert lines[1]["logger"] == "atelier.test.observability" and lines[1]["time"].endswith("Z")
    assert lines[3]["message"] == "two\nlines" and lines[3]["worker"] == "host:42"
    assert lines[4]["level"] == "ERROR" and "ZeroDivisionError" in lines[4]["exc_info"]
    assert "Traceback" in lines[4]["exc_info"] and "exc_info" not in lines[1]
    assert current_job_id() is None


def test_each_thread_logs_its_own_job(log_lines):
    log = logging.getLogger("atelier.test.observability")
    barrier = threading.Barrier(3)

    def work(job_id):
        with job_context(job_id):
            for step in range(3):
                barrier.wait(5)
                log.info("step %d", step)

    threads = [threading.Thread(target=work, args=(f"job-{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    lines = log_lines()
    assert len(lines) == 9
    assert sorted(line["job_id"] for line in lines) == sorted(f"job-{n}" for n in range(3) for _ in range(3))


def test_huey_tasks_run_inside_their_jobs_context(log_lines):
    from huey import MemoryHuey
    from huey.exceptions import CancelExecution

    huey = MemoryHuey("atelier-logs", immediate=True)
    log = logging.getLogger("atelier.test.observability")
    seen = []

    @huey.task(name="run_job")
    def run_job(job_id):
        seen.append(current_job_id())
        log.info("working")

    install_huey_job_context(huey)
    job_id = uuid.uuid4().hex
    run_job(job_id)
    assert seen == [job_id] and current_job_id() is None
    lines = log_lines()
    working = next(line for line in lines if line["message"] == "working")
    executed = next(line for line in lines if "executed in" in line["message"])
    assert working["job_id"] == executed["job_id"] == job_id

    @huey.pre_execute("refuse")
    def refuse(task):
        raise CancelExecution(retry=False)

    run_job(uuid.uuid4().hex)
    assert len(seen) == 1 and current_job_id() is None        # cancelled by a later hook: context left


def test_text_lines_name_the_job_once():
    record = logging.LogRecord("atelier", logging.INFO, __file__, 1, "loading %s", ("demo",), None)
    record.job_id = "abc123"
    assert TextFormatter().format(record).endswith("atelier: loading demo [job abc123]")
    record = logging.LogRecord("atelier", logging.INFO, __file__, 1, "job %s: queued", ("abc123",), None)
    record.job_id = "abc123"
    assert TextFormatter().format(record).endswith("atelier: job abc123: queued")
    assert json.loads(JsonFormatter().format(record))["job_id"] == "abc123"


def test_the_log_format_and_the_metrics_settings_come_from_the_settings():
    from configs import load_settings

    assert load_settings(environ={}).log_format == "text"
    assert load_settings(environ={"ATELIER_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ValueError, match=r"ATELIER_LOG_FORMAT / \[server\] log_format must be one of \('text', "
                                         r"'json'\), got 'yaml'"):
        load_settings(environ={"ATELIER_LOG_FORMAT": "yaml"})
    settings = load_settings(environ={"ATELIER_METRICS_TOKEN": "t0ken", "ATELIER_METRICS_PORT": "9109"})
    assert (settings.metrics_token, settings.worker_metrics_port) == ("t0ken", 9109)
    assert (load_settings(environ={}).metrics_token, load_settings(environ={}).worker_metrics_port) == ("", 0)
    script = """
import logging
from configs import load_settings
from queueing.logs import JobIdFilter, job_context
from web.logs import configure_logging
configure_logging(json=load_settings().log_format == "json", filters=(JobIdFilter(),))
with job_context("j1"):
    logging.getLogger("atelier").info("in a job")
logging.getLogger("uvicorn.error").warning("from uvicorn")
"""
    env = {**os.environ, "ATELIER_LOG_FORMAT": "json"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(line["logger"], line.get("job_id")) for line in lines] == [("atelier", "j1"), ("uvicorn.error", None)]
