"""Jobs through the real stack: JobService -> SqliteHuey -> consumer thread -> Runner on the tiny
demo models -> PNG blobs and Artifact rows."""
import io
import re
import threading
import time

import numpy as np
import PIL.Image
import pytest

from pipelines import Txt2Img, WorkflowSpec
from pipelines.infotext import parse_infotext
from storage.artifacts import png_texts
from storage.models import Artifact, Job
from tests.conftest import wait_until


def run(atelier, owner, **params):
    service = atelier.service
    job = service.submit(owner, WorkflowSpec.single(Txt2Img(**params)))
    return service.wait(owner, job.id, timeout=60)


def pixels(atelier, artifact_id):
    data = atelier.service.blobs.get(Artifact.get_by_id(artifact_id).blob_key)
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_a_job_becomes_an_artifact_with_its_recipe(atelier, owner):
    job = run(atelier, owner, prompt="a red fox", seed=7, batch_size=2, steps=3)
    assert job.status == "succeeded", job.error
    assert job.started_at >= job.created_at and job.finished_at >= job.started_at
    assert (job.progress_step, job.progress_steps) == (3, 3)
    assert len(job.artifact_ids) == 2
    artifact = Artifact.get_by_id(job.artifact_ids[1])
    data = atelier.service.blobs.get(artifact.blob_key)
    import hashlib
    assert hashlib.sha256(data).hexdigest() == artifact.id
    holding = atelier.artifacts.holding(owner, artifact.id)
    assert (holding.kind, holding.plan_hash, holding.seed) == ("image", job.plan_hash, 8)
    assert (artifact.width, artifact.height, artifact.mime) == (64, 64, "image/png")
    texts = png_texts(data)
    params = parse_infotext(texts["parameters"])
    assert params["prompt"] == "a red fox"
    assert (params["Seed"], params["Steps"], params["Sampler"], params["Size"]) == ("8", "3", "Euler", "64x64")
    import json
    recipe = json.loads(texts["atelier"])
    assert recipe["plan_hash"] == job.plan_hash and recipe["index"] == 1
    assert recipe["environment"]["device"] == "cpu"


def test_different_prompts_make_different_pictures(atelier, owner):
    fox = run(atelier, owner, prompt="a fox", seed=3)
    owl = run(atelier, owner, prompt="an owl", seed=3)
    assert fox.artifact_ids != owl.artifact_ids
    assert np.abs(pixels(atelier, fox.artifact_ids[0]) - pixels(atelier, owl.artifact_ids[0])).max() > 10


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "dpmpp_2m_sde", "dpmpp_sde"])
def test_image_k_of_a_batch_is_the_image_of_its_seed(atelier, owner, sampler):
    batch = run(atelier, owner, prompt="a lighthouse", seed=1000, batch_size=3, sampler=sampler)
    alone = run(atelier, owner, prompt="a lighthouse", seed=1002, sampler=sampler)
    assert batch.status == alone.status == "succeeded"
    difference = np.abs(pixels(atelier, batch.artifact_ids[2]) - pixels(atelier, alone.artifact_ids[0]))
    assert difference.max() <= 2


def test_replay_is_byte_identical_for_every_image_of_a_batch(atelier, owner):
    service = atelier.service
    original = run(atelier, owner, prompt="a castle", batch_size=2, sampler="euler_a", schedule="normal")
    for artifact_id in original.artifact_ids:
        job = service.wait(owner, atelier.artifacts.replay(owner, artifact_id).id, timeout=60)
        outcome = atelier.artifacts.replay_outcome(owner, job)
        assert (outcome["artifact_id"], outcome["original_id"], outcome["identical"]) == (artifact_id, artifact_id, True)
        assert outcome["verdict"].startswith("**Identical:**"), outcome["verdict"]


def test_a_second_job_on_a_model_does_not_reload_it(atelier, owner):
    run(atelier, owner, prompt="warm up", seed=1)
    cache = atelier.runner.backend.models
    loads = cache.loads
    run(atelier, owner, prompt="again", seed=2)
    run(atelier, owner, prompt="and again", seed=3, steps=2)
    assert cache.loads == loads


def test_sdxl_family_runs(atelier, owner):
    job = run(atelier, owner, prompt="a mountain", model="demo-sdxl", seed=11)
    assert job.status == "succeeded", job.error
    assert parse_infotext(png_texts(atelier.service.blobs.get(Artifact.get_by_id(job.artifact_ids[0]).blob_key))
                          ["parameters"])["Schedule type"] == "Karras"


def test_cancel_stops_a_running_job_at_the_next_step(atelier, owner):
    service = atelier.service
    job = service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="a long one", steps=150, width=128,
                                                            height=128)))
    wait_until(lambda: service.status(owner, job.id)["progress"]["step"] >= 2, "the job to reach step 2",
               timeout=120, interval=0.005)
    service.cancel(owner, job.id)
    finished = service.wait(owner, job.id, timeout=120)
    assert finished.status == "cancelled"
    assert finished.progress_step < 150
    assert finished.artifact_ids == []
    stopped = re.fullmatch(r"Cancelled at step (\d+) of 150\.", finished.error)
    assert stopped and 2 <= int(stopped.group(1)) < 150, finished.error


def test_cancelling_a_queued_job_means_it_never_runs(atelier, owner):
    """The consumer threads take the queue in order: with both busy (the blockers), `queued` waits; once
    `after`, queued behind the cancelled job, has run, the consumer has dealt with the cancelled job's message,
    and left the job alone."""
    from queueing.reconcile import queued_job_ids

    service = atelier.service
    blockers = [service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="blocker", steps=20)))
                for _ in range(atelier.settings.queue_workers)]
    wait_until(lambda: all(Job.get_by_id(b.id).status != "queued" for b in blockers), "the blockers to start",
               timeout=120)
    queued = service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="never", steps=2)))
    assert service.cancel(owner, queued.id)["status"] == "cancelled"
    after = service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="after it", steps=2)))
    assert all(service.wait(owner, b.id, timeout=300).status == "succeeded" for b in blockers)
    assert service.wait(owner, after.id, timeout=300).status == "succeeded"
    assert queued.id not in queued_job_ids(atelier.huey)            # its message was taken off the queue
    row = Job.get_by_id(queued.id)
    assert (row.status, row.started_at, row.attempts, row.worker, row.artifact_ids) == ("cancelled", None, 0, "", [])


def test_failures_end_the_job_with_a_message(atelier, owner, monkeypatch):
    from pipelines.errors import AtelierError
    backend = atelier.runner.backend

    def broken(step, on_step, control=()):
        raise AtelierError("Could not load model 'x': the file is damaged.", code="model_load_failed")

    monkeypatch.setattr(backend, "txt2img", broken)
    job = run(atelier, owner, prompt="doomed")
    assert job.status == "failed"
    assert job.error == "Could not load model 'x': the file is damaged."


def test_a_waiting_worker_wakes_on_enqueue(tmp_path):
    """An idle consumer blocks on the queue and wakes when a job arrives, however long it idled;
    it does not poll with Huey's growing back-off."""
    from queueing.huey_app import make_huey
    huey = make_huey("", tmp_path)
    storage = huey.storage
    storage.read_timeout = 30.0
    assert storage.blocking

    class Watched(threading.Condition):
        """The storage's wake-up condition, telling when the waiter blocks on it (holding its lock until
        `wait` releases it, so an enqueue after that cannot slip in before the waiter listens)."""
        def __init__(self):
            super().__init__()
            self.waiting = threading.Event()

        def wait(self, timeout=None):
            self.waiting.set()
            return super().wait(timeout)

    storage._wake = Watched()
    got = []
    waiter = threading.Thread(target=lambda: got.append(storage.dequeue()))
    waiter.start()
    assert storage._wake.waiting.wait(60), "the consumer never waited on the queue"
    assert got == [] and waiter.is_alive()                         # idle, found nothing, and blocked
    started = time.monotonic()
    storage.enqueue(b"job", priority=0)
    waiter.join(25)
    assert got == [b"job"] and time.monotonic() - started < 25    # woken by the enqueue, not its 30 s timeout


def test_jobs_lists_newest_first_and_status_has_the_times(atelier, owner):
    service = atelier.service
    first = run(atelier, owner, prompt="one")
    second = run(atelier, owner, prompt="two")
    recent = [j["job_id"] for j in service.recent(owner)]
    assert recent.index(second.id) < recent.index(first.id)
    status = service.status(owner, second.id)
    assert (status["status"], status["error"], status["artifact_ids"]) == ("succeeded", "", second.artifact_ids)
    assert (status["created_at"], status["started_at"], status["finished_at"]) == \
        (second.created_at, second.started_at, second.finished_at)
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]
    assert (status["progress"]["fraction"], status["progress"]["text"]) == (1.0, "done")


def test_folder_and_single_file_models_load_the_same_weights(atelier, owner):
    """A diffusers folder and an original-layout .safetensors file holding the demo weights make the
    same picture as the demo model; their plans name the files' content hashes."""
    demo = run(atelier, owner, prompt="same weights", seed=9)
    folder = run(atelier, owner, prompt="same weights", seed=9, model="local-folder")
    single = run(atelier, owner, prompt="same weights", seed=9, model="single-file")
    assert demo.status == folder.status == single.status == "succeeded", (folder.error, single.error)
    reference = pixels(atelier, demo.artifact_ids[0])
    assert np.array_equal(pixels(atelier, folder.artifact_ids[0]), reference)
    assert np.array_equal(pixels(atelier, single.artifact_ids[0]), reference)
    import json
    hashes = {json.loads(j.plan)["steps"][0]["model"]["hash"] for j in (demo, folder, single)}
    assert len(hashes) == 3 and all(h.startswith("sha256:") for h in hashes)


def test_device_choice(monkeypatch):
    import torch
    from pipelines.devices import pick_device, pick_dtype
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("cpu").type == "cpu"
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cuda")) == torch.float16
    with pytest.raises(ValueError, match="no cuda device is available"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
