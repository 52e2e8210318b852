"""The one Huey task, `run_job(job_id)`, registered the same way in every process.

The web process registers it only to enqueue; processes that run jobs pass `execute`.
"""
from __future__ import annotations

from collections.abc import Callable

from huey import Huey
from huey.api import TaskWrapper


def register_tasks(huey: Huey, execute: Callable[[str], None] | None) -> TaskWrapper:
    @huey.task(name="run_job")
    def run_job(job_id: str) -> None:
        if execute is None:
            raise RuntimeError("This process only enqueues jobs; start `python -m queueing.worker` to run them.")
        execute(job_id)

    return run_job
