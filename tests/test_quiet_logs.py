"""Quiet logs (issue 14, item 10): a person's mistake is one line with its code and no traceback, in a
UI or API handler, in a job that fails on the worker and on the login routes; the unexpected keeps its
traceback; the library noise listed in web.logs is left out at start-up, the library's other lines are
not."""
from __future__ import annotations

import logging
import os
import subprocess
import uuid
import sys

import gradio as gr
import httpx
import pytest

from pipelines.errors import AtelierError
from tests.conftest import wait_until
from ui.common import user_errors
from web.logs import DropMessages, quiet_libraries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Remember(logging.Handler):
    """Keeps the messages it is handed."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def records_of(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_a_handlers_user_mistake_is_one_line_with_its_code_and_the_unexpected_a_traceback(caplog):
    @user_errors
    def refuse(kind: str):
        if kind == "atelier":
            raise AtelierError("The prompt is empty; describe the picture you want.", code="empty_prompt")
        if kind == "gradio":
            raise gr.Error("Enter the user's id.")
        raise KeyError("a bug")

    caplog.set_level(logging.INFO, logger="ui.common")
    for kind in ("atelier", "gradio"):
        with pytest.raises(gr.Error) as raised:
            refuse(kind)
        assert raised.value.print_exception is False          # Gradio's queue would print its traceback
    [atelier, gradio] = records_of(caplog, "ui.common")
    assert atelier.levelno == logging.INFO and atelier.exc_info is None
    assert atelier.getMessage() == ("handler refuse: refused (empty_prompt): The prompt is empty; describe the "
                                    "picture you want.")
    assert gradio.levelno == logging.INFO and gradio.exc_info is None and "(user_input)" in gradio.getMessage()

    caplog.clear()
    with pytest.raises(gr.Error, match="Something went wrong on the server"):
        refuse("bug")
    [bug] = records_of(caplog, "ui.common")
    assert bug.levelno == logging.ERROR and bug.exc_info is not None and bug.exc_info[0] is KeyError


def test_the_generator_form_logs_the_same(caplog):
    @user_errors
    def stream():
        yield "first"
        raise AtelierError("Not enough credits.", code="insufficient_credits")

    caplog.set_level(logging.INFO, logger="ui.common")
    with pytest.raises(gr.Error, match="Not enough credits"):
        list(stream())
    [line] = records_of(caplog, "ui.common")
    assert "(insufficient_credits)" in line.getMessage() and line.exc_info is None


def test_a_refused_api_call_and_a_refused_login_are_one_line_each(accounts_app, make_user, caplog):
    from gradio_client.exceptions import AppError

    from tests.conftest import api_client

    caplog.set_level(logging.INFO)
    user, key = make_user()
    with pytest.raises(AppError, match="not valid"):
        api_client(accounts_app, "atl_mistyped").predict(api_name="/account")
    line = wait_until(lambda: [r for r in records_of(caplog, "ui.common") if "(bad_api_key)" in r.getMessage()],
                      "the refused call's log line")[0]
    assert line.exc_info is None and line.levelno == logging.INFO

    with httpx.Client(base_url=accounts_app.url, follow_redirects=False, timeout=60) as b:
        assert b.post("/login", data={"email": user.email, "password": "wrong password"}).status_code == 303
    [login] = [r for r in records_of(caplog, "web.accounts") if "login refused" in r.getMessage()]
    assert login.exc_info is None and "(unauthorized)" in login.getMessage()
    assert not [r for r in caplog.records if r.exc_info and r.name in ("ui.common", "web.accounts")]


def unique_png() -> bytes:
    """A small PNG no other test stores (its blob is deleted here)."""
    import io

    from PIL import Image

    image = Image.new("RGB", (64, 64), tuple(os.urandom(3)))
    image.putpixel((0, 0), tuple(os.urandom(3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_job_that_fails_for_the_request_is_one_line_with_its_code(atelier, owner, caplog):
    """A job whose input image left the blob store before it ran: the request's fault (an AtelierError on
    the worker, "missing_image"), so one line with its code and no traceback."""
    from pipelines.spec import Img2Img, Link, LoadImage, Node, WorkflowSpec

    caplog.set_level(logging.INFO, logger="queueing.executor")
    upload = atelier.service.upload(owner, unique_png())
    atelier.service.blobs.delete(upload.blob_key)
    spec = WorkflowSpec(nodes=(Node("src", LoadImage(artifact_id=upload.id)),
                               Node("1", Img2Img(prompt="a fox", strength=0.5), (("image", Link("src", "image")),))))
    job = atelier.service.submit(owner, spec)
    job = atelier.service.wait(owner, job.id, timeout=300)
    assert job.status == "failed" and "no longer stored" in job.error
    [line] = [r for r in records_of(caplog, "queueing.executor") if job.id in r.getMessage() and "failed" in
              r.getMessage()]
    assert line.levelno == logging.INFO and line.exc_info is None
    assert f"job {job.id}: failed (missing_image): " in line.getMessage()


def test_library_noise_is_dropped_at_start_up_and_other_library_lines_kept():
    environ: dict[str, str] = {}
    quiet_libraries(environ)
    quiet_libraries(environ)                                  # once is enough; twice adds nothing
    assert environ == {"TQDM_DISABLE": "1"}
    noisy = logging.getLogger("transformers.utils.import_utils")
    assert sum(isinstance(f, DropMessages) for f in noisy.filters) == 1
    # transformers' loggers write through its own handler and do not propagate to the root: listen on
    # the logger itself.
    listener = Remember()
    noisy.addHandler(listener)
    try:
        noisy.warning("`CLIPImageProcessor` requires torchvision (not installed); falling back to "
                      "`CLIPImageProcessorPil` for backward compatibility.")
        noisy.warning("Some other warning an operator should read")
    finally:
        noisy.removeHandler(listener)
    assert listener.messages == ["Some other warning an operator should read"]


def test_the_entry_points_log_set_up_quiets_progress_bars():
    """configure_logging, as app.py and the worker call it, turns tqdm's bars off for the process (a
    child process, so this one's environment is untouched) unless the operator asked for them. tqdm reads
    TQDM_DISABLE when it is imported, so the entry points' imports up to that call must not import it."""
    code = ("import os, sys; import app, queueing.worker; from queueing.logs import JobIdFilter; "
            "from storage.db import SchemaTooNew; from web import configure_logging; "
            "assert 'tqdm' not in sys.modules, 'tqdm imported before the log set-up'; configure_logging(); "
            "import tqdm; print(os.environ['TQDM_DISABLE'], tqdm.tqdm(range(2)).disable)")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["1", "True"], out.stderr
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "TQDM_DISABLE": "0"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[0] == "0", out.stderr


def test_a_consumer_stopping_mid_task_leaves_the_job_context_to_the_tasks_own_thread(caplog):
    """Huey sends "interrupted" for the running tasks from the thread that stops the consumer; resetting
    the task's job context there raised "created in a different Context", logged with a traceback by
    Huey at every shutdown with a job running. The task's own thread leaves it when the task ends."""
    import threading

    from huey import MemoryHuey

    from queueing.logs import current_job_id, install_huey_job_context

    huey = MemoryHuey("atelier-quiet-logs", immediate=False)
    running, finish = threading.Event(), threading.Event()
    after: list = []

    @huey.task(name="run_job")
    def run_job(job_id):
        running.set()
        assert finish.wait(60)
        return current_job_id()

    install_huey_job_context(huey)
    job_id = uuid.uuid4().hex

    def work():
        huey.execute(run_job.s(job_id))
        after.append(current_job_id())

    caplog.set_level(logging.INFO, logger="huey")
    worker = threading.Thread(target=work)
    worker.start()
    assert running.wait(60)
    huey.notify_interrupted_tasks()                     # what a stopping consumer does, from its own thread
    finish.set()
    worker.join(60)
    assert after == [None]                              # the task's thread left the job's context
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
