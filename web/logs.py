"""How a process writes its log lines: a JSON or text formatter, and the one call that sets up its
handler. Only entry points (app.py, `python -m queueing.worker`) call `configure_logging`.

- `JsonFormatter` writes one JSON object per line: `time` (UTC, ISO 8601, milliseconds), `level`,
  `logger`, `message`, `job_id` when the record has one, `exc_info` / `stack_info` as text when any,
  and whatever else was passed through `extra=`. `TextFormatter` is the terminal layout, with
  " [job ...]" appended where the message does not already name the job.
- `configure_logging(json=..., filters=...)` installs one root handler, JSON or text as the
  settings' `log_format` (ATELIER_LOG_FORMAT: `json` | `text`, default text) says, with the given
  filters on it: the entry points pass `queueing.logs.JobIdFilter()`, which puts the job a line is
  about on `record.job_id`. It also leaves out, once, the library output that tells an operator
  nothing (`quiet_libraries`: each entry of `LIBRARY_NOISE` says why it is noise).
"""
from __future__ import annotations

import datetime
import json as jsonlib
import logging
import os
import sys
from collections.abc import Iterable

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "job_id"}


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


# (logger, text in the message) of library lines that tell an operator nothing, each with why. Each is
# dropped by a filter on that one logger, so the library's other lines still show.
LIBRARY_NOISE = (
    # transformers, once per image-processor class on every start (the CLIP / SigLIP feature extractors
    # of SD and the video families): Atelier never installs torchvision, and the PIL processors it falls
    # back to are the ones it means to use. There is nothing to fix.
    ("transformers.utils.import_utils", "requires torchvision (not installed)"),
    # diffusers, whenever it loads an AutoencoderTiny it saved itself (the demo TAESD of the live previews):
    # its __init__ records `block_out_channels` in the config it saves, then warns on loading that the
    # config has it. The model loads as it was saved; there is nothing to fix.
    ("diffusers.configuration_utils", "were passed to AutoencoderTiny, but are not expected"),
    # the MCP library, at INFO for every stateless request an agent makes to the MCP server: a session
    # that never had an id ends with the request. It says nothing about the agent or the call.
    ("mcp.server.streamable_http", "Terminating session: None"),
)


class DropMessages(logging.Filter):
    """Drops the records whose message contains `text` (put it on one library logger)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_libraries(environ=os.environ) -> None:
    """Leave out the library output listed in `LIBRARY_NOISE`, and the libraries' progress bars. Called
    once per process by `configure_logging`; calling it again adds nothing.

    Progress bars: diffusers and transformers draw one with tqdm for every model they load or write
    ("Loading pipeline components...", "Loading weights", "Writing model shards"). In a log file they
    are carriage-return garbage between the lines, and the job's own progress (phase, step, ETA) is
    what the UI, /job_status and the "job ...: running" lines already say. TQDM_DISABLE is tqdm's own
    default for `disable`, read when tqdm is imported: hence here, before the entry points import
    anything that imports it (tests/test_quiet_logs.py checks). A bar a caller explicitly enables still
    draws; set TQDM_DISABLE=0 to see them all.
    """
    environ.setdefault("TQDM_DISABLE", "1")
    for name, text in LIBRARY_NOISE:
        library_logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) and f.text == text for f in library_logger.filters):
            library_logger.addFilter(DropMessages(text))


def make_handler(json: bool, stream=None, filters: Iterable[logging.Filter] = ()) -> logging.Handler:
    """A stream handler (stderr by default) with the JSON or text formatter and `filters` attached."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    for log_filter in filters:
        handler.addFilter(log_filter)
    return handler


def configure_logging(json: bool = False, level: int | str = logging.INFO, stream=None,
                      filters: Iterable[logging.Filter] = (), quiet: bool = True) -> logging.Handler:
    """Give the root logger one handler (replacing any it had), JSON or text, at `level`.

    Args:
        json: True for JSON lines, False for text (settings.log_format says which).
        level: the root logger's level (default INFO).
        stream: where lines go (default stderr).
        filters: put on the handler, which sees the records of every logger that propagates to the
            root (default none; the entry points pass `queueing.logs.JobIdFilter()`).
        quiet: leave out the library noise of `quiet_libraries` (default True).

    Uvicorn's own loggers are made to propagate here; start uvicorn with `log_config=None` so that it
    does not install its own handlers over them. Returns the handler.
    """
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    handler = make_handler(json, stream, filters)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.captureWarnings(True)
    if quiet:
        quiet_libraries()
    return handler
