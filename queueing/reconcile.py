"""Jobs the queue lost: a job row that says `queued` while no message for it waits on the queue.

The job row is the source of truth and the queue only carries job ids. When the queue loses its
messages (Redis restarted without persistence, its data flushed, the SQLite queue file replaced), the
rows stay `queued` for good and their credits stay reserved. Every process that runs jobs reconciles
the two when it starts and at every heartbeat (`leases.Heartbeat`):

1. find the queued rows whose id was last put on the queue (`Job.enqueued_at`) more than
   `grace_seconds` ago; none, and nothing else is read;
2. read the ids of the `run_job` messages in the queue (pending and scheduled), from Huey's storage;
3. for each row of 1 missing from 2, move its `enqueued_at` to now by a conditional UPDATE
   (`storage.jobs.reenqueue`), so that of several workers reconciling at once exactly one wins, and
   only the winner enqueues it again.

The grace period covers the moments a job is queued in its row and on no queue without being lost: a
job is written before its id is enqueued, and a worker takes a message off the queue before it claims
the row (milliseconds both). A job waiting in a long queue is old but present, so it is left alone.
Should a worker take the message between steps 2 and 3, the job is enqueued twice; the second
message finds the job claimed (`storage.jobs.claim` is conditional) and does nothing.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from storage import jobs

logger = logging.getLogger(__name__)

TASK_NAME = "run_job"        # queueing.tasks registers it under this name


def queued_job_ids(huey) -> set[str]:
    """The job ids of every `run_job` message waiting in `huey`'s storage, ready or scheduled for later.
    Raises what the storage raises when it is not reachable (a ConnectionError from Redis)."""
    return {task.args[0] for task in [*huey.pending(), *huey.scheduled()]
            if task.name == TASK_NAME and task.args}


class Reconciler:
    """Puts back on the queue the queued jobs the queue lost.

    Args:
        huey: the Huey instance whose storage holds the queue.
        grace_seconds: how long after its id was last enqueued a queued job may be missing from the
            queue before it counts as lost (`queue.requeue_grace_seconds`, default 60).
    """

    def __init__(self, huey, grace_seconds: float):
        if grace_seconds <= 0:
            raise ValueError(f"grace_seconds must be positive, got {grace_seconds!r}")
        self.huey = huey
        self.grace_seconds = grace_seconds

    def run(self, enqueue: Callable[[str, int], None], now: float | None = None) -> list[str]:
        """Re-enqueue, through `enqueue(job id, priority)`, each queued job missing from the queue since
        before `now` minus the grace period, and that this process won (see the module docstring).
        Returns their ids. Raises when the queue cannot be read; a job whose `enqueue` raised is
        found again after another grace period."""
        before = (time.time() if now is None else now) - self.grace_seconds
        if not jobs.stale_queued(before, limit=1):
            return []
        present = queued_job_ids(self.huey)          # read before the rows, so a job taken meanwhile is not queued
        done = []
        for job in jobs.stale_queued(before):
            if job.id in present or not jobs.reenqueue(job.id, before):
                continue
            logger.warning("job %s: queued, but missing from the queue %.0f s after it was put there (was the "
                           "queue emptied?); enqueued again", job.id,
                           time.time() - (job.enqueued_at or job.created_at))
            enqueue(job.id, job.priority)
            done.append(job.id)
        return done
