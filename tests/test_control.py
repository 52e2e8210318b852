"""Canny control images, the demo ControlNet through the real ControlNet pipelines, and the demo x4 and
x2 latent upscalers."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import importlib.util

import numpy as np
import PIL.Image
import PIL.ImageFilter
import pytest
import torch
from diffusers import (
    ControlNetModel,
    DiffusionPipeline,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionLatentUpscalePipeline,
    StableDiffusionUpscalePipeline,
)

from pipelines.control import (
    build_demo_controlnet,
    build_demo_latent_upscaler,
    build_demo_upscaler,
    canny,
    ensure_demo_controlnet,
    ensure_demo_latent_upscaler,
    ensure_demo_upscaler,
)
from pipelines.demo_model import build_sd15, ensure_demo_model
from tests.conftest import need

# numpy 2 deprecation chatter from diffusers' schedulers.
pytestmark = pytest.mark.usefixtures("one_torch_thread")




def _square(size=64, lo=16, hi=48):
    """A white filled square [lo, hi) on black, as an RGB image."""
    a = np.zeros((size, size, 3), np.uint8)
    a[lo:hi, lo:hi] = 255
    return PIL.Image.fromarray(a)


def _outline(lo=16, hi=48):
    """The square's outline, as canny draws it; drawn here so the ControlNet tests need no OpenCV."""
    a = np.asarray(_square(lo=lo, hi=hi)).copy()
    a[lo + 1:hi - 1, lo + 1:hi - 1] = 0
    return PIL.Image.fromarray(a)


def _noise(size=64, seed=0):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _run(pipe, steps=2, seed=0, **kwargs):
    """One 64x64 image as an int array (so differences do not wrap)."""
    out = pipe("a photo of a cat", num_inference_steps=steps, height=64, width=64,
               generator=torch.Generator("cpu").manual_seed(seed), **kwargs)
    return np.asarray(out.images[0]).astype(int)


# Canny


@pytest.fixture
def opencv():
    if importlib.util.find_spec("cv2") is None:
        need("OpenCV is not installed (pip install opencv-python-headless)")


def test_canny_square_edges(opencv):
    edges = canny(_square())
    assert edges.mode == "RGB" and edges.size == (64, 64)
    a = np.asarray(edges)
    assert set(np.unique(a)) <= {0, 255} and (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all()
    on = a[..., 0] == 255
    # The border runs between rows/columns 15 and 16 and between 47 and 48; allow one pixel either side.
    band = np.zeros_like(on)
    band[14:50, 14:50] = True
    band[18:46, 18:46] = False
    assert on.any() and not on[~band].any()  # edges on the border only, none in the flat areas
    for side in (on[15:17, 20:44], on[47:49, 20:44], on[20:44, 15:17], on[20:44, 47:49]):
        assert side.any(axis=0 if side.shape[0] == 2 else 1).all()  # each side is traced all along


def test_canny_thresholds_change_edge_count(opencv):
    image = _noise().filter(PIL.ImageFilter.GaussianBlur(1.5))
    thresholds = [(10, 30), (50, 100), (150, 250)]
    counts = [int((np.asarray(canny(image, lo, hi))[..., 0] == 255).sum()) for lo, hi in thresholds]
    assert counts[0] > counts[1] > counts[2]


def test_canny_other_modes_keep_size(opencv):
    edges = canny(_square().convert("L").resize((40, 24)))
    assert edges.mode == "RGB" and edges.size == (40, 24)


@pytest.mark.parametrize("low, high", [(-1, 100), (200, 100), (0, 256)])
def test_canny_rejects_bad_thresholds(low, high):  # checked before OpenCV is imported
    with pytest.raises(ValueError, match="0 <= low <= high <= 255"):
        canny(_square(), low, high)


# ControlNet


@pytest.fixture(scope="module")
def sd15():
    return build_sd15()


@pytest.fixture(scope="module")
def control_pipe(sd15):
    pipe = StableDiffusionControlNetPipeline.from_pipe(sd15, controlnet=build_demo_controlnet(sd15.unet))
    pipe.set_progress_bar_config(disable=True)  # from_pipe drops it
    return pipe


@pytest.fixture(scope="module")
def plain_image(sd15):
    return _run(sd15)


def test_controlnet_is_seeded_and_leaves_global_rng(sd15):
    state = torch.random.get_rng_state()
    a, b = build_demo_controlnet(sd15.unet), build_demo_controlnet(sd15.unet)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_demo_controlnet(sd15.unet, seed=1)
    assert not torch.equal(a.controlnet_mid_block.weight, c.controlnet_mid_block.weight)


def test_controlnet_changes_output(control_pipe, plain_image):
    out = _run(control_pipe, image=_outline())
    assert out.shape == (64, 64, 3)
    assert np.abs(out - plain_image).max() > 10
    assert np.array_equal(out, _run(control_pipe, image=_outline()))  # deterministic


def test_control_image_matters(control_pipe):
    # A fresh conditioning embedding drowns the image in its biases: this guards the re-initialisation.
    other = _outline(lo=8, hi=40)
    assert np.abs(_run(control_pipe, image=_outline()) - _run(control_pipe, image=other)).max() > 10


def test_conditioning_scale_zero_is_plain(control_pipe, plain_image):
    out = _run(control_pipe, image=_outline(), controlnet_conditioning_scale=0.0)
    assert np.abs(out - plain_image).max() <= 1


def test_control_guidance_window_changes_output(control_pipe):
    full = _run(control_pipe, steps=3, image=_outline())
    late = _run(control_pipe, steps=3, image=_outline(), control_guidance_start=0.4, control_guidance_end=1.0)
    early = _run(control_pipe, steps=3, image=_outline(), control_guidance_start=0.0, control_guidance_end=0.5)
    assert not np.array_equal(full, late) and not np.array_equal(full, early) and not np.array_equal(late, early)


def test_controlnet_img2img(control_pipe, plain_image):
    pipe = StableDiffusionControlNetImg2ImgPipeline.from_pipe(control_pipe)
    pipe.set_progress_bar_config(disable=True)
    init = PIL.Image.fromarray(plain_image.astype(np.uint8))
    out = _run(pipe, steps=3, image=init, control_image=_outline(), strength=0.7)
    assert out.shape == (64, 64, 3)
    assert np.abs(out - plain_image).max() > 0


def test_ensure_demo_controlnet_builds_once(tmp_path):
    sd15_folder = ensure_demo_model(tmp_path, "demo-sd15")
    folder = ensure_demo_controlnet(tmp_path, sd15_folder)
    assert folder == tmp_path / "demo-controlnet-canny"
    config = folder / "config.json"
    before = config.stat().st_mtime_ns
    assert ensure_demo_controlnet(str(tmp_path), str(sd15_folder)) == folder
    assert config.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-controlnet-canny", "demo-sd15"]  # no temp folder

    loaded = ControlNetModel.from_pretrained(folder)
    unet = DiffusionPipeline.from_pretrained(sd15_folder, local_files_only=True).unet
    built = build_demo_controlnet(unet)
    assert loaded.state_dict().keys() == built.state_dict().keys()
    assert all(torch.equal(v, built.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_ensure_demo_controlnet_errors(tmp_path):
    with pytest.raises(ValueError, match="no saved UNet"):
        ensure_demo_controlnet(tmp_path, tmp_path / "missing")
    sd15_folder = ensure_demo_model(tmp_path, "demo-sd15")
    (tmp_path / "demo-controlnet-canny").mkdir()
    (tmp_path / "demo-controlnet-canny" / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a saved model"):
        ensure_demo_controlnet(tmp_path, sd15_folder)
    assert (tmp_path / "demo-controlnet-canny" / "mine.txt").read_text() == "keep me"


# x4 upscaler


@pytest.fixture(scope="module")
def upscaler():
    return build_demo_upscaler()


def _upscale(pipe, image, seed=0, **kwargs):
    out = pipe("a photo of a cat", image=image, num_inference_steps=2,
               generator=torch.Generator("cpu").manual_seed(seed), **kwargs)
    return out.images[0]


def test_upscaler_x4_and_deterministic(upscaler):
    image = _noise(32)
    out = _upscale(upscaler, image)
    assert out.size == (128, 128) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(_upscale(upscaler, image)))
    assert not np.array_equal(np.asarray(out), np.asarray(_upscale(upscaler, image, seed=1)))
    assert not np.array_equal(np.asarray(out), np.asarray(_upscale(upscaler, image, noise_level=200)))
    assert _upscale(upscaler, image.resize((48, 32))).size == (192, 128)


def test_upscaler_is_seeded_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = build_demo_upscaler(), build_demo_upscaler()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.unet.state_dict().values(), b.unet.state_dict().values()))


def test_ensure_demo_upscaler_round_trip(tmp_path, upscaler):
    folder = ensure_demo_upscaler(tmp_path)
    assert folder == tmp_path / "demo-upscaler-x4"
    index = folder / "model_index.json"
    before = index.stat().st_mtime_ns
    assert ensure_demo_upscaler(str(tmp_path)) == folder
    assert index.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo-upscaler-x4"]

    loaded = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert isinstance(loaded, StableDiffusionUpscalePipeline)
    assert loaded.config.max_noise_level == 350 and loaded.vae.config.scaling_factor == 0.08333
    loaded.set_progress_bar_config(disable=True)
    image = _noise(32)
    assert np.array_equal(np.asarray(_upscale(loaded, image)), np.asarray(_upscale(upscaler, image)))


# x2 latent upscaler


@pytest.fixture(scope="module")
def latent_upscaler():
    return build_demo_latent_upscaler()


def _upscale_x2(pipe, image, seed=0, steps=2, callback=None):
    """The pipeline's call as the app makes it; the image as an array."""
    out = pipe(prompt="", image=image, num_inference_steps=steps, guidance_scale=0,
               generator=torch.Generator("cpu").manual_seed(seed), callback=callback, callback_steps=1,
               output_type="pil")
    assert out.images[0].mode == "RGB"
    return np.asarray(out.images[0])


def test_latent_upscaler_x2_and_deterministic(latent_upscaler):
    image = _noise(32)
    out = _upscale_x2(latent_upscaler, image)
    assert out.shape == (64, 64, 3) and out.std() > 1  # not a flat image
    assert np.array_equal(out, _upscale_x2(latent_upscaler, image))
    assert not np.array_equal(out, _upscale_x2(latent_upscaler, image, seed=1))
    assert not np.array_equal(out, _upscale_x2(latent_upscaler, _noise(32, seed=1)))  # the image matters
    assert _upscale_x2(latent_upscaler, _noise(48).crop((0, 0, 48, 32))).shape == (64, 96, 3)  # 48x32 -> 96x64


def test_latent_upscaler_calls_back_each_step(latent_upscaler):
    calls = []
    _upscale_x2(latent_upscaler, _noise(32), steps=3, callback=lambda i, t, latents: calls.append((i, latents.shape)))
    assert calls == [(i, (1, 4, 8, 8)) for i in range(3)]  # 2x the 4x4 latents of a 32x32 image


def test_latent_upscaler_is_seeded_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = build_demo_latent_upscaler(), build_demo_latent_upscaler()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.unet.state_dict().values(), b.unet.state_dict().values()))
    c = build_demo_latent_upscaler(seed=1)
    assert not torch.equal(a.unet.conv_in.weight, c.unet.conv_in.weight)


def test_ensure_demo_latent_upscaler_round_trip(tmp_path, latent_upscaler):
    folder = ensure_demo_latent_upscaler(tmp_path)
    assert folder == tmp_path / "demo-latent-upscaler-x2"
    index = folder / "model_index.json"
    before = index.stat().st_mtime_ns
    assert ensure_demo_latent_upscaler(str(tmp_path)) == folder
    assert index.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo-latent-upscaler-x2"]

    loaded = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert isinstance(loaded, StableDiffusionLatentUpscalePipeline)
    assert loaded.scheduler.config.prediction_type == "sample" and loaded.vae_scale_factor == 8
    loaded.set_progress_bar_config(disable=True)
    for part in ("unet", "vae", "text_encoder"):
        saved, built = getattr(loaded, part).state_dict(), getattr(latent_upscaler, part).state_dict()
        assert saved.keys() == built.keys() and all(torch.equal(saved[k], built[k]) for k in saved), part
    image = _noise(32)
    # The same weights in other memory can round one pixel the other way on some CPUs (seen: 1 of
    # 12,288 values off by 1), so the pictures agree to within one level, not bit for bit.
    difference = _upscale_x2(loaded, image).astype(int) - _upscale_x2(latent_upscaler, image).astype(int)
    assert np.abs(difference).max() <= 1 and np.count_nonzero(difference) <= 8
