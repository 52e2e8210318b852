"""The demo models of the families that prompt through T5 (FLUX.1, FLUX.1 Fill, SD3.5, Wan 2.2): seeded,
loadable with plain from_pretrained after save_pretrained, prompt-sensitive, and every task pipeline of each
family runs on them at 64x64 (videos: 5 frames) in 2 steps."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import pytest
import torch
from diffusers import (
    FluxFillPipeline,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxKontextPipeline,
    FluxPipeline,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusion3InpaintPipeline,
    StableDiffusion3Pipeline,
    WanImageToVideoPipeline,
    WanPipeline,
)
from PIL import Image

from pipelines.demos.flux1 import FLUX1_FACTS, build_flux1, build_flux1_fill
from pipelines.demos.sd35 import SD35_FACTS, build_sd35
from pipelines.demos.t5 import make_t5_tokenizer
from pipelines.demos.wan22 import WAN22_FACTS, build_wan22

# Images are compared only with images made under the same thread count (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, FRAMES, STEPS = 64, 5, 2
# name -> (builder, the class its saved folder loads with, the attribute holding its T5 tokenizer)
MODELS = {
    "flux1": (build_flux1, FluxPipeline, "tokenizer_2"),
    "flux1_fill": (build_flux1_fill, FluxFillPipeline, "tokenizer_2"),
    "sd35": (build_sd35, StableDiffusion3Pipeline, "tokenizer_3"),
    "wan22": (build_wan22, WanPipeline, "tokenizer"),
}


def _picture(flip: bool = False) -> Image.Image:
    """A 64x64 RGB gradient (mirrored with `flip`): an input image that is not uniform."""
    ramp = np.linspace(0, 255, SIZE)
    r, g = np.meshgrid(ramp, ramp)
    rgb = np.dstack([r, g, 255 - r]).astype(np.uint8)
    return Image.fromarray(rgb[:, ::-1] if flip else rgb)


MASK = Image.fromarray(np.pad(np.full((32, 32), 255, np.uint8), 16))  # white square: repaint the middle


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed)


def _make(name: str, pipe, prompt: str, seed: int = 0) -> np.ndarray:
    """The model's own task at the smallest size, as floats in [0, 1]: an image (64, 64, 3), or for Wan a
    video (5, 64, 64, 3). FLUX.1 Fill's own task is filling `MASK` in `_picture()`."""
    common = dict(num_inference_steps=STEPS, height=SIZE, width=SIZE, generator=_gen(seed), output_type="np")
    if name == "wan22":
        return pipe(prompt, num_frames=FRAMES, **common).frames[0]
    if name == "flux1_fill":
        return pipe(prompt, image=_picture(), mask_image=MASK, **common).images[0]
    return pipe(prompt, **common).images[0]


def _modules(pipe) -> dict[str, torch.nn.Module]:
    return {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}


@pytest.fixture(scope="module")
def built():
    """Each model built once for the module, on first use: name -> pipeline (seed 0)."""
    pipes = {}

    def get(name):
        if name not in pipes:
            pipes[name] = MODELS[name][0](seed=0)
        return pipes[name]

    return get


@pytest.fixture(scope="module")
def made(built):
    """`_make(name, built(name), "a photo of a cat")`, computed once per model."""
    out = {}

    def get(name):
        if name not in out:
            out[name] = _make(name, built(name), "a photo of a cat")
        return out[name]

    return get


def test_t5_tokenizer_gives_every_character_its_own_token():
    tok = make_t5_tokenizer()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)  # T5's and UMT5's ids
    assert tok.model_max_length == 512
    ids = tok("cat Ünï αβγ").input_ids
    # ▁ c a t ▁ Ü n ï ▁ α β γ </s>: one token per character, none unknown, all letters distinct.
    assert len(ids) == 13 and tok.unk_token_id not in ids and ids[-1] == tok.eos_token_id
    assert len(set(ids[1:4] + ids[5:8] + ids[9:12])) == 9
    assert tok("a cat").input_ids != tok("a cab").input_ids
    padded = tok("a cat", padding="max_length", max_length=12).input_ids
    assert len(padded) == 12 and padded[-1] == tok.pad_token_id


@pytest.mark.parametrize("name", MODELS)
def test_builds_are_deterministic_and_leave_the_global_rng_alone(name):
    build = MODELS[name][0]
    state = torch.random.get_rng_state()
    a, b, c = build(seed=0), build(seed=0), build(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())
    assert _modules(a).keys() == _modules(c).keys() and len(_modules(a)) >= 3
    for part in _modules(a):
        sa, sb, sc = (getattr(p, part).state_dict() for p in (a, b, c))
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part
        assert not all(torch.equal(sa[k], sc[k]) for k in sa), part


@pytest.mark.parametrize("name", MODELS)
def test_saved_folder_loads_with_from_pretrained_and_makes_the_same_output(name, built, made, tmp_path):
    _, pipeline_class, t5_attr = MODELS[name]
    built(name).save_pretrained(tmp_path)
    loaded = pipeline_class.from_pretrained(tmp_path, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)  # not saved with the folder
    assert type(loaded) is pipeline_class
    # The T5 tokenizer survives the round trip with its vocabulary and limits (transformers rebuilds it).
    saved_tok, loaded_tok = getattr(built(name), t5_attr), getattr(loaded, t5_attr)
    assert loaded_tok.model_max_length == 512 and len(loaded_tok) == len(saved_tok)
    prompt = "a cat, Ünïcødé αβγ"
    assert loaded_tok(prompt).input_ids == saved_tok(prompt).input_ids
    assert loaded_tok.unk_token_id not in loaded_tok(prompt).input_ids
    assert np.array_equal(_make(name, loaded, "a photo of a cat"), made(name))


@pytest.mark.parametrize("name", MODELS)
def test_own_task_has_the_right_shape_and_follows_the_prompt(name, built, made):
    out = made(name)
    assert out.shape == ((FRAMES, SIZE, SIZE, 3) if name == "wan22" else (SIZE, SIZE, 3))
    assert np.isfinite(out).all() and out.std() > 0.01  # not NaN, not a flat grey
    other = _make(name, built(name), "a photo of a dog")
    # Different by at least 2 levels of 8 bits somewhere (the 3 changed letters of 18 move FLUX's and Wan's
    # outputs by about 5 levels: most of the 512 text tokens they attend over are padding).
    assert np.abs(out - other).max() > 2 / 255
    assert np.array_equal(out, _make(name, built(name), "a photo of a cat"))  # seeded: reproducible


def test_flux_negative_prompt_needs_true_cfg(built, made):
    pipe = built("flux1")
    common = dict(num_inference_steps=STEPS, height=SIZE, width=SIZE, output_type="np")
    ignored = pipe("a photo of a cat", negative_prompt="blurry", generator=_gen(), **common).images[0]
    assert np.array_equal(ignored, made("flux1"))  # true_cfg_scale 1: distilled guidance only
    true_cfg = pipe("a photo of a cat", negative_prompt="blurry", true_cfg_scale=2.0, generator=_gen(),
                    **common).images[0]
    assert np.abs(true_cfg - made("flux1")).max() > 2 / 255
    assert FLUX1_FACTS["guidance"] == "distilled" and pipe.transformer.config.guidance_embeds


# (pipeline class, model it runs on through from_pipe, call arguments beyond prompt/steps/size/generator).
# Strength 0.5 of 2 steps starts at the second step: a flow schedule's first sigma is 1 (pure noise), so at
# 0.6 of 2 steps (start index int(2 - 1.2) = 0) img2img would ignore the image altogether.
IMAGE_TASKS = {
    "flux1-img2img": (FluxImg2ImgPipeline, "flux1", dict(strength=0.5)),
    "flux1-inpaint": (FluxInpaintPipeline, "flux1", dict(mask_image=MASK, strength=0.5)),
    # max_area and _auto_resize keep Kontext at the requested size (it otherwise works at ~1024x1024).
    "flux1-kontext": (FluxKontextPipeline, "flux1", dict(max_area=SIZE * SIZE, _auto_resize=False)),
    "sd35-img2img": (StableDiffusion3Img2ImgPipeline, "sd35", dict(strength=0.5)),
    "sd35-inpaint": (StableDiffusion3InpaintPipeline, "sd35", dict(mask_image=MASK, strength=0.5)),
}


@pytest.mark.parametrize("task", IMAGE_TASKS)
def test_image_task_runs_from_pipe_and_reads_the_image(task, built):
    pipeline_class, name, extra = IMAGE_TASKS[task]
    pipe = pipeline_class.from_pipe(built(name))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer is built(name).transformer  # the same weights, not a copy

    def edit(image):
        return pipe(prompt="make it red", image=image, num_inference_steps=STEPS, height=SIZE, width=SIZE,
                    generator=_gen(), output_type="np", **extra).images[0]

    out = edit(_picture())
    assert out.shape == (SIZE, SIZE, 3) and np.isfinite(out).all()
    # The output depends on the input image. Only slightly for Kontext, whose 16 image tokens are a few of
    # the 544 the random transformer attends over; identical outputs would mean the image was ignored.
    assert np.abs(out - edit(_picture(flip=True))).max() > (1e-4 if task == "flux1-kontext" else 2 / 255)


def test_wan_image_to_video_runs_on_the_same_components(built):
    t2v = built("wan22")
    i2v = WanImageToVideoPipeline.from_pipe(t2v)
    i2v.set_progress_bar_config(disable=True)
    # TI2V-5B: per-token timesteps and no image encoder; the first latent frame is the image.
    assert i2v.config.expand_timesteps and i2v.image_encoder is None
    assert i2v.transformer.config.image_dim is None
    # Text goes in as embeddings: WanImageToVideoPipeline's prompt cleaner calls ftfy.fix_text without
    # checking that ftfy is installed (WanPipeline checks), and ftfy is not a requirement.
    embeds, negative = t2v.encode_prompt("a cat walks", negative_prompt="", device="cpu")

    def animate(image):
        return i2v(image=image, prompt_embeds=embeds, negative_prompt_embeds=negative, num_frames=FRAMES,
                   num_inference_steps=STEPS, height=SIZE, width=SIZE, generator=_gen(),
                   output_type="np").frames[0]

    video = animate(_picture())
    assert video.shape == (FRAMES, SIZE, SIZE, 3) and np.isfinite(video).all()
    assert np.abs(video - animate(_picture(flip=True))).max() > 2 / 255


def test_facts_match_the_built_models(built):
    flux, sd35, wan = built("flux1"), built("sd35"), built("wan22")
    # Size multiples: VAE factor x the transformer's patch (FLUX packs 2x2 latents itself).
    assert FLUX1_FACTS["size_multiple"] == flux.vae_scale_factor * 2 == 16
    assert SD35_FACTS["size_multiple"] == sd35.vae_scale_factor * sd35.transformer.config.patch_size == 16
    assert WAN22_FACTS["size_multiple"] == (wan.vae.config.scale_factor_spatial
                                            * wan.transformer.config.patch_size[1]) == 32
    assert WAN22_FACTS["frames_rule"] == (wan.vae.config.scale_factor_temporal, 1)
    assert FLUX1_FACTS["vae"]["scaling_factor"] == flux.vae.config.scaling_factor
    assert SD35_FACTS["vae"]["shift_factor"] == sd35.vae.config.shift_factor
    assert WAN22_FACTS["vae"]["z_dim"] == wan.vae.config.z_dim == wan.transformer.config.in_channels
    assert flux.scheduler.config.use_dynamic_shifting and not sd35.scheduler.config.use_dynamic_shifting
    assert sd35.scheduler.config.shift == 3.0 and wan.scheduler.config.flow_shift == 5.0
    # The default size the pipelines fall back to is the real models' (they are tiny, not small-sized).
    assert sd35.default_sample_size * sd35.vae_scale_factor == SD35_FACTS["default_size"][0]
    assert flux.default_sample_size * flux.vae_scale_factor == FLUX1_FACTS["default_size"][0]
    fill = built("flux1_fill")
    assert fill.transformer.config.in_channels == 384 and fill.transformer.config.out_channels == 64
    assert FLUX1_FACTS["tasks"]["inpaint_fill_model"] == type(fill).__name__
    # Fill shares the base model's text encoders and VAE for the same seed, as FLUX.1-Fill-dev shares dev's.
    for part in ("text_encoder", "text_encoder_2", "vae"):
        base, filled = getattr(flux, part).state_dict(), getattr(fill, part).state_dict()
        assert all(torch.equal(base[k], filled[k]) for k in base), part
