"""/metrics (issue 6, item 5): job counts, queue depth and job histograms from the session app's real SQLite
job table, a worker's own metrics port, the bearer token, GPU memory only where CUDA is in use, and a web side
that never imports torch."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import time
import types
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines import Txt2Img, WorkflowSpec
from queueing.metrics import Metrics, serve_worker_metrics
from queueing.observability import Readiness
from storage.models import Job
from tests.ops import app_with

ROOT = pathlib.Path(__file__).resolve().parent.parent


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label pairs): value} of a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, tuple(sorted(labels.items()))))


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
