"""The demo models: seeded, saved once, loadable with plain from_pretrained, prompt-sensitive."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

from pipelines.demo_model import DEMO_MODELS, build_sd15, build_sdxl, ensure_demo_model

# numpy 2 deprecation chatter from diffusers' schedulers.
pytestmark = pytest.mark.usefixtures("one_torch_thread")




def _image(pipe, prompt, seed=0):
    """One 64x64 image, 2 steps, as a uint8 array."""
    out = pipe(prompt, num_inference_steps=2, height=64, width=64, generator=torch.Generator("cpu").manual_seed(seed))
    return np.asarray(out.images[0])


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def sd15_folder(models_root):
    return ensure_demo_model(models_root, "demo-sd15")


@pytest.fixture(scope="module")
def sd15(sd15_folder):
    pipe = DiffusionPipeline.from_pretrained(sd15_folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)  # not saved with the folder
    return pipe


def test_ensure_builds_once(models_root, sd15_folder):
    assert sd15_folder == models_root / "demo-sd15"
    index = sd15_folder / "model_index.json"
    before = index.stat().st_mtime_ns
    assert ensure_demo_model(str(models_root), "demo-sd15") == sd15_folder
    assert index.stat().st_mtime_ns == before
    assert sorted(p.name for p in models_root.iterdir()) == ["demo-sd15"]  # no temporary folder left
    assert sd15_folder.stat().st_mode & 0o755 == 0o755


def test_ensure_rejects_unknown_ids_and_foreign_folders(tmp_path):
    with pytest.raises(ValueError, match="demo-sd15"):
        ensure_demo_model(tmp_path, "demo-flux")
    (tmp_path / "demo-sd15").mkdir()
    (tmp_path / "demo-sd15" / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="not a saved model"):
        ensure_demo_model(tmp_path, "demo-sd15")
    assert (tmp_path / "demo-sd15" / "notes.txt").exists()


def test_saved_folder_loads_as_an_ordinary_pipeline(sd15):
    assert isinstance(sd15, StableDiffusionPipeline)
    assert sd15.safety_checker is None and len(sd15.tokenizer) == 514
    # Pooling reads the EOS id from the text encoder's config; it must be the tokenizer's.
    assert sd15.text_encoder.config.eos_token_id == sd15.tokenizer.eos_token_id
    assert sd15.tokenizer.model_max_length == 77
    image = _image(sd15, "a photo of a cat")
    assert image.shape == (64, 64, 3)
    assert np.array_equal(image, _image(sd15, "a photo of a cat"))


def test_different_prompts_give_different_images(sd15):
    cat, dog = _image(sd15, "a photo of a cat"), _image(sd15, "a photo of a dog")
    assert np.abs(cat.astype(int) - dog).max() > 10


def test_saved_model_is_the_built_model(sd15):
    built = build_sd15(seed=0)
    assert np.array_equal(_image(built, "a cat"), _image(sd15, "a cat"))


def test_builds_are_deterministic_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = build_sd15(seed=0), build_sd15(seed=0), build_sd15(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    for name in ("unet", "vae", "text_encoder"):
        sa, sb, sc = (getattr(p, name).state_dict() for p in (a, b, c))
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
        assert not all(torch.equal(sa[k], sc[k]) for k in sa), name


def test_sdxl_runs_and_round_trips(models_root):
    assert DEMO_MODELS["demo-sdxl"] == ("sdxl", "pipelines.demo_model:build_sdxl")
    folder = ensure_demo_model(models_root, "demo-sdxl")
    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe, StableDiffusionXLPipeline)
    image = _image(pipe, "a photo of a cat")
    assert image.shape == (64, 64, 3)
    assert np.array_equal(image, _image(build_sdxl(seed=0), "a photo of a cat"))
    assert not np.array_equal(image, _image(pipe, "a photo of a dog"))
