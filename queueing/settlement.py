"""Ending a job and settling its credits in one transaction, so a job that finished was always
charged or refunded exactly once (the ledger's keys make a second settle do nothing)."""
from __future__ import annotations

from auth import credits
from storage import jobs
from storage.db import database
from storage.models import Job


def finish(job_id: str, status: str, **values) -> bool:
    """Move an unfinished job to `status` (see storage.jobs.finish) and capture its reserved credits on
    success or release them otherwise. False if the job had already finished."""
    with database.atomic():
        if not jobs.finish(job_id, status, **values):
            return False
        credits.settle(Job.get_by_id(job_id), succeeded=status == "succeeded")
        return True


def cancel(job_id: str) -> str:
    """Cancel a job (see storage.jobs.request_cancel); a queued one is released at once, a running one
    when its worker stops. Returns the job's status."""
    with database.atomic():
        status = jobs.request_cancel(job_id)
        if status == "cancelled":
            credits.settle(Job.get_by_id(job_id), succeeded=False)
        return status
