"""Logs (issue 6, item 5): JSON or text lines carrying the job id inside a job's context only, per thread and
inside Huey's tasks, and the log format and metrics settings read from the settings."""
from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
import uuid

import pytest

from queueing.logs import JobIdFilter, current_job_id, install_huey_job_context, job_context
from web.logs import JsonFormatter, TextFormatter, make_handler

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def log_lines():
    """A logger "atelier.test.observability" (and Huey's) writing JSON lines into a buffer; call the
    fixture's value to get the lines parsed."""
    buffer = io.StringIO()
    handler = make_handler(json=True, stream=buffer, filters=(JobIdFilter(),))
    loggers = [logging.getLogger("atelier.test.observability"), logging.getLogger("huey")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    for lg, (level, propagate) in zip(loggers, saved):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


def test_json_lines_carry_the_job_id_inside_job_context_only(log_lines):
    log = logging.getLogger("atelier.test.observability")
    job_id, inner = uuid.uuid4().hex, uuid.uuid4().hex
    log.info("before any job")
    with job_context(job_id):
        log.info("loading %s", "demo-sd15")
        with job_context(inner):
            log.warning("a nested job")
        log.info("two\nlines", extra={"worker": "host:42"})
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("it broke")
    log.info("after the job")
    named = uuid.uuid4().hex
    log.info("job %s: queued (someone, plan abc)", named)
    log.info("plan %s stored", uuid.uuid4().hex)

    lines = log_lines()
    assert [line.get("job_id") for line in lines] == [None, job_id, inner, job_id, job_id, None, named, None]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert lines[1]["message"] == "loading demo-sd15" and lines[1]["level"] == "INFO"
    assert lines[1]["logger"] == "atelier.test.observability" and lines[1]["time"].endswith("Z")
    assert lines[3]["message"] == "two\nlines" and lines[3]["worker"] == "host:42"
    assert lines[4]["level"] == "ERROR" and "ZeroDivisionError" in lines[4]["exc_info"]
    assert "Traceback" in lines[4]["exc_info"] and "exc_info" not in lines[1]
    assert current_job_id() is None


def test_each_thread_logs_its_own_job(log_lines):
    log = logging.getLogger("atelier.test.observability")
    barrier = threading.Barrier(3)

    def work(job_id):
        with job_context(job_id):
            for step in range(3):
                barrier.wait(5)
                log.info("step %d", step)

    threads = [threading.Thread(target=work, args=(f"job-{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    lines = log_lines()
    assert len(lines) == 9
    assert sorted(line["job_id"] for line in lines) == sorted(f"job-{n}" for n in range(3) for _ in range(3))


def test_huey_tasks_run_inside_their_jobs_context(log_lines):
    from huey import MemoryHuey
    from huey.exceptions import CancelExecution

    huey = MemoryHuey("atelier-logs", immediate=True)
    log = logging.getLogger("atelier.test.observability")
    seen = []

    @huey.task(name="run_job")
    def run_job(job_id):
        seen.append(current_job_id())
        log.info("working")

    install_huey_job_context(huey)
    job_id = uuid.uuid4().hex
    run_job(job_id)
    assert seen == [job_id] and current_job_id() is None
    lines = log_lines()
    working = next(line for line in lines if line["message"] == "working")
    executed = next(line for line in lines if "executed in" in line["message"])
    assert working["job_id"] == executed["job_id"] == job_id

    @huey.pre_execute("refuse")
    def refuse(task):
        raise CancelExecution(retry=False)

    run_job(uuid.uuid4().hex)
    assert len(seen) == 1 and current_job_id() is None        # cancelled by a later hook: context left


def test_text_lines_name_the_job_once():
    record = logging.LogRecord("atelier", logging.INFO, __file__, 1, "loading %s", ("demo",), None)
    record.job_id = "abc123"
    assert TextFormatter().format(record).endswith("atelier: loading demo [job abc123]")
    record = logging.LogRecord("atelier", logging.INFO, __file__, 1, "job %s: queued", ("abc123",), None)
    record.job_id = "abc123"
    assert TextFormatter().format(record).endswith("atelier: job abc123: queued")
    assert json.loads(JsonFormatter().format(record))["job_id"] == "abc123"


def test_the_log_format_and_the_metrics_settings_come_from_the_settings():
    from configs import load_settings

    assert load_settings(environ={}).log_format == "text"
    assert load_settings(environ={"ATELIER_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ValueError, match=r"ATELIER_LOG_FORMAT / \[server\] log_format must be one of \('text', "
                                         r"'json'\), got 'yaml'"):
        load_settings(environ={"ATELIER_LOG_FORMAT": "yaml"})
    settings = load_settings(environ={"ATELIER_METRICS_TOKEN": "t0ken", "ATELIER_METRICS_PORT": "9109"})
    assert (settings.metrics_token, settings.worker_metrics_port) == ("t0ken", 9109)
    assert (load_settings(environ={}).metrics_token, load_settings(environ={}).worker_metrics_port) == ("", 0)
    script = """
import logging
from configs import load_settings
from queueing.logs import JobIdFilter, job_context
from web.logs import configure_logging
configure_logging(json=load_settings().log_format == "json", filters=(JobIdFilter(),))
with job_context("j1"):
    logging.getLogger("atelier").info("in a job")
logging.getLogger("uvicorn.error").warning("from uvicorn")
"""
    env = {**os.environ, "ATELIER_LOG_FORMAT": "json"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [(line["logger"], line.get("job_id")) for line in lines] == [("atelier", "j1"), ("uvicorn.error", None)]
