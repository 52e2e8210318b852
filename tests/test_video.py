"""Video files (storage.video) and optical-flow frame interpolation (pipelines.interpolate).

No models, no GPU: frames are drawn with numpy, and the MP4s go through the ffmpeg that the
imageio-ffmpeg wheel ships.
"""
from __future__ import annotations

import io
import json

import numpy as np
import PIL.Image
import pytest

from pipelines.interpolate import interpolate
from storage.video import (encode_gif, encode_mp4, encode_webp, mp4_metadata, poster, read_mp4,
                           video_info)

BACKGROUND = 20
SQUARE = 16


def square_at(x: int, y: int = 24, width: int = 64, height: int = 64) -> PIL.Image.Image:
    """A yellow square of side SQUARE with its top-left corner at (x, y) on a dark background."""
    pixels = np.full((height, width, 3), BACKGROUND, np.uint8)
    pixels[y:y + SQUARE, x:x + SQUARE] = (240, 200, 40)
    return PIL.Image.fromarray(pixels)


def moving_square(count: int, step: int = 4, **size) -> list[PIL.Image.Image]:
    return [square_at(4 + step * i, **size) for i in range(count)]


def centroid_x(image: PIL.Image.Image) -> float:
    """x of the centre of brightness above the background."""
    weight = np.clip(np.asarray(image.convert("L"), np.float64) - BACKGROUND - 5, 0, None)
    return float((weight * np.arange(weight.shape[1])).sum() / weight.sum())


RECIPE = {"atelier": json.dumps({"prompt": 'a "quoted" cat; café ✓ 猫 = # \\ [x]\nline two',
                                 "seed": 42, "steps": [1, 2]}, ensure_ascii=False),
          "parameters": "a cat\n[STREAM]\nSteps: 4, Sampler: Euler, Seed: 42"}  # newlines, a fake section


@pytest.fixture(scope="module")
def mp4_8fps() -> bytes:
    return encode_mp4(moving_square(8), 8, RECIPE)


# ---------------------------------------------------------------- MP4

def test_mp4_reads_back_frames_size_and_fps(mp4_8fps):
    frames, fps = read_mp4(mp4_8fps)
    assert len(frames) == 8
    assert all(frame.size == (64, 64) for frame in frames)
    assert fps == 8.0
    assert mp4_8fps[4:8] == b"ftyp"
    # the picture survives: the square is where it was drawn, within H.264's loss
    for decoded, drawn in zip(frames, moving_square(8)):
        assert np.abs(np.asarray(decoded, int) - np.asarray(drawn, int)).mean() < 2.0
        assert abs(centroid_x(decoded) - centroid_x(drawn)) < 0.5


def test_mp4_at_12_fps():
    data = encode_mp4(moving_square(5), 12, {})
    frames, fps = read_mp4(data)
    assert (len(frames), fps) == (5, 12.0)
    assert video_info(data)["duration"] == pytest.approx(5 / 12, abs=0.01)


def test_mp4_is_h264_yuv420p_for_browsers(mp4_8fps):
    info = video_info(mp4_8fps)
    assert info["codec"] == "h264"
    assert info["pix_fmt"].split("(")[0] == "yuv420p"
    assert "bt709" in info["pix_fmt"]
    assert b"avc1" in mp4_8fps[:4096]                      # faststart: the sample description comes first
    assert mp4_8fps.find(b"moov") < mp4_8fps.find(b"mdat")


def test_mp4_metadata_round_trips(mp4_8fps):
    assert mp4_metadata(mp4_8fps) == RECIPE
    assert json.loads(mp4_metadata(mp4_8fps)["atelier"])["prompt"].endswith("猫 = # \\ [x]\nline two")


def test_large_recipe_round_trips_and_no_metadata_means_none():
    big = {"atelier": json.dumps({"plan": ["step %d é" % i for i in range(20000)]}, ensure_ascii=False)}
    assert len(big["atelier"]) > 200_000                     # more than one command-line argument may hold
    assert mp4_metadata(encode_mp4(moving_square(2), 8, big)) == big
    assert mp4_metadata(encode_mp4(moving_square(2), 8, {})) == {}


def test_mp4_bytes_are_deterministic(mp4_8fps):
    again = encode_mp4(moving_square(8), 8, dict(RECIPE))
    assert again == mp4_8fps
    other = encode_mp4(moving_square(8), 8, {**RECIPE, "parameters": "a dog"})
    assert other != mp4_8fps                                 # the recipe is really in the bytes


def test_even_size_not_multiple_of_16_is_kept_exactly():
    frames = moving_square(3, width=72, height=40, y=12)
    decoded, _ = read_mp4(encode_mp4(frames, 8, {}))
    assert [f.size for f in decoded] == [(72, 40)] * 3      # no rescale, no padding
    assert np.abs(np.asarray(decoded[1], int) - np.asarray(frames[1], int)).mean() < 2.0


def test_odd_size_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"even width and height; got 63x64.*62x64 or 64x64"):
        encode_mp4(moving_square(2, width=63), 8, {})


@pytest.mark.parametrize("frames, fps, metadata, message", [
    ([], 8, {}, "at least one frame"),
    ([square_at(0), square_at(0, width=32)], 8, {}, "one size"),
    ([square_at(0)], 0, {}, "fps must be between"),
    ([square_at(0)], 8, {"major_brand": "x"}, "not allowed"),
    ([square_at(0)], 8, {"bad key": "x"}, "not allowed"),
])
def test_bad_input_is_refused(frames, fps, metadata, message):
    with pytest.raises(ValueError, match=message):
        encode_mp4(frames, fps, metadata)


def test_poster_is_the_first_frame(mp4_8fps):
    image = poster(mp4_8fps)
    assert image.size == (64, 64)
    assert np.abs(np.asarray(image, int) - np.asarray(square_at(4), int)).mean() < 2.0
    assert abs(centroid_x(image) - centroid_x(square_at(4))) < 0.5


@pytest.mark.parametrize("encode, fmt", [(encode_gif, "GIF"), (encode_webp, "WEBP")])
def test_animations_have_every_frame(encode, fmt):
    data = encode(moving_square(6), 10)
    with PIL.Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt
        assert image.n_frames == 6
        assert image.size == (64, 64)
        image.seek(5)
        image.load()                                       # WebP sets the frame's duration on load
        assert image.info["duration"] == 100
        assert abs(centroid_x(image.convert("RGB")) - centroid_x(square_at(24))) < 1.0
    assert encode(moving_square(6), 10) == data


# ---------------------------------------------------------------- interpolation

@pytest.mark.parametrize("factor", [2, 4])
def test_interpolation_frame_count_and_originals_kept(factor):
    frames = moving_square(5)
    out = interpolate(frames, factor)
    assert len(out) == (len(frames) - 1) * factor + 1       # 2n-1 for x2, 4n-3 for x4
    for index, frame in enumerate(frames):
        assert np.array_equal(np.asarray(out[index * factor]), np.asarray(frame))
    assert all(image.size == (64, 64) and image.mode == "RGB" for image in out)


def test_interpolated_square_moves_halfway_by_flow_not_cross_fade():
    first, second = square_at(8), square_at(20)           # 12 pixels in one step
    middle = interpolate([first, second], 2)[1]
    assert centroid_x(middle) == pytest.approx((centroid_x(first) + centroid_x(second)) / 2, abs=0.5)
    # a cross-fade also has its centroid half way: compare with the square drawn at x = 14
    ideal = np.asarray(square_at(14), float)
    fade = (np.asarray(first, float) + np.asarray(second, float)) / 2
    error = np.abs(np.asarray(middle, float) - ideal).mean()
    assert error < 1.0 < np.abs(fade - ideal).mean() / 4
    core = (slice(28, 36), slice(18, 26), 0)               # red in the middle of the square at x = 14
    assert np.asarray(middle)[core].min() > 200 > fade[core].min()    # solid there; a fade is half-lit


def test_times_a_quarter_for_factor_4():
    out = interpolate([square_at(8), square_at(20)], 4)
    start, end = centroid_x(out[0]), centroid_x(out[4])
    for k in (1, 2, 3):
        assert centroid_x(out[k]) == pytest.approx(start + (end - start) * k / 4, abs=0.5)
        assert np.abs(np.asarray(out[k], float) - np.asarray(square_at(8 + 3 * k), float)).mean() < 1.5


def test_interpolation_edge_cases():
    single = [square_at(0)]
    assert interpolate(single, 2) == single
    assert interpolate([], 4) == []
    for factor in (3, 1, 8, True):
        with pytest.raises(ValueError, match="factor must be 2 or 4"):
            interpolate(moving_square(2), factor)
    with pytest.raises(ValueError, match="one size"):
        interpolate([square_at(0), square_at(0, width=32)], 2)


def test_interpolated_video_encodes_at_the_higher_rate():
    frames = interpolate(moving_square(4), 2)
    decoded, fps = read_mp4(encode_mp4(frames, 16, {}))
    assert (len(decoded), fps) == (7, 16.0)
    assert centroid_x(decoded[3]) == pytest.approx(centroid_x(square_at(10)), abs=0.5)
