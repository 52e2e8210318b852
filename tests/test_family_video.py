"""The video families end to end (issue 13, items 2 and 7): Wan 2.2 and LTX-2 make videos from text and from
an image through the API and the queue, with the frames, fps and size asked for; each replays to the same
bytes and says how it was made; what their rules or their tasks refuse is refused before a job row exists."""
import hashlib
import pathlib

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.infotext import parse_infotext
from storage.video import mp4_metadata, read_mp4


def sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def square(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("family-video") / "square.png"
    x = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(64, 0)
    Image.fromarray(np.stack([x, x.T, 255 - x], -1), "RGB").save(path)
    return str(path)


def job_count() -> int:
    from storage.models import Job

    return Job.select().count()


@pytest.mark.parametrize("model, frames", [("demo-wan22", 9), ("demo-ltx2", 17)])
def test_text_to_video_on_each_family_replays_byte_for_byte(client, model, frames):
    path, info = client.predict(prompt="a paper boat on a pond", model=model, frames=frames, fps=12, seed=5,
                                api_name="/txt2vid")
    video, fps = read_mp4(pathlib.Path(path).read_bytes())
    assert (len(video), fps, video[0].size) == (frames, 12.0, (64, 64))
    assert sha256(path) == info["artifact_id"] and info["seeds"] == [5]
    assert (info["settings"]["kind"], info["settings"]["model"]) == ("video", model)
    assert "motion_adapter" not in info["settings"]
    params = parse_infotext(mp4_metadata(pathlib.Path(path).read_bytes())["parameters"])
    assert (params["Model"], params["Video frames"], params["FPS"], params["Seed"]) == (model, str(frames), "12", "5")
    replayed, outcome = client.predict(artifact_id=info["artifact_id"], api_name="/replay")
    assert outcome["identical"] is True and sha256(replayed) == info["artifact_id"]


@pytest.mark.parametrize("model", ["demo-wan22", "demo-ltx2"])
def test_image_to_video_on_each_family_animates_the_image_and_records_it(client, square, model):
    path, info = client.predict(image=handle_file(square), model=model, prompt="the colours swirl", seed=2,
                                api_name="/img2vid")
    video, fps = read_mp4(pathlib.Path(path).read_bytes())
    assert (len(video), fps, video[0].size) == ((5 if model == "demo-wan22" else 9), 8.0, (64, 64))
    _, details = client.predict(artifact_id=info["artifact_id"], api_name="/artifact_info")
    assert [p["relation"] for p in details["parents"]] == ["source"]
    assert details["parents"][0]["artifact_id"] == sha256(square)
    assert info["settings"]["prompt"] == "the colours swirl"


def test_what_a_video_family_cannot_do_is_refused_before_a_job_row_exists(client, square):
    before = job_count()
    refusals = {
        "Wan 2.2 makes videos of 4k\\+1 frames \\(for example 5 or 9\\); got 8":
            dict(prompt="a boat", model="demo-wan22", frames=8, api_name="/txt2vid"),
        "width must be a multiple of 32 for LTX-2 models, got 80; try 64":
            dict(prompt="a boat", model="demo-ltx2", width=80, api_name="/txt2vid"),
        "'demo-wan22' makes videos itself; leave motion_adapter empty":
            dict(prompt="a boat", model="demo-wan22", motion_adapter="demo-motion-adapter", api_name="/txt2vid"),
        "motion_bucket_id is Stable Video Diffusion's":
            dict(image=handle_file(square), model="demo-ltx2", motion_bucket_id=200, api_name="/img2vid"),
        "Stable Video Diffusion reads no prompt":
            dict(image=handle_file(square), model="demo-svd", prompt="swirl", api_name="/img2vid"),
        "Sampler 'ddim' does not apply to flow-matching models":
            dict(prompt="a boat", model="demo-ltx2", sampler="ddim", api_name="/txt2vid"),
    }
    for message, request in refusals.items():
        with pytest.raises(AppError, match=message):
            client.predict(**request)
    assert job_count() == before
