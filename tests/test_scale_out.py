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
import subprocess
import sys
import time

import pytest

from tests.conftest import fresh_postgres_database, free_port, need

ROOT = pathlib.Path(__file__).resolve().parents[1]
LEASE = 3.0
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
        done = app.service.wait(owner, job.id, timeout=120)
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
                                 timeout=120, stdin=subprocess.DEVNULL)
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip().splitlines()[-1]

    def start_web(self) -> None:
        import httpx
        port = free_port()
        self.web = self.spawn("web", "app.py", ATELIER_WEB_ONLY="1", ATELIER_PORT=str(port))
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 90
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

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    def sql(self, query: str, *args):
        import psycopg2
        with psycopg2.connect(self.database_url) as connection, connection.cursor() as cursor:
            cursor.execute(query, args)
            return cursor.fetchall() if cursor.description else None

    def job(self, job_id: str) -> dict:
        names = ("status", "worker", "attempts", "progress_step", "error", "outputs")
        row = self.sql(f"SELECT {', '.join(names)} FROM job WHERE id = %s", job_id)[0]
        return dict(zip(names, row))

    def wait_for(self, condition, what: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; logs:\n" +
                             "\n".join(f"--- {p.stem}\n{self.log(p.stem)}" for p in self.folder.glob("*.log")))


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
    import httpx
    maps = pathlib.Path(f"/proc/{cluster.web.pid}/maps").read_text()
    assert "libtorch" not in maps
    ready = httpx.get(cluster.url + "readyz", timeout=10)
    assert ready.status_code == 200, ready.text                          # PostgreSQL, Redis and S3 answer
    job_id = submit(client_of(cluster), prompt="a quiet harbour", seed=1)
    time.sleep(2)
    assert cluster.job(job_id)["status"] == "queued"                    # nobody runs it yet
    cluster.start_worker("early-worker")
    done = cluster.wait_for(lambda: cluster.job(job_id)["status"] == "succeeded" and cluster.job(job_id),
                            "the job to succeed on the worker")
    assert done["worker"].split(":")[0] and done["attempts"] == 1
    assert ledger(cluster, job_id) == ["capture", "reserve"]
    scrape = httpx.get(cluster.url + "metrics", timeout=10).text
    assert 'atelier_jobs{state="succeeded"} 1.0' in scrape


def stop_all_workers(cluster) -> None:
    for process in cluster.processes[1:]:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def live_workers(cluster) -> set[str]:
    """Workers that beat within a lease; a worker beats first once its engine is built."""
    return {name for (name,) in cluster.sql("SELECT name FROM worker WHERE heartbeat_at > %s AND stopping_at IS NULL",
                                            time.time() - LEASE)}


def test_two_workers_drain_one_queue(cluster):
    stop_all_workers(cluster)
    cluster.start_worker("first-of-two")
    cluster.start_worker("second-of-two")
    cluster.wait_for(lambda: len(live_workers(cluster)) == 2, "both workers to be up")
    client = client_of(cluster)
    ids = [submit(client, prompt=f"boat {k}", seed=k, steps=30, width=128, height=128) for k in range(6)]
    cluster.wait_for(lambda: all(cluster.job(i)["status"] == "succeeded" for i in ids), "six jobs to succeed")
    workers = {cluster.job(i)["worker"] for i in ids}
    assert workers == live_workers(cluster)                 # both took jobs from the one Redis queue
    status = client.predict(job_id=ids[0], api_name="/job_status")
    assert status["worker"] in workers and status["attempts"] == 1


def test_a_worker_killed_mid_job_leaves_it_to_another_and_the_ledger_settles_once(cluster):
    stop_all_workers(cluster)
    victim = cluster.start_worker("victim")
    job_id = submit(client_of(cluster), **SLOW)
    cluster.wait_for(lambda: cluster.job(job_id)["progress_step"] >= 3, "the slow job to start")
    first = cluster.job(job_id)["worker"]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert cluster.job(job_id)["status"] == "running"                   # nobody knows yet
    cluster.start_worker("rescuer")
    done = cluster.wait_for(lambda: cluster.job(job_id)["status"] in ("succeeded", "failed") and cluster.job(job_id),
                            "the rescued job to finish", timeout=180)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2 and done["worker"] != first
    assert ledger(cluster, job_id) == ["capture", "reserve"]             # captured once, never released
    every_blob_is_there(cluster)


def test_sigterm_puts_the_running_job_back_for_another_worker(cluster):
    stop_all_workers(cluster)
    leaving = cluster.start_worker("leaving")
    job_id = submit(client_of(cluster), **{**SLOW, "seed": 4})
    cluster.wait_for(lambda: cluster.job(job_id)["progress_step"] >= 3, "the slow job to start")
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(60) == 0
    back = cluster.job(job_id)
    assert (back["status"], back["attempts"], back["worker"]) == ("queued", 0, "")
    assert ledger(cluster, job_id) == ["reserve"]                        # still reserved, not settled
    cluster.start_worker("taker")
    done = cluster.wait_for(lambda: cluster.job(job_id)["status"] == "succeeded" and cluster.job(job_id),
                            "the job to succeed on the next worker", timeout=180)
    assert done["attempts"] == 1
    assert ledger(cluster, job_id) == ["capture", "reserve"]


def test_restarting_everything_loses_no_queued_job(cluster):
    stop_all_workers(cluster)
    client = client_of(cluster)
    ids = [submit(client, prompt=f"kept {k}", seed=k, steps=4) for k in range(3)]
    cluster.web.kill()
    cluster.web.wait(10)
    cluster.start_web()
    cluster.start_worker("after-restart")
    cluster.wait_for(lambda: all(cluster.job(i)["status"] in ("succeeded", "failed") for i in ids),
                     "the queued jobs to run")
    assert [(cluster.job(i)["status"], cluster.job(i)["attempts"]) for i in ids] == [("succeeded", 1)] * 3
    every_blob_is_there(cluster)


def every_blob_is_there(cluster) -> None:
    """No artifact row points at a missing or half-written blob: each is in the bucket, whole."""
    import hashlib

    from storage.s3 import make_client
    s3 = make_client(cluster.s3_url)
    rows = cluster.sql("SELECT id, blob_key FROM artifact")
    assert rows
    for artifact_id, key in rows:
        data = s3.get_object(Bucket=BUCKET, Key=f"blobs/{key[:2]}/{key}")["Body"].read()
        assert hashlib.sha256(data).hexdigest() == artifact_id
    assert not (cluster.folder / "data" / "blobs").exists()              # nothing went to a local folder
