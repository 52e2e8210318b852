"""Job rows through their lifecycle: queued -> running -> succeeded | failed | cancelled.

Every transition is one conditional UPDATE, so two workers (or a worker and a cancel) never both
win: a job is claimed once and finished once. A running job is leased to its worker until
`lease_until`; the worker renews the lease while it runs, and a job whose lease ran out goes back to
the queue (or fails) through `requeue`, which only one process can win. A queued job's `enqueued_at`
says when its id was last put on the queue; a job the queue lost (Redis restarted empty) is put back
through `reenqueue`, which also only one process can win.
"""
from __future__ import annotations

import json
import time
import uuid

from storage.models import FINISHED, Job, User


def create_job(owner: User, *, spec: str, plan: str, plan_hash: str, credits: float = 0.0,
               priority: int = 0, replay_of: str = "", nodes: int = 1, generations: int = 1) -> Job:
    return Job.create(id=uuid.uuid4().hex, owner=owner, spec=spec, plan=plan, plan_hash=plan_hash,
                      credits=credits, priority=priority, replay_of=replay_of, progress_nodes=nodes,
                      generations=generations)


def claim(job_id: str, worker: str, lease_seconds: float | None = None) -> Job | None:
    """Move a queued job to running for `worker`, leased for `lease_seconds` (None: no lease); None if
    it is not queued (cancelled, or taken)."""
    now = time.time()
    taken = (Job.update(status="running", started_at=now, worker=worker, attempts=Job.attempts + 1,
                        lease_until=now + lease_seconds if lease_seconds else None, progress_step=0,
                        progress_steps=0, progress_phase="", progress_preview=None, progress_eta=None,
                        progress_at=now)
             .where((Job.id == job_id) & (Job.status == "queued")).execute())
    return Job.get_by_id(job_id) if taken else None


def renew_leases(worker: str, job_ids: list[str], lease_seconds: float) -> int:
    """Extend the leases `worker` holds on the running jobs `job_ids`; how many it still holds."""
    if not job_ids:
        return 0
    return (Job.update(lease_until=time.time() + lease_seconds)
            .where(Job.id.in_(job_ids) & (Job.worker == worker) & (Job.status == "running")).execute())


def expired_leases(now: float | None = None) -> list[Job]:
    """Running jobs whose worker stopped renewing them."""
    now = time.time() if now is None else now
    return list(Job.select().where((Job.status == "running") & Job.lease_until.is_null(False)
                                   & (Job.lease_until < now)))


def requeue(job: Job, *, worker: str | None = None, expired_before: float | None = None,
            count_attempt: bool = True) -> bool:
    """Put a running job back in the queue, if it is still as the caller saw it: held by `worker` (a
    worker giving it back) or with its lease run out before `expired_before` (a reaper). False if
    someone else moved it first. `count_attempt=False` gives the attempt back (a graceful stop)."""
    condition = (Job.id == job.id) & (Job.status == "running") & (Job.attempts == job.attempts)
    if worker is not None:
        condition &= Job.worker == worker
    if expired_before is not None:
        condition &= Job.lease_until < expired_before
    values = {"status": "queued", "worker": "", "lease_until": None, "started_at": None, "progress_step": 0,
              "progress_steps": 0, "progress_node": 0, "progress_phase": "", "progress_preview": None,
              "progress_eta": None, "progress_at": None, "enqueued_at": time.time()}
    if not count_attempt:
        values["attempts"] = Job.attempts - 1
    return bool(Job.update(**values).where(condition).execute())


def _last_enqueued_before(before: float):
    """Rows whose id was last enqueued before `before`; a row from before migration 0008 has no
    `enqueued_at`, and its `created_at` stands in for it."""
    return ((Job.enqueued_at < before) | (Job.enqueued_at.is_null() & (Job.created_at < before)))


def stale_queued(before: float, limit: int | None = None) -> list[Job]:
    """Queued jobs whose id was last put on the queue before `before`, oldest first (at most `limit`):
    the ones the queue may have lost (the caller checks whether the queue still has them)."""
    return list(Job.select().where((Job.status == "queued") & _last_enqueued_before(before))
                .order_by(Job.created_at).limit(limit))


def reenqueue(job_id: str, before: float) -> bool:
    """Mark a queued job as enqueued now, if it is still queued and was last enqueued before `before`;
    the caller then puts its id on the queue. False if another process did it first (its mark is newer
    than `before`) or the job is no longer queued."""
    return bool(Job.update(enqueued_at=time.time())
                .where((Job.id == job_id) & (Job.status == "queued") & _last_enqueued_before(before)).execute())


def mark_enqueued(job_id: str) -> None:
    """Record that a queued job's id is being put on the queue again now (a worker handing it on)."""
    Job.update(enqueued_at=time.time()).where((Job.id == job_id) & (Job.status == "queued")).execute()


def set_progress(job_id: str, *, step: int, steps: int, node: int, nodes: int, phase: str = "denoising",
                 eta: float | None = None, preview: bytes | None = None) -> None:
    """A running job's progress: in node `node` of `nodes`, `phase` ("loading", "denoising": `step` of `steps`
    counts denoising steps, "decoding": decoded video frames), with `eta` seconds left (None: not known yet)
    and, when given, a new `preview` (PNG bytes; None keeps the last one)."""
    values = {"progress_step": step, "progress_steps": steps, "progress_node": node, "progress_nodes": nodes,
              "progress_phase": phase, "progress_eta": eta, "progress_at": time.time()}
    if preview is not None:
        values["progress_preview"] = preview
    Job.update(**values).where((Job.id == job_id) & (Job.status == "running")).execute()


def set_phase(job_id: str, phase: str) -> None:
    """A running job's phase alone ("saving" its outputs), its step counts and preview left as they were."""
    (Job.update(progress_phase=phase, progress_eta=None, progress_at=time.time())
     .where((Job.id == job_id) & (Job.status == "running")).execute())


def finish(job_id: str, status: str, *, error: str = "", outputs: list[str] | None = None,
           result: dict | None = None, worker: str | None = None, expired_before: float | None = None) -> bool:
    """Move an unfinished job to `status`; False if it had already finished, if `worker` is given and no
    longer holds it (its lease ran out and the job was handed on), or if `expired_before` is given and
    its lease was renewed since: nothing changes then."""
    if status not in FINISHED:
        raise ValueError(f"finish() takes one of {FINISHED}, got {status!r}")
    values = {"status": status, "finished_at": time.time(), "error": error, "lease_until": None, "progress_eta": None}
    if status == "succeeded":
        values["progress_preview"] = None      # the outputs show now; a cancelled or failed job keeps its last one
    if outputs is not None:
        values["outputs"] = json.dumps(outputs)
    if result is not None:
        values["result"] = json.dumps(result)
    condition = (Job.id == job_id) & Job.status.not_in(FINISHED)
    if worker is not None:
        condition &= (Job.worker == worker) & (Job.status == "running")
    if expired_before is not None:
        condition &= (Job.status == "running") & (Job.lease_until < expired_before)
    return bool(Job.update(**values).where(condition).execute())


def serve_from(job_id: str, earlier: Job) -> bool:
    """Finish a queued job with the outputs of `earlier`, a succeeded job with the same plan, instead of
    running it; its result says so (`reused_from`). False if the job is no longer queued."""
    now = time.time()
    result = {**json.loads(earlier.result), "reused_from": earlier.id}
    return bool(Job.update(status="succeeded", started_at=now, finished_at=now, outputs=earlier.outputs,
                           result=json.dumps(result), progress_node=earlier.progress_nodes,
                           progress_nodes=earlier.progress_nodes)
                .where((Job.id == job_id) & (Job.status == "queued")).execute())


def succeeded_with_plan(owner: User, plan_hash: str, limit: int = 3) -> list[Job]:
    """`owner`'s newest succeeded jobs that ran the plan `plan_hash` (served ones included)."""
    return list(Job.select().where((Job.owner == owner) & (Job.plan_hash == plan_hash) & (Job.status == "succeeded"))
                .order_by(Job.finished_at.desc()).limit(limit))


def request_cancel(job_id: str) -> str:
    """Cancel a job: a queued one at once, a running one at its next step. Returns the new status."""
    if Job.update(status="cancelled", cancel_requested=True, finished_at=time.time(), error="Cancelled.") \
            .where((Job.id == job_id) & (Job.status == "queued")).execute():
        return "cancelled"
    Job.update(cancel_requested=True).where((Job.id == job_id) & (Job.status == "running")).execute()
    return Job.get_by_id(job_id).status


def cancel_requested(job_id: str) -> bool:
    return bool(Job.select(Job.cancel_requested).where(Job.id == job_id).scalar())


def still_held(job_id: str, worker: str) -> bool:
    """Whether `worker` still runs the job, with no cancel asked: what a running job checks at every step."""
    return Job.select().where((Job.id == job_id) & (Job.worker == worker) & (Job.status == "running")
                              & (Job.cancel_requested == False)).exists()  # noqa: E712 - SQL, not Python


def find_job(owner: User, job_id) -> Job | None:
    """The job with `job_id` if `owner` owns it (or is an admin); None otherwise (someone else's job
    looks missing)."""
    if not isinstance(job_id, str) or not job_id:
        return None
    mine = True if owner.role == "admin" else (Job.owner == owner)
    return Job.get_or_none((Job.id == job_id) & mine)


def recent_jobs(owner: User, limit: int = 50) -> list[Job]:
    return list(Job.select().where(Job.owner == owner).order_by(Job.created_at.desc()).limit(limit))
