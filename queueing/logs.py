"""Log lines that say which job they are about: a JSON formatter, a job-id context, and the one call
that sets up a process's handler.

- `job_context(job_id)` marks everything logged inside it (in this thread or asyncio task: it is a
  `contextvars.ContextVar`, so Huey's worker threads each carry their own job) as about that job.
- `JobIdFilter` puts the job id on each record as `record.job_id`: an explicit
  `extra={"job_id": ...}` first, then the innermost `job_context`, then a "job <32 hex digits>" in
  the message itself (the house style writes "job %s: ..." on every line about a job, so lines
  logged outside a context, like the web side's "job ...: queued", are caught too).
- `JsonFormatter` writes one JSON object per line: `time` (UTC, ISO 8601, milliseconds), `level`,
  `logger`, `message`, `job_id` when there is one, `exc_info` / `stack_info` as text when any, and
  whatever else was passed through `extra=`. `TextFormatter` is the terminal layout, with
  " [job ...]" appended where the message does not already name the job.
- `configure_logging(json=...)` installs one root handler, JSON or text as the settings' `log_format`
  (ATELIER_LOG_FORMAT: `json` | `text`, default text) says. Only entry points (app.py, the worker)
  call it.
- `install_huey_job_context(huey)` wraps every `run_job` task in its job's context through Huey's
  public pre/post-execute hooks, so Huey's own "executed in" and "Unhandled exception" lines carry it.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime
import json as jsonlib
import logging
import re
import sys
import threading
from collections.abc import Iterator

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOB_IN_MESSAGE = re.compile(r"\bjob ([0-9a-f]{32})\b")

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("atelier_job_id", default=None)

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "job_id"}


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


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "job_id", None):
            entry["job_id"] = record.job_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        return jsonlib.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The terminal layout (`TEXT_FORMAT`), naming the job at the end when the message does not."""

    def __init__(self, fmt: str = TEXT_FORMAT):
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job_id = getattr(record, "job_id", None)
        if job_id and job_id not in record.getMessage():
            first, newline, rest = text.partition("\n")
            text = f"{first} [job {job_id}]{newline}{rest}"
        return text


def make_handler(json: bool, stream=None) -> logging.Handler:
    """A stream handler (stderr by default) with the JSON or text formatter and the `JobIdFilter`."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler.addFilter(JobIdFilter())
    return handler


def configure_logging(json: bool = False, level: int | str = logging.INFO, stream=None) -> logging.Handler:
    """Give the root logger one handler (replacing any it had), JSON or text, at `level`.

    Args:
        json: True for JSON lines, False for text (settings.log_format says which).
        level: the root logger's level (default INFO).
        stream: where lines go (default stderr).

    Uvicorn's own loggers are made to propagate here; start uvicorn with `log_config=None` so that it
    does not install its own handlers over them. Returns the handler.
    """
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    handler = make_handler(json, stream)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.captureWarnings(True)
    return handler


def install_huey_job_context(huey, task_name: str = "run_job") -> None:
    """Run every `task_name` task (whose first argument is the job id) inside `job_context(job_id)`,
    from Huey's pre-execute hook to its post-execute hook (or to the cancel / interrupt signal when
    another pre-execute hook cancels it), so no job id outlives its task in the worker thread. Call
    once per Huey instance, in processes that run jobs."""
    from huey import signals

    tokens: dict[str, contextvars.Token] = {}
    lock = threading.Lock()

    def enter(task) -> None:
        if task.name == task_name and task.args:
            token = _job_id.set(str(task.args[0]))
            with lock:
                tokens[task.id] = token

    def leave(task) -> None:
        with lock:
            token = tokens.pop(task.id, None)
        if token is not None:
            _job_id.reset(token)

    name = f"atelier-job-context-{task_name}"
    huey.pre_execute(name)(enter)
    huey.post_execute(name)(lambda task, task_value, exc: leave(task))
    huey.signal(signals.SIGNAL_CANCELED, signals.SIGNAL_INTERRUPTED)(lambda signal, task, *args: leave(task))
