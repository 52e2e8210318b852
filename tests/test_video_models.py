"""The demo video models: tiny SVD (image to video) and AnimateDiff (text to video), seeded, saved once,
loadable with plain from_pretrained, sensitive to their image, prompt and seed."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AnimateDiffPipeline, MotionAdapter, StableVideoDiffusionPipeline, UNetMotionModel

from pipelines.demo_model import build_sd15, ensure_demo_model
from pipelines.video_models import (
    build_demo_animatediff,
    build_demo_motion_adapter,
    build_demo_svd,
    ensure_demo_motion_adapter,
    ensure_demo_svd,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRAMES = 8


def _noise(size=64, seed=0):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _as_array(frames):
    """A list of PIL frames as one (frames, height, width, 3) int array (so differences do not wrap)."""
    assert all(f.mode == "RGB" for f in frames)
    return np.stack([np.asarray(f) for f in frames]).astype(int)


def _same_to_one_level(a, b):
    """Frames of a reloaded model agree with the built one's to one level in a few values. The loaded
    weights are the same, but memory-mapped from safetensors at addresses not 64-byte aligned, which
    sends some matrix products down other SIMD paths (seen: 57 of 98,304 SVD values off by 1; copying
    the weights makes them equal)."""
    difference = a - b
    return a.shape == b.shape and np.abs(difference).max() <= 1 and np.count_nonzero(difference) <= a.size // 200


def _weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


# Stable Video Diffusion


@pytest.fixture(scope="module")
def svd():
    return build_demo_svd()


def _svd(pipe, image, seed=0, **kwargs):
    """Image to video as the app calls it: 8 frames of 64x64, 2 steps, decoded 4 frames at a time."""
    kwargs = {"num_frames": FRAMES, "decode_chunk_size": 4, **kwargs}
    out = pipe(image=image, height=64, width=64, num_inference_steps=2,
               generator=torch.Generator("cpu").manual_seed(seed), **kwargs)
    return _as_array(out.frames[0])


@pytest.fixture(scope="module")
def svd_video(svd):
    return _svd(svd, _noise())


def test_svd_makes_frames_of_the_image_size(svd_video):
    assert svd_video.shape == (FRAMES, 64, 64, 3)
    assert svd_video.std() > 1  # not a flat video
    assert all(not np.array_equal(svd_video[0], frame) for frame in svd_video[1:])


def test_svd_is_deterministic_and_depends_on_seed_image_and_motion(svd, svd_video):
    assert np.array_equal(_svd(svd, _noise()), svd_video)
    assert not np.array_equal(_svd(svd, _noise(), seed=1), svd_video)
    assert not np.array_equal(_svd(svd, _noise(seed=1)), svd_video)  # the input image matters
    assert not np.array_equal(_svd(svd, _noise(), motion_bucket_id=30), svd_video)  # so do the added ids


def test_svd_frame_count_and_odd_sized_images(svd):
    # PIL images of any size are resized to height x width (and to 224x224 for the CLIP encoder).
    video = _svd(svd, _noise(96).crop((0, 0, 96, 48)), num_frames=3, decode_chunk_size=2)
    assert video.shape == (3, 64, 64, 3)


def test_svd_is_seeded_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = build_demo_svd(), build_demo_svd()
    assert torch.equal(torch.random.get_rng_state(), state)
    for part in ("unet", "vae", "image_encoder"):
        assert _weights_equal(getattr(a, part), getattr(b, part)), part
    c = build_demo_svd(seed=1)
    assert not torch.equal(a.unet.conv_in.weight, c.unet.conv_in.weight)


def test_ensure_demo_svd_round_trip(models_root, svd, svd_video):
    folder = ensure_demo_svd(models_root)
    assert folder == models_root / "demo-svd"
    index = folder / "model_index.json"
    before = index.stat().st_mtime_ns
    assert ensure_demo_svd(str(models_root)) == folder
    assert index.stat().st_mtime_ns == before
    assert not [p.name for p in models_root.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert folder.stat().st_mode & 0o755 == 0o755

    loaded = StableVideoDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert loaded.scheduler.config.prediction_type == "v_prediction" and loaded.vae_scale_factor == 8
    assert loaded.image_encoder.config.image_size == 224
    for part in ("unet", "vae", "image_encoder"):
        assert _weights_equal(getattr(loaded, part), getattr(svd, part)), part
    loaded.set_progress_bar_config(disable=True)  # not saved with the folder
    assert _same_to_one_level(_svd(loaded, _noise()), svd_video)


# AnimateDiff


@pytest.fixture(scope="module")
def sd15_folder(models_root):
    return ensure_demo_model(models_root, "demo-sd15")


@pytest.fixture(scope="module")
def animatediff(sd15_folder):
    return build_demo_animatediff(sd15_folder)


def _animate(pipe, prompt="a cat walking", seed=0, **kwargs):
    """Text to video: 8 frames of 64x64, 3 steps with CFG."""
    kwargs = {"num_frames": FRAMES, **kwargs}
    out = pipe(prompt, height=64, width=64, num_inference_steps=3, guidance_scale=7.5,
               generator=torch.Generator("cpu").manual_seed(seed), **kwargs)
    return _as_array(out.frames[0])


@pytest.fixture(scope="module")
def animation(animatediff):
    return _animate(animatediff)


def test_animatediff_is_the_sd15_model_with_motion_modules(animatediff):
    assert isinstance(animatediff, AnimateDiffPipeline) and isinstance(animatediff.unet, UNetMotionModel)
    assert type(animatediff.scheduler).__name__ == "DDIMScheduler"
    assert animatediff.scheduler.config.beta_schedule == "linear"


def test_animatediff_makes_distinct_frames(animation):
    assert animation.shape == (FRAMES, 64, 64, 3)
    assert animation.std() > 1
    assert all(not np.array_equal(animation[0], frame) for frame in animation[1:])


def test_animatediff_is_deterministic_and_depends_on_seed_and_prompt(animatediff, animation):
    assert np.array_equal(_animate(animatediff), animation)
    assert not np.array_equal(_animate(animatediff, seed=1), animation)
    assert not np.array_equal(_animate(animatediff, prompt="a dog running"), animation)


def test_motion_modules_couple_the_frames(animatediff):
    """Frame 0 changes when only the other frames' starting noise does: the motion modules attend across
    frames. Per-frame SD1.5 (a no-op adapter) would keep it."""
    latents = torch.randn((1, 4, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(0))
    other = latents.clone()
    other[:, :, 1:] = torch.randn((1, 4, 3, 8, 8), generator=torch.Generator("cpu").manual_seed(1))
    a = _animate(animatediff, num_frames=4, latents=latents)
    b = _animate(animatediff, num_frames=4, latents=other)
    assert a.shape == (4, 64, 64, 3)
    assert np.abs(a[0] - b[0]).max() > 8


def test_motion_adapter_fits_the_demo_unet_is_seeded_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = build_demo_motion_adapter(), build_demo_motion_adapter()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert _weights_equal(a, b)
    assert not _weights_equal(a, build_demo_motion_adapter(seed=1))
    unet = build_sd15().unet.config
    assert tuple(a.config.block_out_channels) == tuple(unet.block_out_channels)
    assert a.config.motion_layers_per_block == unet.layers_per_block


def test_build_demo_animatediff_rejects_unfit_models(models_root, tmp_path):
    with pytest.raises(ValueError, match="no saved SD1.5 pipeline"):
        build_demo_animatediff(tmp_path)
    with pytest.raises(ValueError, match="does not fit the motion adapter"):
        build_demo_animatediff(ensure_demo_model(models_root, "demo-sd15-inpaint"))  # 9 input channels


def test_ensure_demo_motion_adapter_round_trip(models_root, sd15_folder, animatediff, animation):
    folder = ensure_demo_motion_adapter(models_root)
    assert folder == models_root / "demo-motion-adapter"
    config = folder / "config.json"
    before = config.stat().st_mtime_ns
    assert ensure_demo_motion_adapter(str(models_root)) == folder
    assert config.stat().st_mtime_ns == before
    assert not [p.name for p in models_root.iterdir() if p.name.startswith(".")]

    adapter = MotionAdapter.from_pretrained(folder, local_files_only=True)
    assert _weights_equal(adapter, build_demo_motion_adapter())
    loaded = build_demo_animatediff(sd15_folder, motion_adapter=adapter)
    assert _weights_equal(loaded.unet, animatediff.unet)
    assert _same_to_one_level(_animate(loaded), animation)


def test_ensure_keeps_foreign_folders(tmp_path):
    for ensure, name in ((ensure_demo_svd, "demo-svd"), (ensure_demo_motion_adapter, "demo-motion-adapter")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("keep me")
        with pytest.raises(ValueError, match="not a saved model"):
            ensure(tmp_path)
        assert (tmp_path / name / "notes.txt").read_text() == "keep me"
