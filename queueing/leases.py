"""Heartbeats and leases: a process that runs jobs says it is alive, renews the leases of the jobs it
holds, and hands on the jobs of processes that died.

A job is leased to the worker that claimed it for `lease_seconds`. Every `Heartbeat` (one per process
that runs jobs) beats every quarter lease:

1. it writes its `Worker` row: the models it serves, the jobs it holds, the time;
2. it renews the leases of the jobs it holds;
3. it reaps: a running job whose lease ran out (its worker was killed, or lost the machine) goes back
   to the queue for one more attempt, or fails after its second (its credits are released). The
   conditional UPDATE in `storage.jobs.requeue` lets exactly one process win each job, and only the
   winner enqueues it again;
4. it reconciles (`queueing.reconcile`, when given a `Reconciler`): a job that is queued in its row but
   missing from the queue past a grace period (Redis restarted empty) is enqueued again, by one
   process. The first beat, at `start`, does all four, so a worker that starts finds such jobs at once.

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
        metrics: this process's queueing.metrics.Metrics, told of jobs requeued and failed; None: none.
        reconciler: a queueing.reconcile.Reconciler over this process's queue, run at every beat; None
            (default): lost queued jobs are left to other processes.
    """

    def __init__(self, name: str, lease_seconds: float, enqueue: Callable[[str, int], None],
                 models: tuple[str, ...] = (), threads: int = 1, metrics=None, reconciler=None):
        self.name = name
        self.lease_seconds = lease_seconds
        self.enqueue = enqueue
        self.models = tuple(models)
        self.threads = threads
        self.metrics = metrics
        self.reconciler = reconciler
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
        """One beat: record this worker, renew its leases, reap expired ones, re-enqueue queued jobs the
        queue lost. Returns what was reaped and re-enqueued, as (job id, "requeued", "failed" or
        "reenqueued")."""
        held = self.held
        with database.connection_context():
            now = time.time()
            (Worker.insert(name=self.name, models=json.dumps(list(self.models)), threads=self.threads,
                           running=json.dumps(held), started_at=self.started_at, heartbeat_at=now)
             .on_conflict(conflict_target=[Worker.name],
                          update={Worker.models: json.dumps(list(self.models)), Worker.threads: self.threads,
                                  Worker.running: json.dumps(held), Worker.heartbeat_at: now,
                                  Worker.stopping_at: None})      # the same "host:pid" started again
             .execute())
            jobs.renew_leases(self.name, held, self.lease_seconds)
            reaped = reap(self.enqueue, now)
            if self.metrics is not None:
                for job_id, outcome in reaped:
                    if outcome == "requeued":
                        self.metrics.job_requeued("lease_expired")
                    else:
                        self.metrics.job_finished(job_id)
            return reaped + [(job_id, "reenqueued") for job_id in self._reconcile(now)]

    def _reconcile(self, now: float) -> list[str]:
        """The reconciler's run; a queue that does not answer is logged and tried again next beat, so
        it never stops the leases from being renewed."""
        if self.reconciler is None:
            return []
        try:
            done = self.reconciler.run(self.enqueue, now)
        except Exception as e:              # noqa: BLE001 - Redis down: the next beat looks again
            logger.warning("heartbeat %s: could not look for queued jobs missing from the queue (%s: %s); "
                           "trying again next beat", self.name, type(e).__name__, e)
            return []
        if self.metrics is not None:
            for _ in done:
                self.metrics.job_requeued("lost_by_queue")
        return done


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
    """Workers that beat in the last `within` seconds, newest first (stopping ones included)."""
    return list(Worker.select().where(Worker.heartbeat_at >= time.time() - within)
                .order_by(Worker.heartbeat_at.desc()))


def serving_workers(within: float) -> list[Worker]:
    """Workers that take jobs: they beat in the last `within` seconds (pass the lease: a worker beats
    every quarter of it) and were not told to stop. Newest first."""
    return [w for w in live_workers(within) if w.stopping_at is None]


def serves(worker: Worker, models: set[str]) -> bool:
    """Whether `worker` runs jobs that need the catalogue ids `models` (a worker with none listed serves all)."""
    listed = set(json.loads(worker.models or "[]"))
    return not listed or models <= listed


def queue_depth() -> dict[int, int]:
    """Queued jobs by priority (highest first), from the job rows: the truth whatever the queue backend."""
    rows = (Job.select(Job.priority, fn.COUNT(Job.id).alias("n")).where(Job.status == "queued")
            .group_by(Job.priority).order_by(Job.priority.desc()))
    return {row.priority: row.n for row in rows}
