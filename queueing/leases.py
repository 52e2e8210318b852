"""Heartbeats and leases: a process that runs jobs says it is alive, renews the leases of the jobs it
holds, and hands on the jobs of processes that died.

A job is leased to the worker that claimed it for `lease_seconds`. Every `Heartbeat` (one per process
that runs jobs) beats every quarter lease:

1. it writes its `Worker` row: the models it serves, the jobs it holds, the time;
2. it renews the leases of the jobs it holds;
3. it reaps: a running job whose lease ran out (its worker was killed, or lost the machine) goes back
   to the queue for one more attempt, or fails after its second (its credits are released). The
   conditional UPDATE in `storage.jobs.requeue` lets exactly one process win each job, and only the
   winner enqueues it again.

A worker that comes back after its lease was handed on finds it no longer holds the job: it stops at
its next step and stores nothing (`storage.jobs.still_held`).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from peewee import fn

from queueing import settlement
from storage import jobs
from storage.db import database
from storage.models import Job, Worker

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2            # the first run and one retry


class Heartbeat:
    """The heartbeat of worker `name`.

    Args:
        name: "host:pid".
        lease_seconds: how long a lease lasts; the beat comes every quarter of it.
        enqueue: (job id, priority) -> None, to put a handed-on job back on the queue.
        models: catalogue ids this worker serves (empty: all).
        threads: jobs it runs at once.
    """

    def __init__(self, name: str, lease_seconds: float, enqueue: Callable[[str, int], None],
                 models: tuple[str, ...] = (), threads: int = 1, metrics=None):
        self.name = name
        self.lease_seconds = lease_seconds
        self.enqueue = enqueue
        self.models = tuple(models)
        self.threads = threads
        self.metrics = metrics
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = time.time()

    # -- the jobs this process holds ---------------------------------------------------------------

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._held.add(job_id)

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)

    @property
    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    # -- beating -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Beat now, then every quarter lease in a daemon thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self, stopping: bool = True) -> None:
        """Stop beating; `stopping` marks the Worker row as told to stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if stopping:
            with database.connection_context():
                Worker.update(stopping_at=time.time()).where(Worker.name == self.name).execute()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            try:
                self.beat()
            except Exception:               # noqa: BLE001 - a database hiccup must not end the heartbeat
                logger.exception("heartbeat %s: beat failed; trying again next time", self.name)

    def beat(self) -> list[tuple[str, str]]:
        """One beat: record this worker, renew its leases, reap expired ones. Returns what was reaped."""
        held = self.held
        with database.connection_context():
            now = time.time()
            (Worker.insert(name=self.name, models=json.dumps(list(self.models)), threads=self.threads,
                           running=json.dumps(held), started_at=self.started_at, heartbeat_at=now)
             .on_conflict(conflict_target=[Worker.name],
                          update={Worker.models: json.dumps(list(self.models)), Worker.threads: self.threads,
                                  Worker.running: json.dumps(held), Worker.heartbeat_at: now})
             .execute())
            jobs.renew_leases(self.name, held, self.lease_seconds)
            reaped = reap(self.enqueue, now)
            if self.metrics is not None:
                for job_id, outcome in reaped:
                    if outcome == "requeued":
                        self.metrics.job_requeued("lease_expired")
                    else:
                        self.metrics.job_finished(job_id)
            return reaped


def reap(enqueue: Callable[[str, int], None], now: float | None = None) -> list[tuple[str, str]]:
    """Hand on every running job whose lease ran out before `now`: back to the queue after its first
    attempt, failed (credits released) after its last. Returns (job id, "requeued" or "failed")."""
    now = time.time() if now is None else now
    done = []
    for job in jobs.expired_leases(now):
        if job.attempts < MAX_ATTEMPTS:
            if jobs.requeue(job, expired_before=now):
                logger.warning("job %s: worker %s stopped renewing its lease; queued again (attempt %d of %d)",
                               job.id, job.worker, job.attempts + 1, MAX_ATTEMPTS)
                enqueue(job.id, job.priority)
                done.append((job.id, "requeued"))
        elif settlement.finish(job.id, "failed", expired_before=now,
                               error=f"The worker running this job stopped {job.attempts} times (last: "
                                     f"{job.worker}); it was not retried again. Nothing was charged; try again."):
            logger.warning("job %s: its worker %s died on attempt %d; failed", job.id, job.worker, job.attempts)
            done.append((job.id, "failed"))
    return done


def live_workers(within: float) -> list[Worker]:
    """Workers that beat in the last `within` seconds, newest first."""
    return list(Worker.select().where(Worker.heartbeat_at >= time.time() - within)
                .order_by(Worker.heartbeat_at.desc()))


def queue_depth() -> dict[int, int]:
    """Queued jobs by priority (highest first), from the job rows: the truth whatever the queue backend."""
    rows = (Job.select(Job.priority, fn.COUNT(Job.id).alias("n")).where(Job.status == "queued")
            .group_by(Job.priority).order_by(Job.priority.desc()))
    return {row.priority: row.n for row in rows}
