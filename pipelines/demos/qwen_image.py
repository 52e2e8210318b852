"""Tiny, seeded, randomly initialised Qwen-Image and Qwen-Image-Edit pipelines, built offline.

Every component is the real diffusers/transformers class (`QwenImageTransformer2DModel`,
`AutoencoderKLQwenImage`, `Qwen2_5_VLForConditionalGeneration`, a Qwen2 tokenizer, Qwen2-VL's image
processor) with a tiny config, so the real pipeline code runs end to end; the images are noise. The same
seed gives identical weights, and the caller's RNG is left untouched (see `demo_model.build_sd15`).

`QWEN_IMAGE_FACTS` records what the real models expect, for the family declaration.
"""

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    QwenImageEditPipeline,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)

from pipelines.demos.qwen import make_qwen2_5_vl, make_qwen_tokenizer, make_qwen_vl_processor

QWEN_IMAGE_FACTS = {
    "family": "qwen-image",
    "checkpoint": "Qwen/Qwen-Image",
    # vae_scale_factor is 2 ** len(vae.temperal_downsample) = 8 and latents are packed 2x2, so sizes are
    # multiples of 16. Other sizes only log a warning and are floored to a multiple of 16 (the output is
    # then smaller than asked). The demo VAE keeps the factor 8, so the rule is the same.
    "size_multiple": 16,
    "size_rule": "floor",
    # Qwen's model card sizes; 1328x1328 is its 1:1 (1140 is off the multiple: it becomes 1136). The
    # pipeline's own default (height=None) is default_sample_size * vae_scale_factor = 1024.
    "default_size": (1328, 1328),
    "pipeline_default_size": (1024, 1024),
    "aspect_sizes": {"1:1": (1328, 1328), "16:9": (1664, 928), "9:16": (928, 1664), "4:3": (1472, 1140),
                     "3:4": (1140, 1472), "3:2": (1584, 1056), "2:3": (1056, 1584)},
    "default_steps": 50,
    # True classifier-free guidance: a second transformer pass on the negative prompt, mixed with
    # `true_cfg_scale` and renormalised. It runs only when true_cfg_scale > 1 AND a negative prompt (or
    # its embeds) is given; the model card passes negative_prompt=" ". `guidance_scale` is for
    # guidance-distilled checkpoints (transformer.config.guidance_embeds); Qwen-Image ignores it with a
    # warning.
    "guidance": "true_cfg",
    "guidance_arg": "true_cfg_scale",
    "default_guidance": 4.0,
    "negative_prompt": True,
    "negative_prompt_default": " ",
    # Prompt tokens after the template's system prefix; default 512, more than 1024 raises ValueError.
    "max_sequence_length": 512,
    "max_sequence_length_limit": 1024,
    "scheduler": "FlowMatchEulerDiscreteScheduler",
    "tasks": {
        "txt2img": "QwenImagePipeline",
        "img2img": "QwenImageImg2ImgPipeline",      # image=, strength= (default 0.6)
        "inpaint": "QwenImageInpaintPipeline",      # image=, mask_image=, strength= (default 0.6)
        "edit": "QwenImageEditPipeline",            # image=, prompt is the instruction; needs `processor`
        "edit_inpaint": "QwenImageEditInpaintPipeline",
    },
    # Call arguments named differently from Stable Diffusion's.
    "call_args": {"guidance": "true_cfg_scale", "negative_prompt": "negative_prompt",
                  "max_sequence_length": "max_sequence_length"},
    "dtype": "bfloat16",  # the published weights' dtype
    "edit": {
        "checkpoint": "Qwen/Qwen-Image-Edit",
        # The edit pipeline resizes the input image to ~1024*1024 pixels at its aspect ratio, for the VAE
        # and for the vision tower; the output defaults to that size too (height/width override it).
        "default_size": "input aspect at ~1024x1024",
        "default_steps": 50,
        "default_guidance": 4.0,
        "guidance_arg": "true_cfg_scale",
        "negative_prompt_default": " ",
        # Same architecture as Qwen-Image (the condition image's latents are appended to the sequence,
        # not the channels), different weights; it adds a Qwen2VLProcessor.
        "extra_components": ["processor"],
        # transformers 5.23's Qwen2VLProcessor cannot be built without a video processor, and those
        # need torchvision: the real Qwen/Qwen-Image-Edit folder will not load without torchvision.
        # The demo uses Qwen2VLImageOnlyProcessor instead (pipelines.demos.qwen).
        "requires": ["torchvision"],
    },
}

# Qwen/Qwen-Image's scheduler_config.json: resolution-dependent (dynamic) shift between 0.5 at 256 image
# tokens and 0.9 at 8192, and the schedule stretched to end at sigma 0.02.
QWEN_IMAGE_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 0.9,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}

# Width of the text encoder, hence of the transformer's text input.
_TEXT_HIDDEN = 32


def _make_components(seed: int) -> dict:
    """Tokenizer, text encoder, transformer, VAE and scheduler of a tiny Qwen-Image, seeded."""
    tokenizer = make_qwen_tokenizer()  # no randomness
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = make_qwen2_5_vl(tokenizer, hidden_size=_TEXT_HIDDEN)
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=16 * 4,  # 16 latent channels packed 2x2, as the real model
            out_channels=16,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            # The text encoder's last hidden state is the conditioning (3584 wide in the real model).
            joint_attention_dim=_TEXT_HIDDEN,
            guidance_embeds=False,
            # RoPE over (frame, height, width) must fill the head: 4 + 6 + 6 = 16 (real: 16 + 56 + 56 = 128).
            axes_dims_rope=(4, 6, 6),
        ).eval()
        vae = AutoencoderKLQwenImage(
            base_dim=8,
            z_dim=16,
            # Four levels and two temporal downsamples, as the real VAE: the spatial factor stays 8, so
            # the pipeline's size rule (multiples of 16) is the real one.
            dim_mult=[1, 2, 4, 4],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
            # latents_mean/latents_std stay the real VAE's (the class defaults): the pipelines normalise
            # latents with them.
        ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER_CONFIG)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "transformer": transformer, "vae": vae,
            "scheduler": scheduler}


def build_qwen_image(seed: int = 0) -> QwenImagePipeline:
    """Build a tiny Qwen-Image text-to-image pipeline with random weights.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `QwenImagePipeline` with the progress bar disabled: a 2-layer Qwen2.5-VL text encoder (32
        wide), a 2-layer MMDiT transformer and a 4-level VAE (factor 8), with Qwen-Image's scheduler
        config. Pass `height` and `width` (multiples of 16, e.g. 64): the default is 1024. The img2img
        and inpaint pipelines take the same components:
        `QwenImageImg2ImgPipeline.from_pipe(pipe)`, `QwenImageInpaintPipeline.from_pipe(pipe)`.
    """
    pipe = QwenImagePipeline(**_make_components(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_qwen_image_edit(seed: int = 0) -> QwenImageEditPipeline:
    """Build a tiny Qwen-Image-Edit pipeline (instruction + image -> image) with random weights.

    Its components are `build_qwen_image(seed)`'s, with the same weights, plus a Qwen2-VL processor:
    the edit model has Qwen-Image's architecture, so
    `QwenImageEditPipeline.from_pipe(build_qwen_image(seed), processor=make_qwen_vl_processor(tok))`
    gives the same pipeline without building a second model.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `QwenImageEditPipeline` with the progress bar disabled. Call it with `image=` and `prompt=`.
        Whatever `height`/`width` say, the pipeline resizes the input to ~1024x1024 for the VAE (the
        demo's processor hands the vision tower 56x56), so one call costs a few seconds on CPU. Loading a
        saved copy needs `pipelines.demos.qwen` imported (see `Qwen2VLImageOnlyProcessor`).
    """
    components = _make_components(seed)
    components["processor"] = make_qwen_vl_processor(components["tokenizer"])
    pipe = QwenImageEditPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe
