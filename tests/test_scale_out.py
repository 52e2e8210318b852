"""Many processes on the distributed engines: a web process (ATELIER_WEB_ONLY=1) and `python -m
queueing.worker` processes, all on PostgreSQL and Redis on 127.0.0.1 and S3 (moto's server, over HTTP),
in accounts mode so credits move.
Workers are killed with SIGKILL and stopped with SIGTERM mid-job; the jobs must still finish once, the
ledger settle once, and every artifact row have its blob. The first tests check the lease rules in
this process, on the session's SQLite database."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import fresh_postgres_database, free_port, need, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[1]
LEASE = 8.0                          # a loaded 2-core machine may not renew a lease of a few seconds in time
WAIT = 600                           # seconds any wait here may take before it fails: only a failure waits that long
REDIS_DB = 9                         # this module's own Redis database, flushed before use
BUCKET = "atelier-cluster"
SLOW = {"prompt": "a slow lighthouse", "steps": 60, "width": 128, "height": 128, "seed": 3}


# -- lease rules, in this process ------------------------------------------------------------------

def queued_job(owner, plan_steps=None):
    from storage import jobs
    plan = json.dumps({"version": 1, "steps": plan_steps or [], "credits": 0})
    return jobs.create_job(owner, spec="{}", plan=plan, plan_hash="0" * 64)


def test_an_expired_lease_is_retried_once_then_failed(atelier, owner):
    from queueing.leases import reap
    from storage import jobs
    from storage.models import Job

    job = queued_job(owner)
    jobs.claim(job.id, "ghost:1", lease_seconds=LEASE)
    sent = []
    assert reap(lambda job_id, priority: sent.append(job_id), now=time.time()) == []       # still leased
    assert reap(lambda job_id, priority: sent.append(job_id), now=time.time() + LEASE + 1) == [(job.id, "requeued")]
    again = Job.get_by_id(job.id)
    assert (again.status, again.worker, again.attempts, sent) == ("queued", "", 1, [job.id])
    assert not jobs.finish(job.id, "succeeded", worker="ghost:1")          # the dead worker's result is refused
    jobs.claim(job.id, "ghost:2", lease_seconds=LEASE)
    assert reap(lambda job_id, priority: sent.append(job_id), now=time.time() + LEASE + 1) == [(job.id, "failed")]
    failed = Job.get_by_id(job.id)
    assert (failed.status, failed.attempts) == ("failed", 2) and "stopped 2 times" in failed.error
    assert sent == [job.id]


def test_a_renewed_lease_is_not_reaped_and_a_graceful_stop_gives_the_attempt_back(atelier, owner):
    from queueing.leases import reap
    from storage import jobs
    from storage.models import Job

    job = queued_job(owner)
    jobs.claim(job.id, "alive:1", lease_seconds=LEASE)
    assert jobs.renew_leases("alive:1", [job.id], 100) == 1
    assert jobs.renew_leases("someone-else:1", [job.id], 100) == 0
    assert reap(lambda *a: None, now=time.time() + LEASE + 1) == []
    assert not jobs.requeue(Job.get_by_id(job.id), worker="someone-else:1")
    assert jobs.requeue(Job.get_by_id(job.id), worker="alive:1", count_attempt=False)
    back = Job.get_by_id(job.id)
    assert (back.status, back.attempts, back.lease_until) == ("queued", 0, None)


def test_a_worker_leaves_jobs_for_models_it_does_not_serve(atelier, owner):
    from queueing.executor import JobExecutor
    from storage.models import Job

    from pipelines.plan import ModelRef, Txt2ImgStep

    sdxl = ModelRef(id="demo-sdxl", family="sdxl", source="demo", hash="x")
    needs = [Txt2ImgStep(id="1", model=sdxl, prompt="", negative_prompt="", steps=1, cfg_scale=1.0, sampler="euler",
                         schedule="normal", seeds=(1,)).to_dict()]
    job = queued_job(owner, needs)
    sent = []
    executor = JobExecutor(lambda: None, atelier.service.blobs, models=("demo-sd15",), put_back_delay=0)
    executor.enqueue = lambda job_id, priority: sent.append(job_id)
    executor.execute(job.id)
    assert sent == [job.id] and Job.get_by_id(job.id).status == "queued"       # put back, never claimed
    assert JobExecutor(lambda: None, atelier.service.blobs, models=("demo-sdxl",)).serves(Job.get_by_id(job.id))


def test_redis_alone_runs_the_whole_path(settings, tmp_path):
    """Only the queue on Redis (the database and blobs stay the session's)."""
    import dataclasses

    from auth import local_owner
    from pipelines.spec import Txt2Img, WorkflowSpec
    from tests.conftest import serve
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB - 1, socket_connect_timeout=2).flushdb()
    except redis.exceptions.RedisError as e:
        need(f"Redis is not reachable on 127.0.0.1:6379 ({e})")
    on_redis = dataclasses.replace(settings, queue_url=f"redis://127.0.0.1:6379/{REDIS_DB - 1}")
    for app in serve(on_redis):
        assert type(app.huey).__name__ == "PriorityRedisHuey"
        owner = local_owner()
        job = app.service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="on redis", seed=2, steps=2)))
        done = app.service.wait(owner, job.id, timeout=WAIT)
        assert done.status == "succeeded" and done.worker == app.executor.worker, done.error


# -- the cluster: processes on PostgreSQL and Redis ------------------------------------------------------

class Cluster:
    """A web process and workers sharing PostgreSQL, Redis and a blob folder; logs in `folder`."""

    def __init__(self, folder: pathlib.Path, database_url: str, catalogue: pathlib.Path, s3_url: str):
        self.folder = folder
        self.database_url = database_url
        self.s3_url = s3_url
        self.env = {**os.environ, "ATELIER_DATA_DIR": str(folder / "data"), "ATELIER_CATALOGUE": str(catalogue),
                    "ATELIER_DATABASE_URL": database_url, "ATELIER_QUEUE_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                    "ATELIER_JOB_LEASE_SECONDS": str(LEASE), "ATELIER_DEVICE": "cpu", "ATELIER_AUTH_MODE": "accounts",
                    "ATELIER_PROGRESS_INTERVAL": "0.05", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                    "ATELIER_SESSION_SECRET": "cluster-test-secret", "PYTHONUNBUFFERED": "1",
                    "ATELIER_BLOBS": f"s3://{BUCKET}/blobs", "AWS_ENDPOINT_URL": s3_url,
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        self.processes: list[subprocess.Popen] = []
        self.web = None
        self.url = ""
        self._connection = None              # one PostgreSQL connection for the test's queries, not one a poll
        self._lock = threading.Lock()

    def spawn(self, name: str, *args: str, **env) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**self.env, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def create_user(self, email: str) -> None:
        """A pro user with 100 credits, made by `python -m auth.cli` as an operator would; its API key
        goes to `self.key`."""
        created = subprocess.run([sys.executable, "-m", "auth.cli", "create-user", email, "--tier", "pro", "--credits",
                                  "100", "--api-key"], cwd=ROOT, env=self.env, capture_output=True, text=True,
                                 timeout=WAIT, stdin=subprocess.DEVNULL)
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip().splitlines()[-1]

    def start_web(self) -> None:
        import httpx
        port = free_port()
        self.web = self.spawn("web", "app.py", ATELIER_WEB_ONLY="1", ATELIER_PORT=str(port))
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.web.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"the web process did not start:\n{self.log('web')}")

    def start_worker(self, name: str, *args: str) -> subprocess.Popen:
        return self.spawn(name, "-m", "queueing.worker", "--workers", "1", *args)

    @staticmethod
    def name_of(process: subprocess.Popen) -> str:
        """The worker name a `python -m queueing.worker` process runs jobs under ("host:pid")."""
        return f"{socket.gethostname()}:{process.pid}"

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(60)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def sql(self, query: str, *args):
        """Run `query` (autocommit) on one connection kept open, opened again if it broke."""
        import psycopg2
        with self._lock:
            for attempt in (1, 2):
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg2.connect(self.database_url)
                    self._connection.autocommit = True
                try:
                    with self._connection.cursor() as cursor:
                        cursor.execute(query, args)
                        return cursor.fetchall() if cursor.description else None
                except psycopg2.OperationalError:
                    self._connection.close()
                    if attempt == 2:
                        raise

    def job(self, job_id: str) -> dict:
        names = ("status", "worker", "attempts", "progress_step", "error", "outputs")
        row = self.sql(f"SELECT {', '.join(names)} FROM job WHERE id = %s", job_id)[0]
        return dict(zip(names, row))

    def wait_for(self, condition, what: str, timeout: float = WAIT):
        """`condition()` once it is truthy, polled; fails after `timeout` s with every process's log."""
        return wait_until(condition, what, timeout=timeout, interval=0.1, details=lambda: "logs:\n" + "\n".join(
            f"--- {p.stem}\n{self.log(p.stem)}" for p in self.folder.glob("*.log")))

    def finished(self, job_id: str) -> dict | None:
        """The job's row once it succeeded, failed or was cancelled; None before."""
        row = self.job(job_id)
        return row if row["status"] in ("succeeded", "failed", "cancelled") else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, catalogue_file, moto_url):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=2).flushdb()
    except redis.exceptions.RedisError as e:
        need(f"Redis is not reachable on 127.0.0.1:6379 ({e})")
    from storage.s3 import make_client
    make_client(moto_url).create_bucket(Bucket=BUCKET)
    with fresh_postgres_database() as url:
        running = Cluster(tmp_path_factory.mktemp("cluster"), url, catalogue_file, moto_url)
        try:
            running.create_user("pro@cluster.test")
            running.start_web()
            yield running
        finally:
            running.stop()


def client_of(cluster):
    from gradio_client import Client
    return Client(cluster.url, headers={"Authorization": f"Bearer {cluster.key}"}, verbose=False)


def submit(client, **params) -> str:
    spec = {"nodes": [{"id": "1", "kind": "txt2img", "params": params}]}
    return client.predict(spec=json.dumps(spec), api_name="/submit")["job_id"]


def ledger(cluster, job_id: str) -> list[str]:
    return sorted(kind for (kind,) in cluster.sql("SELECT kind FROM credit_entry WHERE job_id = %s", job_id))


def test_the_web_process_runs_no_jobs_and_never_loads_torch(cluster):
    """No timing: the web process keeps no Worker row (every process that runs jobs beats one), the job's
    message waits on the queue, and the job's one attempt is the worker's, so the web process never
    claimed it (a claim by it would have made the worker's the second attempt, or left none to it)."""
    import httpx

    from queueing.huey_app import make_huey
    from queueing.reconcile import queued_job_ids
    from queueing.tasks import register_tasks
    assert "libtorch" not in pathlib.Path(f"/proc/{cluster.web.pid}/maps").read_text()
    ready = httpx.get(cluster.url + "readyz", timeout=60)
    assert ready.status_code == 200, ready.text                          # PostgreSQL, Redis and S3 answer
    job_id = submit(client_of(cluster), prompt="a quiet harbour", seed=1)
    queue = make_huey(f"redis://127.0.0.1:6379/{REDIS_DB}", cluster.folder)
    register_tasks(queue, None)
    assert job_id in queued_job_ids(queue)                              # enqueued, and nobody took it
    row = cluster.job(job_id)
    assert (row["status"], row["attempts"], row["worker"]) == ("queued", 0, "")
    early = cluster.start_worker("early-worker")
    done = cluster.wait_for(lambda: cluster.finished(job_id), "the job to finish on the worker")
    assert (done["status"], done["worker"], done["attempts"]) == ("succeeded", cluster.name_of(early), 1), done["error"]
    assert cluster.name_of(cluster.web) not in {name for (name,) in cluster.sql("SELECT name FROM worker")}
    assert "libtorch" not in pathlib.Path(f"/proc/{cluster.web.pid}/maps").read_text()   # nor did serving it
    assert ledger(cluster, job_id) == ["capture", "reserve"]
    scrape = httpx.get(cluster.url + "metrics", timeout=10).text
    assert 'atelier_jobs{state="succeeded"} 1.0' in scrape


def stop_all_workers(cluster) -> None:
    for process in cluster.processes:
        if process is not cluster.web and process.poll() is None:
            process.kill()
            process.wait(60)


def beating(cluster, *processes) -> bool:
    """Whether each of these worker processes has beaten (a worker beats first once its engine is built)."""
    names = [cluster.name_of(p) for p in processes]
    return len(cluster.sql("SELECT name FROM worker WHERE name = ANY(%s) AND stopping_at IS NULL", names)) == len(names)


def listening(cluster) -> int:
    """How many consumers are blocked on the queue, waiting for a message (BZPOPMIN on this module's database)."""
    import redis
    clients = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).client_list()
    return sum(c.get("db") == str(REDIS_DB) and c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "")
               for c in clients)


def test_two_workers_drain_one_queue(cluster):
    """Both consumers wait on the queue before the jobs come, and Redis hands a message to the client that
    has waited longest, so each worker takes jobs whatever their size and the machine's load."""
    stop_all_workers(cluster)
    workers = [cluster.start_worker("first-of-two"), cluster.start_worker("second-of-two")]
    cluster.wait_for(lambda: beating(cluster, *workers) and listening(cluster) == 2, "both workers to wait on the queue")
    client = client_of(cluster)
    ids = [submit(client, prompt=f"boat {k}", seed=k, steps=8) for k in range(6)]
    cluster.wait_for(lambda: all(cluster.finished(i) for i in ids), "six jobs to finish")
    rows = [cluster.job(i) for i in ids]
    assert [(r["status"], r["attempts"]) for r in rows] == [("succeeded", 1)] * 6, [r["error"] for r in rows]
    assert {r["worker"] for r in rows} == {cluster.name_of(w) for w in workers}    # both took jobs from one queue
    status = client.predict(job_id=ids[0], api_name="/job_status")
    assert (status["worker"], status["attempts"]) == (rows[0]["worker"], 1)


def test_a_worker_killed_mid_job_leaves_it_to_another_and_the_ledger_settles_once(cluster):
    stop_all_workers(cluster)
    victim = cluster.start_worker("victim")
    job_id = submit(client_of(cluster), **SLOW)
    cluster.wait_for(lambda: cluster.job(job_id)["progress_step"] >= 3, "the slow job to start")
    victim.send_signal(signal.SIGKILL)
    victim.wait(60)
    killed = cluster.job(job_id)
    assert (killed["status"], killed["worker"], killed["attempts"]) == ("running", cluster.name_of(victim), 1)
    rescuer = cluster.start_worker("rescuer")                           # no other process reaps: nobody knew
    done = cluster.wait_for(lambda: cluster.finished(job_id), "the rescued job to finish")
    assert (done["status"], done["worker"], done["attempts"]) == ("succeeded", cluster.name_of(rescuer), 2), \
        done["error"]
    assert ledger(cluster, job_id) == ["capture", "reserve"]             # captured once, never released
    every_blob_is_there(cluster)


def test_sigterm_puts_the_running_job_back_for_another_worker(cluster):
    stop_all_workers(cluster)
    leaving = cluster.start_worker("leaving")
    job_id = submit(client_of(cluster), **{**SLOW, "seed": 4})
    cluster.wait_for(lambda: cluster.job(job_id)["progress_step"] >= 3, "the slow job to start")
    assert cluster.job(job_id)["worker"] == cluster.name_of(leaving)
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(WAIT) == 0
    back = cluster.job(job_id)
    assert (back["status"], back["attempts"], back["worker"]) == ("queued", 0, "")
    assert ledger(cluster, job_id) == ["reserve"]                        # still reserved, not settled
    taker = cluster.start_worker("taker")
    done = cluster.wait_for(lambda: cluster.finished(job_id), "the job to finish on the next worker")
    assert (done["status"], done["worker"], done["attempts"]) == ("succeeded", cluster.name_of(taker), 1), done["error"]
    assert ledger(cluster, job_id) == ["capture", "reserve"]


def test_restarting_everything_loses_no_queued_job(cluster):
    stop_all_workers(cluster)
    client = client_of(cluster)
    ids = [submit(client, prompt=f"kept {k}", seed=k, steps=4) for k in range(3)]
    cluster.web.kill()
    cluster.web.wait(60)
    cluster.start_web()
    worker = cluster.start_worker("after-restart")
    cluster.wait_for(lambda: all(cluster.finished(i) for i in ids), "the queued jobs to run")
    assert [(cluster.job(i)["status"], cluster.job(i)["worker"], cluster.job(i)["attempts"]) for i in ids] == \
        [("succeeded", cluster.name_of(worker), 1)] * 3
    every_blob_is_there(cluster)


def every_blob_is_there(cluster) -> None:
    """No artifact row points at a missing or half-written blob: each is in the bucket, whole."""
    import hashlib

    from storage.s3 import make_client
    s3 = make_client(cluster.s3_url)
    rows = cluster.sql("SELECT id, blob_key FROM artifact")
    made = {a for (outputs,) in cluster.sql("SELECT outputs FROM job WHERE status = 'succeeded'")
            for a in json.loads(outputs)}
    assert made and {artifact_id for artifact_id, _ in rows} == made    # a row for every output, and no other
    for artifact_id, key in rows:
        data = s3.get_object(Bucket=BUCKET, Key=f"blobs/{key[:2]}/{key}")["Body"].read()
        assert hashlib.sha256(data).hexdigest() == artifact_id
    assert not (cluster.folder / "data" / "blobs").exists()              # nothing went to a local folder
