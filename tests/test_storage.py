"""Storage on its own: migrations, the blob store, job-row transitions, and PostgreSQL / Redis
where they run (required in CI: ATELIER_REQUIRE_SERVICES=1)."""
import os
import subprocess
import sys
import uuid

import pytest

from storage import jobs
from storage.blobs import LocalBlobStore, blob_key
from storage.db import connect_database, migrate
from storage.models import MODELS, Artifact, Job, User
from tests.conftest import need

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


MIGRATIONS = ["0001_initial", "0002_accounts", "0003_video", "0004_workers", "0005_big_seeds",
              "0006_stripe_event_order", "0007_per_owner_artifacts", "0008_enqueued_at", "0009_job_generations",
              "0010_job_preview", "0011_gallery_search", "0012_final_outputs"]


def test_migrations_create_the_tables_once(tmp_path):
    db = connect_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert migrate(db) == MIGRATIONS
    assert migrate(db) == []
    assert {m._meta.table_name for m in MODELS} == set(db.get_tables()) - {"schema_migration"}


def test_accounts_migration_keeps_what_was_there(tmp_path):
    """A database from before accounts: its artifacts stay visible to their owner, the owner becomes admin."""
    from playhouse.migrations import Runner

    from storage.artifacts import find_artifact
    from storage.db import MIGRATIONS as FOLDER
    db = connect_database(f"sqlite:///{tmp_path / 'old.db'}")
    with db.connection_context():
        Runner(db, str(FOLDER)).up(target="0001_initial")
        db.execute_sql('INSERT INTO "user" (email, name, role, tier, created_at) VALUES (?, ?, ?, ?, ?)',
                       ("owner@localhost", "Local owner", "owner", "free", 1.0))
        db.execute_sql("INSERT INTO artifact (id, owner_id, kind, mime, size, width, height, blob_key, plan_hash, "
                       "step_id, output_index, created_at) VALUES (?, 1, 'upload', 'image/png', 3, 1, 1, ?, '', '', "
                       "0, 2.0)", ("a" * 64, "a" * 64 + ".png"))
    assert migrate(db) == MIGRATIONS[1:]
    with db.bind_ctx(MODELS):
        owner = User.get_by_id(1)
        assert (owner.role, owner.balance, owner.is_guest) == ("admin", 0.0, False)
        stranger = User.create(email="x@test", role="user")
        assert find_artifact(owner, "a" * 64) is not None
        assert find_artifact(stranger, "a" * 64) is None
        assert (Artifact.get_by_id("a" * 64).frames, Artifact.get_by_id("a" * 64).fps) == (0, 0.0)   # 0003_video


def test_migrate_command(tmp_path):
    env = {**os.environ, "ATELIER_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "storage.migrate"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "applied: " + ", ".join(MIGRATIONS) in out.stdout
    assert (tmp_path / "atelier.db").is_file()


def test_blobs_are_named_by_content_and_stored_once(tmp_path):
    store = LocalBlobStore(tmp_path)
    key = store.put(b"hello", ".png")
    assert key == blob_key(b"hello", ".png") and key.endswith(".png")
    mtime = store.path(key).stat().st_mtime_ns
    assert store.put(b"hello", ".png") == key
    assert store.path(key).stat().st_mtime_ns == mtime
    assert store.get(key) == b"hello"
    assert list(tmp_path.rglob(".tmp-*")) == []
    with pytest.raises(ValueError, match="Not a blob key"):
        store.path("../../etc/passwd")
    with pytest.raises(KeyError):
        store.get("0" * 64)


def job_row_lifecycle(db) -> int:
    """Claim once, finish once, cancel rules; the same on SQLite and PostgreSQL. Returns the jobs made."""
    with db.bind_ctx(MODELS):
        user = User.create(email=f"{uuid.uuid4().hex}@test")
        job = jobs.create_job(user, spec="{}", plan="{}", plan_hash="h")
        assert jobs.claim(job.id, "a:1") is not None
        assert jobs.claim(job.id, "b:2") is None                  # taken once
        jobs.set_progress(job.id, step=3, steps=10, node=1, nodes=1)
        assert jobs.finish(job.id, "succeeded", outputs=["x"]) is True
        assert jobs.finish(job.id, "failed", error="late") is False   # finished once
        row = Job.get_by_id(job.id)
        assert (row.status, row.worker, row.attempts, row.progress_step, row.artifact_ids) == \
            ("succeeded", "a:1", 1, 3, ["x"])
        queued = jobs.create_job(user, spec="{}", plan="{}", plan_hash="h")
        assert jobs.request_cancel(queued.id) == "cancelled"
        assert jobs.claim(queued.id, "a:1") is None                # a cancelled job never starts
        other = User.create(email=f"{uuid.uuid4().hex}@test")
        assert jobs.find_job(other, job.id) is None                # someone else's job looks missing
        assert jobs.find_job(user, job.id).id == job.id
        return Job.select().where(Job.owner == user).count()


def test_job_rows_on_sqlite(tmp_path):
    db = connect_database(f"sqlite:///{tmp_path / 'rows.db'}")
    migrate(db)
    assert job_row_lifecycle(db) == 2


def test_job_rows_on_postgresql(postgres_url):
    db = connect_database(postgres_url)
    assert migrate(db) == MIGRATIONS
    assert job_row_lifecycle(db) == 2
    db.close()


def test_redis_queue_keeps_priorities():
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as e:
        need(f"Redis is not reachable on 127.0.0.1:6379 ({e})")
    from queueing.huey_app import make_huey
    huey = make_huey(url, "unused")
    huey.flush()
    try:
        order = []
        task = huey.task(name="note")(order.append)
        task("low", priority=0)
        task("high", priority=10)
        while (item := huey.dequeue()) is not None:
            huey.execute(item)
        assert order == ["high", "low"]
    finally:
        huey.flush()


def test_a_separate_worker_process_runs_jobs(atelier, owner, tmp_path, settings, catalogue_file):
    """`python -m queueing.worker` takes jobs from the queue the web side writes to."""
    from pipelines import Txt2Img, WorkflowSpec
    from queueing import JobService, make_huey, register_tasks
    queue_url = f"sqlite:///{tmp_path / 'worker-queue.db'}"
    env = {**os.environ, "ATELIER_DATA_DIR": str(settings.data_dir), "ATELIER_QUEUE_URL": queue_url,
           "ATELIER_CATALOGUE": str(catalogue_file), "ATELIER_DEVICE": "cpu"}
    worker = subprocess.Popen([sys.executable, "-m", "queueing.worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_job = register_tasks(make_huey(queue_url, tmp_path), None)       # this side only enqueues
        web = JobService(atelier.service.compiler, lambda job_id, priority: run_job(job_id, priority=priority),
                         atelier.service.blobs)
        job = web.submit(owner, WorkflowSpec.single(Txt2Img(prompt="made elsewhere", seed=4)))
        done = web.wait(owner, job.id, timeout=90)
        assert done.status == "succeeded", done.error
        assert done.worker.endswith(f":{worker.pid}")
        assert len(done.artifact_ids) == 1
    finally:
        worker.terminate()
        try:
            worker.wait(3)
        except subprocess.TimeoutExpired:      # the consumer may still be joining its threads; no need to wait
            worker.kill()
            worker.wait(5)
