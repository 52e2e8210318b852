"""Schema versions (issue 6): an older database upgraded in place on SQLite and PostgreSQL with its
rows kept, migrations run once when several processes start together, a database from a newer
Atelier refused, and the PostgreSQL pool giving its connections back."""
import os
import subprocess
import sys
import threading
import time

import pytest
from peewee import Table
from playhouse.migrations import Migration, Runner

from storage.db import (MIGRATIONS, SchemaTooNew, ThreadPooledPostgresqlDatabase, connect_database, database,
                        migrate, open_database, schema_status)
from storage.models import MODELS, Artifact, ArtifactOwner, Job, Lineage, User

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = [m.name for m in Migration.load_directory(str(MIGRATIONS))]
FUTURE = "9999_from_a_newer_atelier"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'atelier.db'}"
    return request.getfixturevalue("postgres_url")


def make_old_database(url: str, target: str = "0002_accounts"):
    """A database migrated up to `target` only, holding one user, one finished job and its artifact."""
    db = connect_database(url)
    with db.connection_context():
        Runner(db, str(MIGRATIONS)).up(target=target)
        # Every column as that schema had it: defaults are applied by the models, not by the database.
        Table("user").bind(db).insert(email="old@test", name="Old", role="admin", tier="pro", created_at=1.0,
                                      password_hash="", is_guest=False, balance=12.5, stripe_customer="",
                                      stripe_subscription="").execute()
        Table("job").bind(db).insert(id="j" * 32, owner_id=1, status="succeeded", spec="{}", plan="{}",
                                     plan_hash="p" * 64, credits=2.0, priority=0, progress_step=4,
                                     progress_steps=4, progress_node=1, progress_nodes=1, cancel_requested=False,
                                     error="", outputs='["' + "a" * 64 + '"]', result="{}", replay_of="",
                                     attempts=1, worker="old-host:1", created_at=2.0, started_at=2.5,
                                     finished_at=3.0).execute()
        Table("artifact").bind(db).insert(id="a" * 64, owner_id=1, kind="image", mime="image/png", size=3,
                                          width=64, height=64, blob_key="a" * 64 + ".png", job_id="j" * 32,
                                          plan_hash="p" * 64, step_id="n1", output_index=0, seed=7,
                                          created_at=3.0).execute()
    return db


def test_an_older_database_is_upgraded_in_place(url):
    db = make_old_database(url)
    later = NAMES[NAMES.index("0002_accounts") + 1:]
    assert [name for name, state in schema_status(db) if state == "pending"] == later
    assert migrate(db) == later
    assert migrate(db) == []
    assert schema_status(db) == [(name, "applied") for name in NAMES]
    with db.connection_context(), db.bind_ctx(MODELS):
        user = User.get(User.email == "old@test")
        assert (user.name, user.role, user.tier, user.balance) == ("Old", "admin", "pro", 12.5)
        assert (user.stripe_event_created, user.stripe_event_id) == (0, "")      # 0006_stripe_event_order's
        job = Job.get_by_id("j" * 32)      # every column the code knows is there
        assert (job.owner_id, job.status, job.credits, job.attempts, job.worker, job.finished_at) == \
            (user.id, "succeeded", 2.0, 1, "old-host:1", 3.0)
        assert job.progress_phase == ""                                           # 0003_video's default
        assert job.generations == 1                     # 0009_job_generations: an older job counts as one
        art = Artifact.get_by_id("a" * 64)
        assert (art.width, art.size, art.frames, art.fps) == (64, 3, 0, 0.0)
        made = ArtifactOwner.get(ArtifactOwner.artifact == art.id)                   # 0007_per_owner_artifacts
        assert (made.owner_id, made.kind, made.job_id, made.seed) == (user.id, "image", "j" * 32, 7)
        assert User.select().count() == 1 and Job.select().count() == 1


def test_processes_starting_together_migrate_once(url):
    """Web processes and workers all migrate at start; the first applies everything, the others wait."""
    results, errors = [], []

    def start():
        db = connect_database(url)
        try:
            results.append(migrate(db))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results, key=len) == [[], [], [], NAMES]


def test_a_newer_schema_is_refused_and_nothing_applied(url):
    db = make_old_database(url)
    with db.connection_context():
        Table("schema_migration").bind(db).insert(name=FUTURE, applied="2099-01-01 00:00:00").execute()
    before = database.obj
    with pytest.raises(SchemaTooNew) as e:
        open_database(url)
    assert e.value.unknown == [FUTURE] and e.value.latest == NAMES[-1]
    assert str(e.value).startswith("The database at ")
    assert f"has schema {FUTURE}, newer than this Atelier knows (latest {NAMES[-1]}); upgrade Atelier" in str(e.value)
    assert "postgres@" not in str(e.value)                                        # no user or password
    assert database.obj is before                                                  # the app is not pointed at it
    with pytest.raises(SchemaTooNew):
        migrate(db)
    assert [state for name, state in schema_status(db) if name == "0003_video"] == ["pending"]   # nothing applied


def run_migrate(data_dir, *args):
    env = {**os.environ, "ATELIER_DATA_DIR": str(data_dir)}
    env.pop("ATELIER_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "storage.migrate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_migrate_command_reports_status_and_refuses_a_newer_schema(tmp_path):
    make_old_database(f"sqlite:///{tmp_path / 'atelier.db'}").close()
    out = run_migrate(tmp_path, "--status")
    assert out.returncode == 0, out.stderr
    assert "applied  0002_accounts" in out.stdout and "pending  0003_video" in out.stdout

    out = run_migrate(tmp_path)
    assert out.returncode == 0, out.stderr
    assert "applied: " + ", ".join(NAMES[2:]) in out.stdout
    assert "nothing (up to date)" in run_migrate(tmp_path).stdout

    db = connect_database(f"sqlite:///{tmp_path / 'atelier.db'}")
    with db.connection_context():
        Table("schema_migration").bind(db).insert(name=FUTURE, applied="2099-01-01 00:00:00").execute()
    for args in [(), ("--status",)]:
        out = run_migrate(tmp_path, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert f"has schema {FUTURE}, newer than this Atelier knows (latest {NAMES[-1]})" in out.stderr
        assert "Traceback" not in out.stderr
    assert f"unknown  {FUTURE}" in run_migrate(tmp_path, "--status").stdout


def test_postgresql_is_pooled_and_threads_give_connections_back(postgres_url):
    import psycopg2

    db = connect_database(postgres_url + "?max_connections=4&stale_timeout=60&timeout=20")
    assert isinstance(db, ThreadPooledPostgresqlDatabase)
    assert (db._max_connections, db._stale_timeout, db._wait_timeout) == (4, 60, 20)
    migrate(db)
    name = db.database
    peak, errors = [], []

    def with_context():           # how the job executor uses it
        try:
            with db.connection_context():
                db.execute_sql("SELECT pg_sleep(0.01)")
                peak.append(len(db._in_use))
        except Exception as e:    # noqa: BLE001 - reported below
            errors.append(e)

    def without_close():          # how a Gradio handler thread uses it: connects, never closes, ends
        try:
            db.execute_sql("SELECT 1")
            peak.append(len(db._in_use))
        except Exception as e:    # noqa: BLE001 - reported below
            errors.append(e)

    for target in (with_context, without_close, with_context):
        threads = [threading.Thread(target=target) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == [] and len(peak) == 72 and max(peak) <= 4
    admin = psycopg2.connect(host="127.0.0.1", dbname="postgres", user="postgres")
    admin.autocommit = True       # else pg_stat_activity is read once per transaction
    try:
        cur = admin.cursor()
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
        assert cur.fetchone()[0] <= 4
        assert len(db._in_use) == 0                    # every thread's connection came back
        db.close_all()
        for _ in range(50):       # a backend leaves pg_stat_activity a moment after its client closes
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.05)
        else:
            pytest.fail("connections still open after close_all()")
    finally:
        admin.close()


def test_other_urls_are_unchanged(tmp_path):
    from peewee import SqliteDatabase

    db = connect_database(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(db, SqliteDatabase) and db._lock_type == "IMMEDIATE"
    with db.connection_context():
        assert db.pragma("journal_mode") == "wal" and db.pragma("foreign_keys") == 1
    with pytest.raises(ValueError, match="no database name"):
        connect_database("postgresql://user:secret@host")


def test_per_owner_artifacts_give_the_maker_its_job_and_everyone_else_an_upload(url):
    """0007 (issue 11): the maker's holding gets the artifact's kind, job, place in the plan and seed;
    someone who uploaded the same bytes holds an upload with no job; uploads stay uploads; a guest's
    artifact goes to the account its job moved to; Artifact keeps only what the bytes are."""
    db = make_old_database(url)         # user 1 made "a" with job "j"; no holding rows for it yet
    rows = {name: Table(name).bind(db) for name in ("user", "job", "artifact", "artifact_owner", "lineage")}
    with db.connection_context():
        for email in ("uploader@test", "guest@test"):                     # users 2 and 3
            rows["user"].insert(email=email, name="", role="user", tier="free", created_at=1.0, password_hash="",
                                is_guest=email.startswith("guest"), balance=0.0, stripe_customer="",
                                stripe_subscription="").execute()
        # Job "k" of user 1 made "g"; the guest (user 3) who ran it logged in as user 1, so the job and
        # the holding moved to user 1 while the artifact's `owner` stayed the guest.
        rows["job"].insert(id="k" * 32, owner_id=1, status="succeeded", spec="{}", plan="{}", plan_hash="q" * 64,
                           credits=0.0, priority=0, progress_step=0, progress_steps=0, progress_node=0,
                           progress_nodes=0, cancel_requested=False, error="", outputs="[]", result="{}",
                           replay_of="", attempts=1, worker="", created_at=4.0).execute()
        for artifact_id, owner, job, made in [("u" * 64, 2, None, {}),
                                              ("g" * 64, 3, "k" * 32, {"plan_hash": "q" * 64, "step_id": "n2",
                                                                       "output_index": 1, "seed": 9})]:
            rows["artifact"].insert(id=artifact_id, owner_id=owner, kind="image" if job else "upload", mime="image/png",
                                    size=3, width=64, height=64, blob_key=artifact_id + ".png", job_id=job,
                                    **({"plan_hash": "", "step_id": "", "output_index": 0, "seed": None} | made),
                                    created_at=5.0).execute()
        for artifact_id, owner in [("a" * 64, 2), ("u" * 64, 2), ("u" * 64, 1), ("g" * 64, 1)]:
            rows["artifact_owner"].insert(artifact_id=artifact_id, owner_id=owner, created_at=6.0).execute()
        rows["lineage"].insert(child_id="a" * 64, parent_id="u" * 64, relation="source").execute()
    migrate(db)
    with db.connection_context(), db.bind_ctx(MODELS):
        held = {(h.artifact_id[0], h.owner_id): (h.kind, h.job_id, h.plan_hash[:1], h.step_id, h.output_index, h.seed)
                for h in ArtifactOwner.select()}
        assert held == {("a", 1): ("image", "j" * 32, "p", "n1", 0, 7),          # added: the maker had none
                        ("a", 2): ("upload", None, "", "", 0, None),              # the same bytes, uploaded
                        ("u", 2): ("upload", None, "", "", 0, None),
                        ("u", 1): ("upload", None, "", "", 0, None),
                        ("g", 1): ("image", "k" * 32, "q", "n2", 1, 9)}            # made by the job user 1 holds
        assert {c.name for c in db.get_columns("artifact")} == {"id", "mime", "size", "width", "height", "blob_key",
                                                                "frames", "fps", "created_at"}
        assert [(e.child_id[0], e.parent_id[0]) for e in Lineage.select()] == [("a", "u")]
        assert Artifact.select().count() == 3


def test_a_queued_job_from_before_0008_can_be_found_lost_and_enqueued_again_once(url):
    """0008_enqueued_at (issue 11, item 6): an older queued job has no `enqueued_at`; its `created_at`
    stands in, so the reconciler still finds it if the queue lost it, and only one process wins it."""
    from storage import jobs

    db = make_old_database(url)
    with db.connection_context():
        Table("job").bind(db).insert(id="q" * 32, owner_id=1, status="queued", spec="{}", plan="{}",
                                     plan_hash="p" * 64, credits=0.0, priority=0, progress_step=0, progress_steps=0,
                                     progress_node=0, progress_nodes=1, cancel_requested=False, error="",
                                     outputs="[]", result="{}", replay_of="", attempts=0, worker="",
                                     created_at=time.time() - 600).execute()
    migrate(db)
    with db.connection_context(), db.bind_ctx(MODELS):
        assert Job.get_by_id("q" * 32).enqueued_at is None
        before = time.time() - 60
        assert [job.id for job in jobs.stale_queued(before)] == ["q" * 32]       # the finished one is not
        assert jobs.reenqueue("q" * 32, before) and not jobs.reenqueue("q" * 32, before)
        assert Job.get_by_id("q" * 32).enqueued_at > before and jobs.stale_queued(before) == []
