"""Builds small randomly initialised models of each family offline, so the app and the tests run
real diffusers code with no downloaded weights.

The models are seeded: the same seed gives identical weights on every machine with the same torch,
so two hosts that build "demo-sd15" get the same model and the same images. Their images are noise,
but every code path (tokenizer, text encoder, UNet, scheduler, VAE) is the real one.
"""

import importlib
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from pipelines.families import FAMILIES

logger = logging.getLogger(__name__)

# demo model id -> (family, "module:function" that builds it): each family declares its demos.
DEMO_MODELS = FAMILIES.demo_builders()

# CLIP's text encoders see at most 77 tokens; the pipelines pad to model_max_length.
_MAX_LENGTH = 77


def bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's table from each byte to a printable character, in byte-token order."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _make_tokenizer() -> CLIPTokenizer:
    """A byte-level CLIP tokenizer: 256 byte symbols, 256 word-final ones, then the two specials.

    Every byte has a token, so different prompts give different ids (a vocab of only the specials
    maps everything to unk, and every prompt then gives the same image). The specials come last,
    as in real CLIP, because the text encoder pools at the EOS id it finds in its config.
    """
    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # Pass vocab/merges as objects: CLIPTokenizer(vocab_file=..., merges_file=...) silently ignores
    # both files. model_max_length must be set, or the pipeline pads to about 1e30 tokens.
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=_MAX_LENGTH)


def _make_text_encoder(tokenizer: CLIPTokenizer, projection: bool = False):
    """A 2-layer CLIP text encoder, 32 wide, whose special-token ids match `tokenizer`."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=32,
        hidden_act="quick_gelu",
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _make_vae(blocks: tuple[int, ...], norm_groups: int) -> AutoencoderKL:
    """A KL autoencoder; 4 blocks downsample by 8, as SD's does."""
    n = len(blocks)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n,
        block_out_channels=list(blocks),
        norm_num_groups=norm_groups,
        sample_size=64,
    ).eval()


def _make_scheduler() -> EulerDiscreteScheduler:
    """Euler with SD1.5's and SDXL's training betas and their shipped step spacing."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def build_sd15(
    seed: int = 0,
    unet_blocks: tuple[int, ...] = (32, 64),
    layers_per_block: int = 1,
    vae_blocks: tuple[int, ...] = (8, 16, 16, 16),
    norm_groups: int = 8,
    unet_in_channels: int = 4,
) -> StableDiffusionPipeline:
    """Build a tiny SD1.5-style pipeline with random weights.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.
        unet_blocks (`tuple[int, ...]`, defaults to `(32, 64)`): UNet channels per level.
        layers_per_block (`int`, defaults to 1): UNet resnets per level.
        vae_blocks (`tuple[int, ...]`, defaults to `(8, 16, 16, 16)`): VAE channels per level; the
            image is `2 ** (len(vae_blocks) - 1)` times the latent.
        norm_groups (`int`, defaults to 8): GroupNorm groups of UNet and VAE; must divide every
            block's channels.
        unet_in_channels (`int`, defaults to 4): 9 makes an inpainting model (latents, mask and masked
            image latents), which only the inpaint pipelines can run.

    Returns:
        A `StableDiffusionPipeline` with no safety checker and the progress bar disabled. Pass
        `height` and `width` when calling it: the default size is only `8 * vae factor`.
    """
    n = len(unet_blocks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = _make_tokenizer()
        text_encoder = _make_text_encoder(tokenizer)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=unet_in_channels,
            out_channels=4,
            block_out_channels=tuple(unet_blocks),
            layers_per_block=layers_per_block,
            down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
            cross_attention_dim=text_encoder.config.hidden_size,
            norm_num_groups=norm_groups,
            attention_head_dim=8,
        ).eval()
        vae = _make_vae(vae_blocks, norm_groups)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_make_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_sdxl(seed: int = 0) -> StableDiffusionXLPipeline:
    """Build a tiny SDXL-style pipeline with random weights: two text encoders and micro-conditioning.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `StableDiffusionXLPipeline` without the watermarker (it needs `invisible-watermark`) and with
        the progress bar disabled. Its VAE downsamples by 8, so 64x64 images have 8x8 latents.
    """
    time_embed_dim = 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer, tokenizer_2 = _make_tokenizer(), _make_tokenizer()
        text_encoder = _make_text_encoder(tokenizer)
        text_encoder_2 = _make_text_encoder(tokenizer_2, projection=True)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            transformer_layers_per_block=(1, 2),
            addition_embed_type="text_time",
            addition_time_embed_dim=time_embed_dim,
            # 6 size/crop ids, each embedded to time_embed_dim, plus text_encoder_2's pooled projection.
            projection_class_embeddings_input_dim=6 * time_embed_dim + text_encoder_2.config.projection_dim,
            # SDXL concatenates both encoders' hidden states.
            cross_attention_dim=text_encoder.config.hidden_size + text_encoder_2.config.hidden_size,
            norm_num_groups=8,
        ).eval()
        vae = _make_vae((8, 16, 16, 16), norm_groups=8)
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_make_scheduler(),
        add_watermarker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_sd15_inpaint(seed: int = 0) -> StableDiffusionPipeline:
    """A tiny SD1.5 inpainting model: `build_sd15` with a 9-channel UNet."""
    return build_sd15(seed, unet_in_channels=9)


def save_once(target: pathlib.Path, marker: str, save: Callable[[pathlib.Path], None],
              what: str = "model") -> pathlib.Path:
    """Return `target`, first calling `save(folder)` and renaming the folder into place if `target/marker`
    is missing. A reader never sees a half written folder, and two racing processes both end up with one
    complete copy. `target` holding anything else raises `ValueError` (it names `what` was expected):
    it is never deleted, since it may be someone's files."""
    if (target / marker).is_file():
        return target
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} exists but is not a saved {what}; remove it and retry.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would make the renamed model private
    try:
        logger.info("Building demo model %s in %s", target.name, target)
        save(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            # Renaming onto a non-empty folder fails: another process finished first.
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_demo_model(root: str | os.PathLike, model_id: str) -> pathlib.Path:
    """Return `root/model_id`, building and saving the demo model there the first time (see `save_once`) with
    the builder its family declares (`pipelines.families`).

    The folder loads with the ordinary `DiffusionPipeline.from_pretrained(path, local_files_only=True)` (an
    adapter's, such as AnimateDiff's motion modules, with its class's `from_pretrained`).

    Args:
        root (`str` or `os.PathLike`): folder that holds the models; created if missing.
        model_id (`str`): a key of `DEMO_MODELS`.

    Raises:
        `ValueError`: unknown `model_id`, or `root/model_id` holds something else (it is never
            deleted: it may be someone's files).
    """
    if model_id not in DEMO_MODELS:
        raise ValueError(f"Unknown demo model {model_id!r}; valid ids are: {', '.join(DEMO_MODELS)}.")
    family, builder = DEMO_MODELS[model_id]
    module, function = builder.split(":")
    # Imported even when the folder exists: a saved demo may name classes its builder's module defines.
    build = getattr(importlib.import_module(module), function)
    # A pipeline folder is complete once model_index.json is there; a single model (an adapter, a ControlNet)
    # has no index.
    single = FAMILIES[family].adapts or model_id in FAMILIES[family].control_demos
    marker = "config.json" if single else "model_index.json"
    return save_once(pathlib.Path(root) / model_id, marker, lambda folder: build().save_pretrained(folder))
