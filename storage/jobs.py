"""Job rows through their lifecycle: queued -> running -> succeeded | failed | cancelled.

Every transition is one conditional UPDATE, so two workers (or a worker and a cancel) never both
win: a job is claimed once and finished once.
"""
from __future__ import annotations

import json
import time
import uuid

from storage.models import FINISHED, Job, User


def create_job(owner: User, *, spec: str, plan: str, plan_hash: str, credits: float = 0.0,
               priority: int = 0, replay_of: str = "", nodes: int = 1) -> Job:
    return Job.create(id=uuid.uuid4().hex, owner=owner, spec=spec, plan=plan, plan_hash=plan_hash,
                      credits=credits, priority=priority, replay_of=replay_of, progress_nodes=nodes)


def claim(job_id: str, worker: str) -> Job | None:
    """Move a queued job to running for `worker`; None if it is not queued (cancelled, or taken)."""
    now = time.time()
    taken = (Job.update(status="running", started_at=now, worker=worker, attempts=Job.attempts + 1)
             .where((Job.id == job_id) & (Job.status == "queued")).execute())
    return Job.get_by_id(job_id) if taken else None


def set_progress(job_id: str, *, step: int, steps: int, node: int, nodes: int, phase: str = "") -> None:
    """`phase`: what `step` of `steps` counts: "" for denoising steps, "frame" for decoded video frames."""
    (Job.update(progress_step=step, progress_steps=steps, progress_node=node, progress_nodes=nodes,
                progress_phase=phase)
     .where((Job.id == job_id) & (Job.status == "running")).execute())


def finish(job_id: str, status: str, *, error: str = "", outputs: list[str] | None = None,
           result: dict | None = None) -> bool:
    """Move an unfinished job to `status`; False if it had already finished (nothing changes then)."""
    if status not in FINISHED:
        raise ValueError(f"finish() takes one of {FINISHED}, got {status!r}")
    values = {"status": status, "finished_at": time.time(), "error": error}
    if outputs is not None:
        values["outputs"] = json.dumps(outputs)
    if result is not None:
        values["result"] = json.dumps(result)
    return bool(Job.update(**values).where((Job.id == job_id) & Job.status.not_in(FINISHED)).execute())


def request_cancel(job_id: str) -> str:
    """Cancel a job: a queued one at once, a running one at its next step. Returns the new status."""
    if Job.update(status="cancelled", cancel_requested=True, finished_at=time.time(), error="Cancelled.") \
            .where((Job.id == job_id) & (Job.status == "queued")).execute():
        return "cancelled"
    Job.update(cancel_requested=True).where((Job.id == job_id) & (Job.status == "running")).execute()
    return Job.get_by_id(job_id).status


def cancel_requested(job_id: str) -> bool:
    return bool(Job.select(Job.cancel_requested).where(Job.id == job_id).scalar())


def find_job(owner: User, job_id) -> Job | None:
    """The job with `job_id` if `owner` owns it (or is an admin); None otherwise (someone else's job
    looks missing)."""
    if not isinstance(job_id, str) or not job_id:
        return None
    mine = True if owner.role == "admin" else (Job.owner == owner)
    return Job.get_or_none((Job.id == job_id) & mine)


def recent_jobs(owner: User, limit: int = 50) -> list[Job]:
    return list(Job.select().where(Job.owner == owner).order_by(Job.created_at.desc()).limit(limit))
