"""Honest progress through the served app (issue 14, items 1 and 2): /job_status shows live previews that change
as a job denoises, its phase, an estimate of the seconds left, a queued job's place in line counting down, and a
cancelled job keeps its last preview."""
import base64
import io
import json
import re
import uuid

import PIL.Image
import pytest

from tests.conftest import wait_until


def submit(client, **params) -> str:
    params = {"prompt": f"a lighthouse {uuid.uuid4().hex[:8]}", **params}   # never served from earlier outputs
    spec = {"version": 1, "nodes": [{"id": "a", "kind": "txt2img", "params": params}]}
    return client.predict(spec=json.dumps(spec), api_name="/submit")["job_id"]


def status(client, job_id) -> dict:
    return client.predict(job_id=job_id, api_name="/job_status")


def picture(data_url: str) -> PIL.Image.Image:
    assert data_url.startswith("data:image/png;base64,"), data_url[:40]
    return PIL.Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_a_running_job_shows_changing_previews_its_phase_and_the_time_left(client):
    job_id = submit(client, steps=30, width=512, height=384, seed=11)
    seen = []
    final = wait_until(lambda: seen.append(status(client, job_id)) or
                       (seen[-1] if seen[-1]["status"] in ("succeeded", "failed", "cancelled") else None),
                       "the 30-step job to finish", timeout=600, interval=0.05)
    assert final["status"] == "succeeded", final["error"]

    previews = {s["preview"] for s in seen if s["preview"]}
    assert len(previews) >= 3, f"{len(previews)} different previews in {len(seen)} looks"
    for data_url in previews:
        image = picture(data_url)
        assert image.size == (256, 192) and image.mode == "RGB"      # the picture's shape, 256 on its long side
    denoising = [s for s in seen if s["phase"] == "denoising"]
    assert denoising and all(s["status"] == "running" and s["queue_position"] is None for s in denoising)
    timed = [s for s in denoising if s["eta_seconds"] is not None]
    assert timed and all(s["eta_seconds"] >= 0 for s in timed) and any(s["eta_seconds"] > 0 for s in timed)
    assert any(re.fullmatch(r"denoising: step \d+ of 30 · about \d+ s left", s["progress"]["text"])
               for s in timed), [s["progress"]["text"] for s in timed]
    phases = [s["phase"] for s in seen]
    assert set(phases) <= {"queued", "loading", "denoising", "saving", "done"}, phases
    assert phases.index("denoising") < phases.index("done")
    assert (final["phase"], final["preview"], final["eta_seconds"], final["progress"]["text"]) == ("done", "", None,
                                                                                                   "done")


def test_a_queued_jobs_place_in_line_counts_down(client, atelier):
    """With every consumer thread busy with a long job, two more wait: 1st and 2nd in line. When one long job
    is cancelled the first waiting one starts, and the second becomes 1st in line."""
    blockers = [submit(client, steps=150, width=128, height=128) for _ in range(atelier.settings.queue_workers)]
    waiting = []
    try:
        wait_until(lambda: all(status(client, b)["status"] == "running" for b in blockers), "the long jobs to start",
                   timeout=300)
        waiting = [submit(client, steps=60), submit(client, steps=60)]
        first, second = (status(client, w) for w in waiting)
        assert (first["status"], first["phase"], first["queue_position"]) == ("queued", "queued", 1)
        assert re.fullmatch(r"queued: 1st in line · waiting \d+ s", first["progress"]["text"]), first["progress"]
        assert second["queue_position"] == 2 and second["progress"]["text"].startswith("queued: 2nd in line")
        assert first["preview"] == "" and first["eta_seconds"] is None

        client.predict(job_id=blockers[0], api_name="/cancel_job")
        wait_until(lambda: status(client, waiting[1])["queue_position"] == 1, "the second to be 1st in line",
                   timeout=300, details=lambda: str(status(client, waiting[1])))
        assert status(client, waiting[0])["queue_position"] is None
    finally:
        for job_id in blockers + waiting:
            client.predict(job_id=job_id, api_name="/cancel_job")
    for job_id in waiting:
        wait_until(lambda: status(client, job_id)["finished_at"] is not None, "the waiting jobs to end", timeout=300)


def test_a_cancelled_job_keeps_its_last_preview(client):
    job_id = submit(client, steps=150, width=256, height=256)
    try:
        wait_until(lambda: status(client, job_id)["preview"], "a first preview", timeout=300)
    finally:
        client.predict(job_id=job_id, api_name="/cancel_job")
    final = wait_until(lambda: (lambda s: s if s["finished_at"] is not None else None)(status(client, job_id)),
                       "the job to stop", timeout=300)
    assert (final["status"], final["phase"], final["eta_seconds"]) == ("cancelled", "cancelled", None)
    assert re.fullmatch(r"Cancelled at step \d+ of 150\.", final["error"]), final["error"]
    assert picture(final["preview"]).size == (256, 256)


@pytest.mark.parametrize("position, text", [(1, "queued: 1st in line"), (2, "queued: 2nd in line"),
                                            (3, "queued: 3rd in line"), (11, "queued: 11th in line"),
                                            (22, "queued: 22nd in line")])
def test_the_place_in_line_reads_as_people_say_it(position, text):
    from queueing.service import progress_text
    from storage.models import Job

    assert re.fullmatch(re.escape(text) + r" · waiting \d+ s", progress_text(Job(status="queued"), "queued", position,
                                                                           None))


def test_running_text_names_the_phase_the_node_and_the_time_left():
    from queueing.service import about, progress_text
    from storage.models import Job

    job = Job(status="running", progress_step=12, progress_steps=30, progress_node=1, progress_nodes=2)
    assert progress_text(job, "denoising", None, 8.4) == "denoising: step 12 of 30 · node 1 of 2 · about 8 s left"
    assert progress_text(job, "loading", None, None) == "loading model · node 1 of 2"
    assert progress_text(job, "decoding", None, None) == "decoding: frame 12 of 30 · node 1 of 2"
    assert about(150) == "about 2 min left"


def test_an_upscalers_tiles_are_previewed_and_the_time_left_counts_the_nodes_to_come(atelier, owner):
    """A txt2img then a model upscale of it: the upscaler's latents are previewed too (at the tile's shape), and
    at the first node's last step the time left is that of the upscale still to run."""
    from pipelines.runner import Runner
    from pipelines.spec import WorkflowSpec

    graph = {"nodes": [
        {"id": "a", "kind": "txt2img", "params": {"prompt": "a harbour", "width": 64, "height": 64, "steps": 6,
                                                  "seed": 3}},
        {"id": "b", "kind": "upscale", "params": {"upscaler": "demo-upscaler-x4", "scale": 4, "steps": 4,
                                                  "tile_size": 64, "seed": 4}, "inputs": {"image": ["a", "images"]}}]}
    plan = atelier.service.quote(owner, WorkflowSpec.from_dict(graph))
    runner = atelier.runner
    often = Runner(runner.backend, runner.video_backend, preview_interval=0.001)   # a preview whenever it is cheap
    seen = []
    result = often.run(plan, on_progress=seen.append)

    upscaling = [p for p in seen if p.node_id == "b" and p.phase == "denoising"]
    assert [p.step for p in upscaling] == [1, 2, 3, 4] and any(p.preview is not None for p in upscaling)
    assert {p.preview.size for p in upscaling if p.preview is not None} == {(64, 64)}
    first = [p for p in seen if p.node_id == "a" and p.phase == "denoising"]
    assert first[-1].step == 6 and first[-1].eta_seconds > 0          # the upscale is still to come
    assert upscaling[-1].eta_seconds == 0
    loading = [p for p in seen if p.phase == "loading"]
    assert {p.node_id for p in loading} == {"a", "b"} and all(p.step == 0 for p in loading)
    assert seen[0].phase == "loading"                                   # before anything else
    assert result.previews >= 2 and result.preview_seconds > 0
