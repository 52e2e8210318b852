"""Many callers at once, as bench/load.py sends them (issue 11, item 10): every call gets its result;
a call whose job waits in the queue hears progress at least every few seconds, led by its job id, so
that nothing between the caller and the server takes it for a dead connection; and whoever lost the
connection anyway fetches what the job made by that id, file by file, whatever the file's kind."""
import hashlib
import re
import threading
import time

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from ui.common import KEEPALIVE_SECONDS

CALLS = 45          # more than the 40 worker slots and threads Gradio gives a mounted app by default
JOB_ID = re.compile(r"^job ([0-9a-f]{32}): ")


def wait_until(condition, timeout: float, what: str):
    """`condition()`'s first true value, polled until `timeout` seconds pass (then the test fails)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)
    return value


def progress_text(job) -> str:
    """The latest progress description a gradio_client job has heard ("" before any)."""
    units = job.status().progress_data or []
    return (units[-1].desc or "") if units else ""


@pytest.fixture
def held_worker(atelier, monkeypatch):
    """The app's worker takes its next job and then holds it until the yielded Event is set, so every other
    job stays queued for as long as a test needs (set again after the test, whatever happens)."""
    release = threading.Event()
    run = atelier.runner.run

    def held_run(plan, **kwargs):
        release.wait(300)
        return run(plan, **kwargs)

    monkeypatch.setattr(atelier.runner, "run", held_run)
    yield release
    release.set()


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_every_concurrent_call_gets_its_result_and_queued_calls_hear_progress(atelier, held_worker):
    client = Client(atelier.url, verbose=False, max_workers=CALLS + 5)    # gradio_client's default is 40 at once
    calls = [client.submit(prompt=f"keep alive {i}", seed=i, width=64, height=64, steps=2, api_name="/txt2img")
             for i in range(CALLS)]
    try:
        # Every call is being handled at once (none waits, silent, for a slot in Gradio's own queue), and
        # each has already said which job it follows.
        def every_call_names_its_job():
            texts = [progress_text(call) for call in calls]
            return texts if all(JOB_ID.match(text) for text in texts) else None

        texts = wait_until(every_call_names_its_job, 120, f"all {CALLS} calls to report progress with their job id")
        ids = [JOB_ID.match(t).group(1) for t in texts]
        assert len(set(ids)) == CALLS
        queued = [t for t in texts if re.search(r": queued: \d+(st|nd|rd|th) in line · waiting \d+ s$", t)]
        workers = atelier.settings.queue_workers
        assert len(queued) >= CALLS - workers, texts    # one job at most is in each held worker's hands
        # A queued call keeps hearing from the server while nothing about its job changes.
        last = calls[-1]
        heard = {progress_text(last)}
        started = time.monotonic()
        wait_until(lambda: heard.add(progress_text(last)) or len(heard) >= 3, 6 * KEEPALIVE_SECONDS + 30,
                   "a queued call to hear its progress repeated twice")
        assert all(": queued: " in t for t in heard), heard
        assert time.monotonic() - started < 6 * KEEPALIVE_SECONDS + 30
    finally:
        held_worker.set()
    for call, job_id in zip(calls, ids):
        files, info = call.result(timeout=600)
        assert info["job_id"] == job_id and info["status"] == "succeeded"
        assert len(files) == 1 and Image.open(files[0]["image"]).size == (64, 64)
        assert sha256(files[0]["image"]) == info["artifact_ids"][0]
    client.close()


def test_a_caller_who_lost_the_connection_fetches_every_file_by_the_job_id(client, held_worker, tmp_path):
    source = tmp_path / "source.png"
    Image.new("RGB", (64, 64), (40, 120, 200)).save(source)
    calls = [client.submit(image=handle_file(str(source)), prompt="a boat", strength=0.5, seed=2, steps=2,
                           api_name="/img2img"),
             client.submit(prompt="a paper boat", frames=5, fps=12, steps=2, seed=5, api_name="/txt2vid")]
    job_ids = []
    for call in calls:           # the jobs wait behind the held worker, their calls telling their ids
        job_ids.append(JOB_ID.match(wait_until(lambda: progress_text(call), 120, "progress with the job id"))  # noqa: B023
                       .group(1))
        call.cancel()            # then the caller goes away; its job does not
    held_worker.set()

    def finished(job_id: str):
        status = client.predict(job_id, api_name="/job_status")
        return status if status["status"] not in ("queued", "running") else None

    fetched = {}
    for job_id in job_ids:
        status = wait_until(lambda: finished(job_id), 600, f"job {job_id} to finish")   # noqa: B023
        assert status["status"] == "succeeded" and status["artifact_ids"]
        pending = list(status["artifact_ids"])
        while pending:            # what the job made, and what those came from or gave rise to
            artifact_id = pending.pop()
            if artifact_id in fetched:
                continue
            path, info = client.predict(artifact_id, api_name="/artifact_info")
            assert sha256(path) == artifact_id            # the stored bytes themselves
            fetched[artifact_id] = info["kind"]
            pending += [edge["artifact_id"] for edge in info["parents"] + info["children"]]
    assert {"image", "upload", "video", "poster"} <= set(fetched.values()), fetched
