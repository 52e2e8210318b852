"""Which job a log line is about: a job-id context, and a filter that puts the job id on each record.
How lines are written (JSON or text) and the process's handler are `web.logs`'.

- `job_context(job_id)` marks everything logged inside it (in this thread or asyncio task: it is a
  `contextvars.ContextVar`, so Huey's worker threads each carry their own job) as about that job.
- `JobIdFilter` puts the job id on each record as `record.job_id`: an explicit
  `extra={"job_id": ...}` first, then the innermost `job_context`, then a "job <32 hex digits>" in
  the message itself (the house style writes "job %s: ..." on every line about a job, so lines
  logged outside a context, like the web side's "job ...: queued", are caught too). Entry points
  attach it to their handler: `web.logs.configure_logging(..., filters=(JobIdFilter(),))`.
- `install_huey_job_context(huey)` wraps every `run_job` task in its job's context through Huey's
  public pre/post-execute hooks, so Huey's own "executed in" and "Unhandled exception" lines carry it.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
from collections.abc import Iterator

JOB_IN_MESSAGE = re.compile(r"\bjob ([0-9a-f]{32})\b")

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("atelier_job_id", default=None)


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Within the block, every log record made in this thread (or asyncio task) carries `job_id`.
    Nests: the innermost context wins and the outer one comes back on exit."""
    token = _job_id.set(job_id or None)
    try:
        yield
    finally:
        _job_id.reset(token)


def current_job_id() -> str | None:
    """The job id of the innermost `job_context` around the caller, or None."""
    return _job_id.get()


class JobIdFilter(logging.Filter):
    """Sets `record.job_id` (see the module docstring for where it comes from); never drops a record.

    Attach it to a handler, not a logger: a handler's filters see the records of every logger that
    propagates to it, a logger's only its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None):
            return True
        job_id = _job_id.get()
        if job_id is None:
            found = JOB_IN_MESSAGE.search(record.getMessage())
            job_id = found.group(1) if found else None
        record.job_id = job_id
        return True


def install_huey_job_context(huey, task_name: str = "run_job") -> None:
    """Run every `task_name` task (whose first argument is the job id) inside `job_context(job_id)`,
    from Huey's pre-execute hook to its post-execute hook (or to the cancel / interrupt signal when
    another pre-execute hook cancels it), so no job id outlives its task in the worker thread. Call
    once per Huey instance, in processes that run jobs."""
    from huey import signals

    tokens: dict[str, tuple[int, contextvars.Token]] = {}       # task id -> (its thread, its token)
    lock = threading.Lock()

    def enter(task) -> None:
        if task.name == task_name and task.args:
            token = _job_id.set(str(task.args[0]))
            with lock:
                tokens[task.id] = (threading.get_ident(), token)

    def leave(task) -> None:
        # A consumer that stops sends "interrupted" for the tasks still running from its own thread
        # (Huey's notify_interrupted_tasks); a token can only be reset in the thread that set it, and
        # that thread resets it when the task ends (post-execute).
        with lock:
            held = tokens.get(task.id)
            if held is None or held[0] != threading.get_ident():
                return
            del tokens[task.id]
        _job_id.reset(held[1])

    name = f"atelier-job-context-{task_name}"
    huey.pre_execute(name)(enter)
    huey.post_execute(name)(lambda task, task_value, exc: leave(task))
    huey.signal(signals.SIGNAL_CANCELED, signals.SIGNAL_INTERRUPTED)(lambda signal, task, *args: leave(task))
