"""Jobs the queue lost, and calls with no worker to run them (issue 11, items 6 and 9).

The first tests run in this process on the session's SQLite database: which queued jobs the
reconciler puts back on the queue, that of two reconcilers exactly one wins each job, that a queue
that does not answer never stops a heartbeat, and that `JobService.wait` says when no worker runs.
The last ones run processes as an operator would: a web-only process (ATELIER_WEB_ONLY=1) and
`python -m queueing.worker` on PostgreSQL and a redis-server of this module's own, on a free port
and without persistence, which the test kills and starts again empty (the shared Redis on 6379 is
never touched)."""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from pipelines.errors import AtelierError
from queueing.huey_app import make_huey
from queueing.reconcile import Reconciler, queued_job_ids
from queueing.tasks import register_tasks
from storage import jobs
from storage.db import database
from storage.models import Job, Worker
from tests.conftest import fresh_postgres_database, free_port, need
from tests.test_scale_out import WAIT, Cluster, client_of, ledger, stop_all_workers, submit

GRACE = 2.0                 # seconds a queued job may be missing from the queue before it counts as lost
WORKER_WAIT = 2.0           # seconds a synchronous call waits before it looks for a worker
EMPTY_PLAN = json.dumps({"version": 1, "steps": [], "credits": 0})


# -- in this process, on the session's database ---------------------------------------------------

def queued_job(owner, enqueued_ago: float | None) -> Job:
    """A queued job whose id was last enqueued `enqueued_ago` seconds ago (None: never recorded, as for a
    job from before migration 0008, created a minute ago)."""
    job = jobs.create_job(owner, spec="{}", plan=EMPTY_PLAN, plan_hash="0" * 64)
    if enqueued_ago is None:
        Job.update(enqueued_at=None, created_at=time.time() - 60).where(Job.id == job.id).execute()
    else:
        Job.update(enqueued_at=time.time() - enqueued_ago).where(Job.id == job.id).execute()
    return Job.get_by_id(job.id)


@pytest.fixture
def made(atelier):
    """A list to put the jobs a test makes in; they are deleted afterwards, so no other process (the
    session app's own reconciler) ever runs them."""
    ids: list[str] = []
    yield ids
    Job.delete().where(Job.id.in_(ids)).execute()


def paused_queue(folder: pathlib.Path, name: str):
    """A SqliteHuey that nobody consumes, and its run_job task (to enqueue job ids on it)."""
    huey = make_huey(f"sqlite:///{folder / name}", folder)
    return huey, register_tasks(huey, None)


def test_only_queued_jobs_missing_from_the_queue_past_the_grace_are_enqueued_again(atelier, owner, made, tmp_path):
    huey, run_job = paused_queue(tmp_path, "queue.db")
    lost = queued_job(owner, enqueued_ago=30)
    waiting = queued_job(owner, enqueued_ago=30)       # a long queue: old, but its message is there
    run_job(waiting.id, priority=0)
    fresh = queued_job(owner, enqueued_ago=0)          # just submitted: within the grace period
    older = queued_job(owner, enqueued_ago=None)       # from before migration 0008
    taken = queued_job(owner, enqueued_ago=30)
    jobs.claim(taken.id, "test:reconcile", lease_seconds=60)
    made += [lost.id, waiting.id, fresh.id, older.id, taken.id]

    sent = []
    before = time.time()
    again = Reconciler(huey, GRACE).run(lambda job_id, priority: sent.append(job_id))
    assert {lost.id, older.id} <= set(again) and sent == again
    assert not {waiting.id, fresh.id, taken.id} & set(again)
    assert Job.get_by_id(lost.id).enqueued_at >= before                      # stamped: not again at once
    assert Job.get_by_id(lost.id).status == "queued"
    assert Reconciler(huey, GRACE).run(lambda job_id, priority: sent.append(job_id)) == []
    assert queued_job_ids(huey) == {waiting.id}                              # `sent` stood for the queue here


def test_of_two_reconcilers_at_once_exactly_one_enqueues_each_lost_job(atelier, owner, made, tmp_path):
    """Each reconciler reads its own empty queue, so both see every job as lost and only the conditional
    UPDATE (storage.jobs.reenqueue) decides who puts it back."""
    lost = [queued_job(owner, enqueued_ago=30) for _ in range(6)]
    made += [job.id for job in lost]
    queues = [paused_queue(tmp_path, f"queue-{k}.db") for k in range(2)]
    barrier = threading.Barrier(2)
    won: list[list[str]] = [[], []]

    def reconcile(k: int) -> None:
        huey, run_job = queues[k]
        with database.connection_context():
            barrier.wait(10)
            won[k] = Reconciler(huey, GRACE).run(lambda job_id, priority: run_job(job_id, priority=priority))

    threads = [threading.Thread(target=reconcile, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    ids = {job.id for job in lost}
    first, second = (set(w) & ids for w in won)
    assert first | second == ids and not first & second
    on_queues = [queued_job_ids(huey) & ids for huey, _ in queues]
    assert on_queues == [first, second]                        # each job enqueued once, by its winner

    job = queued_job(owner, enqueued_ago=30)
    made.append(job.id)
    before = time.time() - GRACE
    assert jobs.reenqueue(job.id, before) and not jobs.reenqueue(job.id, before)


def test_a_queue_that_does_not_answer_never_stops_the_heartbeat(atelier, owner, made, tmp_path):
    from huey import PriorityRedisHuey

    from queueing.leases import Heartbeat

    lost = queued_job(owner, enqueued_ago=30)
    made.append(lost.id)
    unreachable = PriorityRedisHuey("atelier", url=f"redis://127.0.0.1:{free_port()}/0", results=False)
    register_tasks(unreachable, None)
    sent = []
    names = ["test:reconcile-down", "test:reconcile-up"]
    try:
        down = Heartbeat(names[0], 60, lambda job_id, priority: sent.append(job_id),
                         reconciler=Reconciler(unreachable, GRACE))
        before = time.time()
        assert down.beat() == [] and sent == []                           # no exception, nothing sent
        assert Worker.get_by_id(names[0]).heartbeat_at >= before            # the beat itself happened
        assert Job.get_by_id(lost.id).enqueued_at == lost.enqueued_at       # left for the next beat

        huey, run_job = paused_queue(tmp_path, "queue.db")
        up = Heartbeat(names[1], 60, lambda job_id, priority: run_job(job_id, priority=priority),
                       reconciler=Reconciler(huey, GRACE))
        assert (lost.id, "reenqueued") in up.beat()
        assert lost.id in queued_job_ids(huey)
    finally:
        Worker.delete().where(Worker.name.in_(names)).execute()


def test_wait_says_no_worker_is_running_and_leaves_the_job_queued(atelier, owner, made):
    """Every worker's last heartbeat is older than a lease of a millisecond: to this service, none runs."""
    from pipelines import Txt2Img, WorkflowSpec
    from queueing import JobService

    service = JobService(atelier.service.compiler, lambda job_id, priority: None, atelier.service.blobs,
                         worker_wait=0.2, lease_seconds=0.001)
    job = service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="nobody to run it", steps=2)))
    made.append(job.id)
    with pytest.raises(AtelierError) as raised:
        service.wait(owner, job.id, timeout=120)                   # a timeout would be code "timeout"
    assert raised.value.code == "no_worker"
    assert raised.value.message == (f"No worker is running to take this job; it stays queued as {job.id} and "
                                    f"will run when one starts (check /job_status).")
    assert Job.get_by_id(job.id).status == "queued"

    patient = JobService(atelier.service.compiler, lambda job_id, priority: None, atelier.service.blobs)
    with pytest.raises(AtelierError) as raised:                  # without worker_wait it never looks
        patient.wait(owner, job.id, timeout=0.5)
    assert raised.value.code == "timeout"


def test_the_grace_period_and_the_wait_for_a_worker_are_settings():
    from configs import load_settings

    defaults = load_settings(environ={})
    assert (defaults.requeue_grace_seconds, defaults.worker_wait_seconds) == (60.0, 5.0)
    chosen = load_settings(environ={"ATELIER_REQUEUE_GRACE_SECONDS": "2.5", "ATELIER_WORKER_WAIT_SECONDS": "0"})
    assert (chosen.requeue_grace_seconds, chosen.worker_wait_seconds) == (2.5, 0.0)
    with pytest.raises(ValueError, match="ATELIER_REQUEUE_GRACE_SECONDS / .queue. requeue_grace_seconds must be "
                                         "positive"):
        load_settings(environ={"ATELIER_REQUEUE_GRACE_SECONDS": "0"})
    with pytest.raises(ValueError, match="ATELIER_WORKER_WAIT_SECONDS"):
        load_settings(environ={"ATELIER_WORKER_WAIT_SECONDS": "-1"})


# -- processes: a web-only process, workers, PostgreSQL and a Redis of this module's own ------------

class RedisServer:
    """redis-server on 127.0.0.1:`port` with no persistence (no RDB snapshots, no AOF): killed, it loses
    everything, as a Redis without persistence does when it restarts."""

    def __init__(self, folder: pathlib.Path, port: int):
        self.folder, self.port = folder, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1).ping():
                    return
            except redis.RedisError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n"
                           f"{(self.folder / 'redis.log').read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(60)

    def queue(self):
        """A fresh Huey on this Redis (so no connection from before a restart is reused), to read its queue."""
        huey = make_huey(self.url, self.folder)
        register_tasks(huey, None)
        return huey


@pytest.fixture(scope="module")
def stack(tmp_path_factory, catalogue_file):
    """A web-only process on PostgreSQL and this module's Redis, in accounts mode, with a user who has
    credits and an API key; no worker yet. Blobs in a folder the processes share."""
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        need("redis-server is not installed (Debian: apt-get install redis-server)")
    folder = tmp_path_factory.mktemp("reconcile")
    redis = RedisServer(folder, free_port())
    redis.start()
    try:
        with fresh_postgres_database() as url:
            running = Cluster(folder, url, catalogue_file, s3_url="")
            for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
                running.env.pop(name, None)
            running.env.update(ATELIER_QUEUE_URL=redis.url, ATELIER_BLOBS="",
                               ATELIER_REQUEUE_GRACE_SECONDS=str(GRACE), ATELIER_WORKER_WAIT_SECONDS=str(WORKER_WAIT))
            running.redis = redis
            try:
                running.create_user("owner@reconcile.test")
                running.start_web()
                yield running
            finally:
                running.stop()
    finally:
        redis.kill()


def readyz_workers(stack) -> dict:
    import httpx
    answer = httpx.get(stack.url + "readyz", timeout=60)
    assert answer.status_code == 200, answer.text              # no worker is no reason to stop serving pages
    check = answer.json()["checks"]["workers"]
    assert check["ok"], check
    return check["detail"]


class FakeWorkerBeat:
    """A Worker row that beats twice a second and serves only `models`: what a worker started with
    `--models` looks like to the web process (it runs nothing here)."""

    def __init__(self, stack, name: str, models: list[str]):
        self.stack, self.name, self.models = stack, name, models
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self):
        now = time.time()
        self.stack.sql("INSERT INTO worker (name, models, threads, running, started_at, heartbeat_at) "
                       "VALUES (%s, %s, 1, '[]', %s, %s)", self.name, json.dumps(self.models), now, now)
        self.thread.start()
        return self

    def _beat(self) -> None:
        while not self.stop.wait(0.5):
            self.stack.sql("UPDATE worker SET heartbeat_at = %s WHERE name = %s", time.time(), self.name)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)
        self.stack.sql("DELETE FROM worker WHERE name = %s", self.name)


NO_WORKER = (r"No worker is running to take this job; it stays queued as ([0-9a-f]{32}) and will run when one "
             r"starts \(check /job_status\)\.")


def test_a_synchronous_call_with_no_worker_says_so_and_a_worker_started_later_runs_the_job(stack):
    from gradio_client.exceptions import AppError

    stop_all_workers(stack)
    report = readyz_workers(stack)
    assert (report["count"], report["names"]) == (0, []) and "No worker is running" in report["warning"]
    client = client_of(stack)
    call = client.submit(prompt="nobody home", seed=5, steps=2, width=64, height=64, api_name="/txt2img")
    with pytest.raises(AppError) as raised:
        call.result(timeout=120)                                # an answer, not a call held open for good
    found = re.search(NO_WORKER, str(raised.value))
    assert found, str(raised.value)
    job_id = found.group(1)
    assert stack.job(job_id)["status"] == "queued" and ledger(stack, job_id) == ["reserve"]   # kept, not settled
    assert client.predict(job_id=job_id, api_name="/job_status")["status"] == "queued"

    with FakeWorkerBeat(stack, "elsewhere:1", ["demo-sdxl"]):
        assert readyz_workers(stack)["names"] == ["elsewhere:1"]
        with pytest.raises(AppError, match=r"No running worker serves demo-sd15, which this job needs; it stays "
                                           r"queued as [0-9a-f]{32}"):
            client.predict(prompt="not for sdxl", seed=6, steps=2, width=64, height=64, api_name="/txt2img")
    second = client.predict(api_name="/jobs")[0]["job_id"]
    assert second != job_id and stack.job(second)["status"] == "queued"

    worker = stack.start_worker("late-worker")
    for waiting in (job_id, second):
        done = stack.wait_for(lambda: stack.finished(waiting), "the waiting job to run on the worker started late")
        assert (done["status"], done["worker"], done["attempts"]) == ("succeeded", stack.name_of(worker), 1), \
            done["error"]
        assert ledger(stack, waiting) == ["capture", "reserve"]
    report = readyz_workers(stack)
    assert (report["count"], report["names"]) == (1, [stack.name_of(worker)]) and "warning" not in report
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(WAIT) == 0
    assert readyz_workers(stack)["count"] == 0                  # told to stop: not counted any more


def test_jobs_queued_when_redis_restarts_empty_run_once_a_worker_starts(stack):
    stop_all_workers(stack)
    client = client_of(stack)
    ids = [submit(client, prompt=f"kept through a restart {k}", seed=k, steps=2, width=64, height=64)
           for k in range(3)]
    assert set(ids) <= queued_job_ids(stack.redis.queue())
    stack.redis.kill()
    stack.redis.start()                                          # empty: nothing was saved
    assert not set(ids) & queued_job_ids(stack.redis.queue())
    assert [stack.job(i)["status"] for i in ids] == ["queued"] * 3

    worker = stack.start_worker("after-redis-restart")
    stack.wait_for(lambda: all(stack.finished(i) for i in ids), "the three jobs the queue lost to run")
    assert [(stack.job(i)["status"], stack.job(i)["worker"], stack.job(i)["attempts"]) for i in ids] == \
        [("succeeded", stack.name_of(worker), 1)] * 3
    assert [ledger(stack, i) for i in ids] == [["capture", "reserve"]] * 3      # reserved once, captured once
    log = (stack.folder / "after-redis-restart.log").read_text(errors="replace")
    assert all(f"job {i}: queued, but missing from the queue" in log for i in ids), log[-3000:]
