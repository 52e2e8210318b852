"""The video endpoints end to end: the app served on 127.0.0.1 (tiny demo SVD and AnimateDiff models),
driven by gradio_client. Each MP4 is read back with the library that wrote it (storage.video)."""
import hashlib
import io
import pathlib

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from storage.video import mp4_metadata, read_mp4, video_info


def sha256(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def read_back(path) -> tuple[list, float]:
    return read_mp4(pathlib.Path(path).read_bytes())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 64x64 picture, a 37x23 one (an odd size), and a text file."""
    folder = tmp_path_factory.mktemp("video-inputs")
    x = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(64, 0)
    Image.fromarray(np.stack([x, x.T, 255 - x], -1), "RGB").save(folder / "square.png")
    Image.fromarray(np.stack([x, x.T, 255 - x], -1)[:23, :37], "RGB").save(folder / "odd.png")
    (folder / "notes.txt").write_text("hello, not a picture and not a video")
    return {name: str(folder / name) for name in ("square.png", "odd.png", "notes.txt")}


@pytest.fixture(scope="module")
def made(client, inputs):
    """One video of each kind, shared by the tests that only read them: (file, info) per endpoint."""
    img2vid = client.predict(image=handle_file(inputs["square.png"]), frames=6, fps=10, motion_bucket_id=100,
                             seed=3, api_name="/img2vid")
    txt2vid = client.predict(prompt="a paper boat", frames=5, fps=12, steps=2, seed=5, api_name="/txt2vid")
    return {"img2vid": img2vid, "txt2vid": txt2vid}


def test_img2vid_returns_the_stored_mp4_with_the_frames_fps_and_size_asked_for(made, inputs):
    path, info = made["img2vid"]
    assert set(info) >= {"job_id", "artifact_ids", "seeds", "plan_hash", "credits", "artifact_id"}
    assert sha256(path) == info["artifact_id"] == info["artifact_ids"][-1]       # the stored file, byte for byte
    frames, fps = read_back(path)
    assert (len(frames), fps, frames[0].size) == (6, 10.0, (64, 64))
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (6, 10, 64, 64)
    assert info["seeds"] == [3] and info["settings"]["motion_bucket_id"] == 100
    described = video_info(pathlib.Path(path).read_bytes())
    assert described["codec"] == "h264" and described["pix_fmt"].startswith("yuv420p")     # browsers play it
    assert info["plan_hash"] in mp4_metadata(pathlib.Path(path).read_bytes())["atelier"]


def test_img2vid_lineage_is_its_source_image(client, made, inputs):
    _, info = made["img2vid"]
    _, details = client.predict(artifact_id=info["artifact_id"], api_name="/artifact_info")
    assert details["parents"] == [{"artifact_id": sha256(inputs["square.png"]), "relation": "source"}]
    assert (details["kind"], details["mime"]) == ("video", "video/mp4")
    assert details["video"]["frames"] == 6 and details["video"]["fps"] == 10
    poster = details["poster_id"]
    assert {"artifact_id": poster, "relation": "poster_of"} in details["children"]


def test_img2vid_with_only_an_image_takes_the_model_defaults(client, inputs):
    path, info = client.predict(image=handle_file(inputs["square.png"]), seed=1, api_name="/img2vid")
    frames, fps = read_back(path)
    assert (len(frames), fps, frames[0].size) == (8, 7.0, (64, 64))           # demo-svd's defaults in tests
    assert info["settings"]["model"] == "demo-svd" and info["settings"]["steps"] == 2


def test_txt2vid_returns_the_stored_mp4_with_the_frames_fps_and_size_asked_for(made):
    path, info = made["txt2vid"]
    assert sha256(path) == info["artifact_id"] == info["artifact_ids"][-1]
    frames, fps = read_back(path)
    assert (len(frames), fps, frames[0].size) == (5, 12.0, (64, 64))
    assert info["seeds"] == [5]
    assert info["settings"]["prompt"] == "a paper boat"
    assert (info["settings"]["model"], info["settings"]["motion_adapter"]) == ("demo-sd15", "demo-motion-adapter")


def test_interpolating_an_uploaded_video_doubles_the_frame_rate_and_keeps_the_frames(client, made):
    source, source_info = made["txt2vid"]
    path, info = client.predict(video=handle_file(source), factor=2, api_name="/interpolate")
    original, original_fps = read_back(source)
    frames, fps = read_back(path)
    assert (len(frames), fps) == (2 * len(original) - 1, 2 * original_fps)
    # Every other frame is an original: re-encoded, so close rather than equal (H.264 on the demo models'
    # noisy frames moves pixels by ~5 levels on average), and far closer to its own original than to any other.
    for k in range(len(original)):
        differences = [np.abs(np.asarray(frames[2 * k], float) - np.asarray(o, float)).mean() for o in original]
        assert differences[k] < 8 and differences[k] == min(differences), (k, differences)
    assert sha256(path) == info["artifact_id"]
    _, details = client.predict(artifact_id=info["artifact_id"], api_name="/artifact_info")
    # The upload has the stored video's bytes, so it is that artifact: the lineage points at it.
    assert details["parents"] == [{"artifact_id": source_info["artifact_id"], "relation": "frames_of"}]


def test_interpolating_one_of_your_videos_by_id_four_times(client, made):
    source, source_info = made["img2vid"]
    path, info = client.predict(artifact_id=source_info["artifact_id"], factor=4, api_name="/interpolate")
    frames, fps = read_back(path)
    assert (len(frames), fps, frames[0].size) == (4 * 6 - 3, 40.0, (64, 64))
    assert (info["frames"], info["fps"]) == (21, 40)


def test_interpolating_with_a_learned_interpolator(client, made):
    _, source_info = made["txt2vid"]
    path, info = client.predict(artifact_id=source_info["artifact_id"], factor=2, method="demo-rife",
                                api_name="/interpolate")
    frames, fps = read_back(path)
    assert (len(frames), fps) == (9, 24.0)
    assert (info["settings"]["method"], info["settings"]["factor"]) == ("demo-rife", 2)
    flow, _ = client.predict(artifact_id=source_info["artifact_id"], factor=2, api_name="/interpolate")
    assert sha256(flow) != info["artifact_id"]                 # another interpolator, other in-between frames


@pytest.mark.parametrize("fmt, pillow_format", [("gif", "GIF"), ("webp", "WEBP")])
def test_export_video_gives_a_looping_animation_with_every_frame(client, made, fmt, pillow_format):
    _, source_info = made["img2vid"]
    path, info = client.predict(artifact_id=source_info["artifact_id"], format=fmt, api_name="/export_video")
    animation = Image.open(io.BytesIO(pathlib.Path(path).read_bytes()))
    assert animation.format == pillow_format and pathlib.Path(path).suffix == f".{fmt}"
    assert animation.n_frames == 6 and animation.info.get("loop") == 0
    assert (info["artifact_id"], info["format"], info["frames"]) == (source_info["artifact_id"], fmt, 6)


def test_an_odd_sized_image_is_resized_with_a_note(client, inputs):
    path, info = client.predict(image=handle_file(inputs["odd.png"]), frames=4, seed=2, api_name="/img2vid")
    frames, _ = read_back(path)
    assert len(frames) == 4 and frames[0].size == (64, 64)
    assert any("37" in note and "23" in note and "resiz" in note.lower() for note in info["notes"]), info["notes"]


def refused(client, **kwargs) -> str:
    """The message of the error the call gets (never a traceback)."""
    with pytest.raises(AppError) as raised:
        client.predict(**kwargs)
    message = str(raised.value)
    assert "Traceback" not in message
    return message


def test_too_many_frames_and_an_fps_out_of_range_are_refused(client, inputs, atelier):
    limits = atelier.settings.limits
    message = refused(client, prompt="x", frames=limits.max_frames + 1, api_name="/txt2vid")
    assert f"frames must be between 2 and {limits.max_frames}, got {limits.max_frames + 1}" in message
    message = refused(client, image=handle_file(inputs["square.png"]), fps=1000, api_name="/img2vid")
    assert f"fps must be between 1 and {limits.max_fps}, got 1000" in message


def test_files_of_the_wrong_kind_are_refused(client, inputs, made):
    square, text = handle_file(inputs["square.png"]), handle_file(inputs["notes.txt"])
    assert "not an image Atelier can read" in refused(client, image=text, api_name="/img2vid")
    assert "not an MP4" in refused(client, video=text, api_name="/interpolate")
    assert "not an MP4" in refused(client, video=square, api_name="/interpolate")
    image_id = sha256(inputs["square.png"])          # stored as an upload by the img2vid above
    assert "not a video" in refused(client, artifact_id=image_id, api_name="/interpolate")
    assert "not a video" in refused(client, artifact_id=image_id, format="gif", api_name="/export_video")
    video_id = made["img2vid"][1]["artifact_id"]
    assert 'use "gif" or "webp"' in refused(client, artifact_id=video_id, format="bmp", api_name="/export_video")
    assert "Give a video first" in refused(client, api_name="/interpolate")
    assert "Give the artifact_id of one of your videos" in refused(client, api_name="/export_video")


def test_unknown_video_ids_are_not_found(client):
    for endpoint in ("/interpolate", "/export_video"):
        assert "No artifact '0123456789abcdef'" in refused(client, artifact_id="0123456789abcdef", api_name=endpoint)


def test_another_users_video_is_not_found(made, accounts_app, make_user):
    """In accounts mode, a stranger with an API key names the local owner's video: not found, as if it
    did not exist (the local owner is an admin, so the check needs a second, ordinary account)."""
    from tests.conftest import api_client

    _, key = make_user(balance=50)
    stranger = api_client(accounts_app, key)
    theirs = made["img2vid"][1]["artifact_id"]
    for endpoint in ("/interpolate", "/export_video"):
        assert f"No artifact '{theirs}'" in refused(stranger, artifact_id=theirs, api_name=endpoint)
