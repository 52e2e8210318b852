"""Video through the real stack: specs compiled, queued on Huey, run by the consumer on the tiny demo SVD and
AnimateDiff models, stored as MP4 artifacts with posters, recipes and lineage; replay, cancel, credits."""
import hashlib
import io
import json
import re

import numpy as np
import PIL.Image
import pytest

from pipelines.errors import InvalidRequest
from pipelines.spec import Img2Vid, Interpolate, Link, LoadImage, LoadVideo, Node, Txt2Vid, WorkflowSpec
from storage.artifacts import png_texts
from storage.models import Artifact
from storage.video import mp4_metadata, read_mp4, video_info
from tests.conftest import wait_until


def png(size=(64, 64), color=(200, 60, 30)) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (np.array(color) + rng.integers(-40, 40, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def img2vid_spec(service, user, image: bytes, **params) -> WorkflowSpec:
    source = service.upload(user, image)
    return WorkflowSpec(nodes=(Node("image", LoadImage(artifact_id=source.id)),
                               Node("1", Img2Vid(**params), (("image", Link("image", "image")),))))


def interpolate_spec(video_id: str, factor: int = 2) -> WorkflowSpec:
    return WorkflowSpec(nodes=(Node("video", LoadVideo(artifact_id=video_id)),
                               Node("1", Interpolate(factor=factor), (("video", Link("video", "video")),))))


def run(service, user, spec):
    job = service.submit(user, spec)
    return service.wait(user, job.id, timeout=120)


def blob(service, artifact_id) -> bytes:
    return service.blobs.get(Artifact.get_by_id(artifact_id).blob_key)


@pytest.fixture(scope="module")
def svd_video(atelier, owner):
    """An img2vid job (seed 5) from a 64x64 picture, and its video artifact id."""
    job = run(atelier.service, owner, img2vid_spec(atelier.service, owner, png(), seed=5))
    assert job.status == "succeeded", job.error
    return job, job.artifact_ids[0]


def test_img2vid_makes_an_mp4_of_the_requested_frames_fps_and_size(atelier, owner, svd_video):
    job, video_id = svd_video
    data = blob(atelier.service, video_id)
    assert hashlib.sha256(data).hexdigest() == video_id
    frames, fps = read_mp4(data)
    assert (len(frames), fps, frames[0].size) == (8, 7.0, (64, 64))         # the test catalogue's defaults
    info = video_info(data)
    assert (info["codec"].split()[0], info["pix_fmt"].split("(")[0]) == ("h264", "yuv420p")
    artifact, holding = Artifact.get_by_id(video_id), atelier.artifacts.holding(owner, video_id)
    assert (holding.kind, artifact.mime, artifact.frames, artifact.fps, holding.seed) == ("video", "video/mp4", 8,
                                                                                         7.0, 5)
    recipe = json.loads(mp4_metadata(data)["atelier"])
    assert recipe["plan_hash"] == job.plan_hash and recipe["plan"]["steps"][-1]["kind"] == "img2vid"
    assert "Motion bucket id: 127" in mp4_metadata(data)["parameters"]
    assert (job.progress_phase, job.progress_step, job.progress_steps) == ("saving", 8, 8)    # every frame decoded


def test_a_made_video_has_a_poster_and_lineage_to_its_image(atelier, owner, svd_video):
    job, video_id = svd_video
    info = atelier.artifacts.artifact_info(owner, video_id)
    source = json.loads(job.plan)["steps"][0]["artifact_id"]
    assert {"artifact_id": source, "relation": "source"} in info["parents"]
    assert info["video"] == {"frames": 8, "fps": 7.0, "duration": round(8 / 7, 3)}
    poster = Artifact.get_by_id(info["poster_id"])
    assert (atelier.artifacts.holding(owner, poster.id).kind, poster.mime, poster.width, poster.height) == \
        ("poster", "image/png", 64, 64)
    assert {"artifact_id": poster.id, "relation": "poster_of"} in info["children"]
    frames = [np.asarray(f, dtype=int) for f in read_mp4(blob(atelier.service, video_id))[0]]
    still = np.asarray(PIL.Image.open(io.BytesIO(blob(atelier.service, poster.id))).convert("RGB"), dtype=int)
    distances = [np.abs(frame - still).mean() for frame in frames]
    assert distances[0] == min(distances) and distances[0] < 10   # the first frame, before H.264 (noise codes badly)
    assert json.loads(png_texts(blob(atelier.service, poster.id))["atelier"])["plan_hash"] == job.plan_hash
    assert poster.id not in [h.artifact_id for h in atelier.artifacts.recent_artifacts(owner)]


def test_replaying_a_video_gives_identical_bytes(atelier, owner, svd_video):
    _, video_id = svd_video
    replay = atelier.artifacts.replay(owner, video_id)
    done = atelier.service.wait(owner, replay.id, timeout=120)
    assert done.status == "succeeded", done.error
    assert atelier.artifacts.replay_outcome(owner, done)["identical"] is True


def test_txt2vid_makes_the_requested_video(atelier, owner):
    spec = WorkflowSpec.single(Txt2Vid(prompt="a paper boat on a river", frames=6, fps=12, width=96, height=64,
                                       seed=11))
    job = run(atelier.service, owner, spec)
    assert job.status == "succeeded", job.error
    frames, fps = read_mp4(blob(atelier.service, job.artifact_ids[0]))
    assert (len(frames), fps, frames[0].size) == (6, 12.0, (96, 64))
    moving = [np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).mean() for a, b in zip(frames, frames[1:])]
    assert max(moving) > 1                               # the motion modules make frames differ
    params = mp4_metadata(blob(atelier.service, job.artifact_ids[0]))["parameters"]
    assert params.startswith("a paper boat on a river") and "AnimateDiff" in params


def test_interpolating_x2_keeps_the_frames_and_links_to_the_video(atelier, owner, svd_video):
    _, video_id = svd_video
    job = run(atelier.service, owner, interpolate_spec(video_id, 2))
    assert job.status == "succeeded", job.error
    original, _ = read_mp4(blob(atelier.service, video_id))
    frames, fps = read_mp4(blob(atelier.service, job.artifact_ids[0]))
    assert (len(frames), fps) == (2 * 8 - 1, 14.0)
    for k, frame in enumerate(original):                 # kept, up to a second round of H.264
        distances = [np.abs(np.asarray(f, dtype=int) - np.asarray(frame, dtype=int)).mean() for f in frames]
        assert int(np.argmin(distances)) == 2 * k and distances[2 * k] < 10
    parents = atelier.artifacts.artifact_info(owner, job.artifact_ids[0])["parents"]
    assert parents == [{"artifact_id": video_id, "relation": "frames_of"}]


def test_video_requests_out_of_bounds_are_refused_before_anything_runs(atelier, owner):
    service = atelier.service
    cases = [(dict(frames=500), "frames must be between 2 and 128"), (dict(fps=0), "fps must be between 1 and 60"),
             (dict(motion_bucket_id=300), "motion_bucket_id must be between 1 and 255"),
             (dict(model="demo-sd15"), "Unknown svd model 'demo-sd15'"),
             (dict(decode_chunk_size=9), "decode_chunk_size must be between 1 and 8")]
    for params, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            service.quote(owner, img2vid_spec(service, owner, png(), **params))
    with pytest.raises(InvalidRequest, match="'demo-svd' is a svd model; use it for image to video"):
        service.quote(owner, WorkflowSpec.single(Txt2Vid(prompt="x", model="demo-svd")))
    with pytest.raises(InvalidRequest, match="animates sd15 models; 'demo-sdxl' is sdxl"):
        service.quote(owner, WorkflowSpec.single(Txt2Vid(prompt="x", model="demo-sdxl")))
    with pytest.raises(InvalidRequest, match="No video"):
        service.quote(owner, interpolate_spec(service.upload(owner, png()).id))     # an image is not a video


def test_an_odd_sized_image_is_resized_with_a_note(atelier, owner):
    plan = atelier.service.quote(owner, img2vid_spec(atelier.service, owner, png((37, 23))))
    assert any("37x23" in note and "64x64" in note for note in plan.notes)
    step = plan.steps[-1]
    assert (step.width, step.height) == (64, 64)


def test_video_costs_credits_per_frame_and_the_tier_caps_frames(accounts_app, make_user):
    service = accounts_app.service
    user, _ = make_user(balance=50, tier="free")                 # TEST_TIERS: free makes up to 16 frames
    assert service.quote(user, img2vid_spec(service, user, png(), frames=8)).credits == 8
    assert service.quote(user, WorkflowSpec.single(Txt2Vid(prompt="x", frames=12, batch_size=2))).credits == 24
    with pytest.raises(InvalidRequest, match="Your free tier makes videos of up to 16 frames"):
        service.quote(user, img2vid_spec(service, user, png(), frames=24))
    pro, _ = make_user(balance=50, tier="pro")
    assert service.quote(pro, img2vid_spec(service, pro, png(), frames=24)).credits == 24


def test_cancelling_a_running_video_releases_its_credits(accounts_app, make_user):
    from auth import credits
    service = accounts_app.service
    user, _ = make_user(balance=20)
    job = service.submit(user, img2vid_spec(service, user, png(), frames=8, steps=150, seed=1))
    assert credits.balance(user) == 12
    wait_until(lambda: service.job(user, job.id).progress_step >= 2, "the video job to reach step 2", timeout=300,
               interval=0.02)
    service.cancel(user, job.id)
    done = service.wait(user, job.id, timeout=300)
    stopped = re.fullmatch(r"Cancelled at step (\d+) of 150\.", done.error)
    assert done.status == "cancelled" and stopped and 2 <= int(stopped.group(1)) < 150, done.error
    assert credits.balance(user) == 20
    assert done.artifact_ids == []


def test_a_cancel_while_decoding_stops_between_chunks(atelier, owner):
    from pipelines.errors import JobCancelled
    from pipelines.video_backend import Video
    from storage.uploads import decode_image

    service = atelier.service
    plan = service.quote(owner, img2vid_spec(service, owner, png(), decode_chunk_size=2, seed=3))
    seen = []

    def load_image(artifact_id):
        return decode_image(blob(service, artifact_id))

    # Asked to stop once frame 4 was reported, it stops at the next check: after chunk 3, before chunk 4.
    with pytest.raises(JobCancelled, match="Cancelled at decoded frame 6 of 8"):
        atelier.runner.run(plan, load_image=load_image, on_progress=seen.append,
                           cancelled=lambda: any(p.phase == "decoding" and p.step >= 4 for p in seen))
    assert [p.step for p in seen if p.phase == "decoding"] == [0, 2, 4]
    assert [p.step for p in seen if p.phase == "denoising"] == [1, 2]
    result = atelier.runner.run(plan, load_image=load_image)
    assert isinstance(result.outputs[0].video, Video) and len(result.outputs[0].video.frames) == 8


def test_uploaded_videos_are_checked(atelier, owner, svd_video):
    from pipelines.errors import AtelierError
    service = atelier.service
    _, video_id = svd_video
    assert service.upload_video(owner, blob(service, video_id)).id == video_id      # same bytes, same artifact
    for data, message in [(png(), "not an MP4 file"), (b"\0\0\0\x18ftypisom" + b"\0" * 64, "damaged"),
                          (b"", "not an MP4 file")]:
        with pytest.raises(AtelierError, match=message):
            service.upload_video(owner, data)
    gif = atelier.artifacts.animation(owner, video_id, "gif")
    with PIL.Image.open(io.BytesIO(gif)) as animation:
        assert (animation.format, animation.n_frames) == ("GIF", 8)
    with pytest.raises(AtelierError, match="not a video"):
        atelier.artifacts.animation(owner, service.upload(owner, png()).id, "webp")


def test_a_learned_interpolator_from_the_catalogue_makes_the_frames(atelier, owner, svd_video):
    _, video_id = svd_video
    spec = WorkflowSpec(nodes=(Node("video", LoadVideo(artifact_id=video_id)),
                               Node("1", Interpolate(factor=4, method="demo-rife"), (("video", Link("video", "video")),))))
    job = run(atelier.service, owner, spec)
    assert job.status == "succeeded", job.error
    frames, fps = read_mp4(blob(atelier.service, job.artifact_ids[0]))
    assert (len(frames), fps) == (4 * 7 + 1, 28.0)
    step = json.loads(job.plan)["steps"][-1]
    assert (step["method"], step["model"]["id"]) == ("demo-rife", "demo-rife")
    assert "Frame interpolation: demo-rife x4" in mp4_metadata(blob(atelier.service, job.artifact_ids[0]))["parameters"]
    with pytest.raises(InvalidRequest, match=r"method must be one of \['demo-rife', 'flow'\]"):
        atelier.service.quote(owner, WorkflowSpec(nodes=(spec.nodes[0], Node("1", Interpolate(method="not-there"),
                                                                             (("video", Link("video", "video")),)))))
