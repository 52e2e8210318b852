"""/healthz and /readyz (issue 6, item 5): each check on the session app's real database, queue and blobs, and
what /readyz says when one does not answer, is broken, or hangs."""
from __future__ import annotations

import pathlib
import shutil
import threading
import time

from queueing.metrics import Metrics
from queueing.observability import Readiness, blob_check, database_check, queue_check, workers_check
from tests.ops import app_with, real_checks


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
