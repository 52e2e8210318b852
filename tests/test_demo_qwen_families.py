"""The demo models of the Qwen-tokenizer families (Qwen-Image and its edit model, Z-Image, FLUX.2 klein,
FLUX.2 [dev]): seeded, saved and reloaded with plain from_pretrained, prompt-sensitive, and every task
pipeline of the family runs on them."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import pytest
import torch
from diffusers import (
    Flux2KleinInpaintPipeline,
    Flux2KleinPipeline,
    Flux2Pipeline,
    QwenImageEditPipeline,
    QwenImageImg2ImgPipeline,
    QwenImageInpaintPipeline,
    QwenImagePipeline,
    ZImageImg2ImgPipeline,
    ZImageInpaintPipeline,
    ZImagePipeline,
)
from PIL import Image

from pipelines.demos.flux2 import FLUX2_FACTS, FLUX2_KLEIN_FACTS, build_flux2, build_flux2_klein
from pipelines.demos.qwen import make_qwen_vl_processor
from pipelines.demos.qwen_image import QWEN_IMAGE_FACTS, build_qwen_image, build_qwen_image_edit
from pipelines.demos.z_image import Z_IMAGE_FACTS, build_z_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# name -> (builder, pipeline class, call arguments as the real model's card uses them)
CASES = {
    # negative_prompt=" " switches on Qwen-Image's true CFG (true_cfg_scale defaults to 4).
    "qwen_image": (build_qwen_image, QwenImagePipeline, {"negative_prompt": " "}),
    # Without a negative prompt: one transformer pass per step over the ~4100-token sequence (the edit
    # pipeline appends the latents of the input image, always resized to ~1024x1024).
    "qwen_image_edit": (build_qwen_image_edit, QwenImageEditPipeline, {"true_cfg_scale": 1.0}),
    "z_image": (build_z_image, ZImagePipeline, {"guidance_scale": 0.0}),  # Turbo: no CFG
    "flux2_klein": (build_flux2_klein, Flux2KleinPipeline, {"guidance_scale": 1.0}),
    "flux2": (build_flux2, Flux2Pipeline, {"guidance_scale": 4.0}),
}
TXT2IMG = ["qwen_image", "z_image", "flux2_klein", "flux2"]
FACTS = {"qwen_image": QWEN_IMAGE_FACTS, "z_image": Z_IMAGE_FACTS, "flux2_klein": FLUX2_KLEIN_FACTS,
         "flux2": FLUX2_FACTS}
SIZE = 64  # the smallest multiple of 16 whose latents (8x8) still patchify; 4x4 latents would also work


def _source_image() -> Image.Image:
    """A 64x64 picture with some structure, for the image-conditioned pipelines."""
    a = np.zeros((SIZE, SIZE, 3), np.uint8)
    a[:, :, 0] = np.arange(SIZE)[None, :] * 4
    a[16:48, 16:48, 2] = 255
    return Image.fromarray(a)


def _mask() -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (16, 16, 48, 48))
    return mask


def _run(pipe, prompt, **kwargs) -> np.ndarray:
    """One image, 2 steps, seed 0, as floats in [0, 1] (H, W, 3)."""
    args = {"prompt": prompt, "num_inference_steps": 2, "height": SIZE, "width": SIZE,
            "generator": torch.Generator("cpu").manual_seed(0), "output_type": "np"}
    args.update(kwargs)
    return pipe(**args).images[0]


@pytest.fixture(scope="module")
def built():
    """`built(name)`: that case's pipeline from seed 0, built once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = CASES[name][0](seed=0)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def image(built):
    """`image(name, prompt)`: the built pipeline's image for `prompt`, made once per module."""
    cache = {}

    def get(name, prompt):
        if (name, prompt) not in cache:
            kwargs = dict(CASES[name][2])
            if name == "qwen_image_edit":
                kwargs["image"] = _source_image()
            cache[name, prompt] = _run(built(name), prompt, **kwargs)
        return cache[name, prompt]

    return get


def _weights(pipe) -> dict[str, torch.Tensor]:
    """Every tensor of every torch module in the pipeline, by component and name."""
    return {f"{name}.{key}": value
            for name, component in pipe.components.items() if isinstance(component, torch.nn.Module)
            for key, value in component.state_dict().items()}


@pytest.mark.parametrize("name", list(CASES))
def test_same_seed_same_weights_and_the_global_rng_is_left_alone(name, built):
    builder = CASES[name][0]
    state = torch.random.get_rng_state()
    again, other = builder(seed=0), builder(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    first, second, third = _weights(built(name)), _weights(again), _weights(other)
    assert first.keys() == second.keys() == third.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    for component in ("text_encoder", "transformer", "vae"):
        keys = [k for k in first if k.startswith(component + ".") and first[k].is_floating_point()]
        assert keys and not all(torch.equal(first[k], third[k]) for k in keys), component


@pytest.mark.parametrize("name", list(CASES))
def test_saved_pipeline_loads_with_from_pretrained_and_gives_the_same_image(name, built, image, tmp_path):
    pipe, cls = built(name), CASES[name][1]
    pipe.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(tmp_path, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)  # not saved with the folder
    assert type(loaded) is cls
    # The tokenizer (and the edit model's processor) came back whole: class, ids and chat template.
    assert type(loaded.tokenizer) is type(pipe.tokenizer)
    text = "a cat <|im_start|> [INST] é"
    assert loaded.tokenizer(text).input_ids == pipe.tokenizer(text).input_ids
    assert loaded.tokenizer.chat_template == pipe.tokenizer.chat_template
    if name == "qwen_image_edit":
        assert type(loaded.processor) is type(pipe.processor)
        assert loaded.processor.image_processor.size == pipe.processor.image_processor.size
    kwargs = dict(CASES[name][2], **({"image": _source_image()} if name == "qwen_image_edit" else {}))
    assert np.array_equal(_run(loaded, "a photo of a cat", **kwargs), image(name, "a photo of a cat"))


@pytest.mark.parametrize("name", TXT2IMG)
def test_txt2img_gives_the_asked_size_and_follows_the_prompt(name, image):
    cat, dog = image(name, "a photo of a cat"), image(name, "a photo of a dog")
    assert cat.shape == (SIZE, SIZE, 3)
    assert np.isfinite(cat).all() and cat.min() >= 0 and cat.max() <= 1
    assert cat.std() > 0.01  # not a flat image
    assert np.abs(cat - dog).max() > 1e-3


@pytest.mark.parametrize("name", TXT2IMG)
def test_facts_size_multiple_is_the_pipelines(name, built):
    assert built(name).vae_scale_factor * 2 == FACTS[name]["size_multiple"]


def test_qwen_template_prefix_is_exactly_what_the_pipelines_drop(built):
    # The pipelines drop the first N hidden states, counted in Qwen's real tokens; the demo tokenizer
    # learnt the system prompts' words, so N is exactly the system prompt here too.
    for name, before in (("qwen_image", "{}"), ("qwen_image_edit", "<|vision_start|>")):
        pipe = built(name)
        prefix = pipe.prompt_template_encode.split(before)[0]
        assert len(pipe.tokenizer(prefix).input_ids) == pipe.prompt_template_encode_start_idx


def test_qwen_image_img2img_and_inpaint_run_from_pipe(built):
    pipe = built("qwen_image")
    kwargs = CASES["qwen_image"][2]
    out = _run(QwenImageImg2ImgPipeline.from_pipe(pipe), "a cat", image=_source_image(), strength=0.6, **kwargs)
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()
    out = _run(QwenImageInpaintPipeline.from_pipe(pipe), "a cat", image=_source_image(), mask_image=_mask(),
               **kwargs)
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()


def test_qwen_image_edit_runs_and_is_the_base_model_plus_a_processor(built, image):
    out = image("qwen_image_edit", "a photo of a cat")
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()
    edit, base = built("qwen_image_edit"), built("qwen_image")
    assert _weights(edit).keys() == _weights(base).keys()
    assert all(torch.equal(v, _weights(base)[k]) for k, v in _weights(edit).items())
    shared = QwenImageEditPipeline.from_pipe(base, processor=make_qwen_vl_processor(base.tokenizer))
    assert shared.transformer is base.transformer and shared.text_encoder is base.text_encoder


def test_z_image_img2img_and_inpaint_run_from_pipe(built):
    pipe = built("z_image")
    kwargs = CASES["z_image"][2]
    out = _run(ZImageImg2ImgPipeline.from_pipe(pipe), "a cat", image=_source_image(), strength=0.6, **kwargs)
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()
    out = _run(ZImageInpaintPipeline.from_pipe(pipe), "a cat", image=_source_image(), mask_image=_mask(), **kwargs)
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()


def test_z_image_refuses_sizes_off_the_multiple(built):
    with pytest.raises(ValueError, match="divisible by 16"):
        _run(built("z_image"), "a cat", height=SIZE + 8)


def test_flux2_klein_edit_and_inpaint_run(built):
    pipe = built("flux2_klein")
    edit = _run(pipe, "make it blue", image=_source_image(), guidance_scale=1.0)
    assert edit.shape == (SIZE, SIZE, 3) and np.isfinite(edit).all()
    out = _run(Flux2KleinInpaintPipeline.from_pipe(pipe), "a cat", image=_source_image(), mask_image=_mask(),
               guidance_scale=1.0)
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()


def test_flux2_edit_runs(built, image):
    edit = _run(built("flux2"), "make it blue", image=_source_image())
    assert edit.shape == (SIZE, SIZE, 3) and np.isfinite(edit).all()
    # The reference image is in the transformer's sequence, so it changes the result.
    assert not np.array_equal(edit, _run(built("flux2"), "make it blue"))
