"""Tiny randomly initialised FLUX.1 demo models, built offline, that run through diffusers' real FLUX
pipelines: `build_flux1` (FLUX.1-dev's layout: text to image, and through `from_pipe` image to image,
inpainting and FLUX.1 Kontext editing) and `build_flux1_fill` (FLUX.1-Fill-dev's layout: inpainting and
outpainting with the masked image as input channels).

As with `pipelines.demo_model`, the same seed gives identical weights; the images are noise, but every code
path (both tokenizers, CLIP and T5, the transformer with its guidance embedding and RoPE, the flow scheduler
with resolution-dependent shift, the 16-channel VAE with its scaling and shift) is the real one.
"""

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxControlNetModel,
    FluxFillPipeline,
    FluxPipeline,
    FluxTransformer2DModel,
)

from pipelines.demo_model import _make_text_encoder, _make_tokenizer
from pipelines.demos.t5 import make_t5_encoder, make_t5_tokenizer

# What the family declaration needs to know, from diffusers 0.42.1's pipelines and the published models
# (FLUX.1-dev's model card and scheduler_config.json; -schnell, -Fill-dev and -Kontext-dev noted apart).
FLUX1_FACTS = {
    # VAE factor 8 x the transformer's 2x2 packing of latents into tokens; FluxPipeline warns and rounds
    # down anything else.
    "size_multiple": 16,
    # T5 tokens read (FluxPipeline raises above 512); schnell was trained with 256.
    "max_sequence_length": 512,
    "clip_tokens": 77,  # CLIP ViT-L only gives the pooled vector; the text itself reaches the model via T5
    # dev/Kontext/Fill: `guidance_scale` is an input of the transformer (its guidance embedding,
    # `guidance_embeds=True`): one pass per step, no negative prompt. schnell has no guidance embedding
    # and ignores it. True CFG (two passes) needs `true_cfg_scale > 1` AND a `negative_prompt`.
    "guidance": "distilled",
    "negative_prompt": "only with true_cfg_scale > 1 (true CFG, twice the cost); ignored otherwise",
    "tasks": {
        "txt2img": "FluxPipeline",
        "img2img": "FluxImg2ImgPipeline",  # from_pipe on the base model; strength (default 0.6)
        "inpaint": "FluxInpaintPipeline",  # from_pipe on the base model; or FluxFillPipeline on a Fill model
        "inpaint_fill_model": "FluxFillPipeline",  # FLUX.1-Fill-dev: its own transformer (in_channels 384)
        "edit": "FluxKontextPipeline",  # from_pipe on a dev-layout model (FLUX.1-Kontext-dev's weights)
    },
    "default_steps": 28,  # FluxPipeline's default; the dev model card uses 50, schnell 4
    "default_guidance": 3.5,  # dev; schnell 0.0; Fill-dev 30; Kontext-dev 2.5 (card), pipeline default 3.5
    "default_size": (1024, 1024),  # FluxPipeline: default_sample_size 128 x VAE factor 8
    "fill_defaults": {"steps": 50, "guidance": 30.0},  # FluxFillPipeline's defaults = the Fill-dev card
    "kontext_defaults": {"steps": 28, "guidance": 2.5},
    # Call arguments that differ from SD's.
    "call_args": {
        "max_sequence_length": "T5 tokens (<= 512)",
        "true_cfg_scale": "real CFG scale, used only with negative_prompt (default 1.0: off)",
        "guidance_scale": "distilled guidance fed to the transformer, not CFG",
        "prompt_2": "the T5 prompt (defaults to prompt)",
        "negative_prompt_2": "T5 negative prompt",
        "sigmas": "custom sigmas (FluxPipeline builds linspace(1, 1/steps) and shifts them by mu)",
        "kontext": "image, max_area (default 1024**2: height/width are rescaled to it!), _auto_resize "
                   "(default True: the input image is resized to one of Kontext's preferred resolutions)",
        "fill": "image, mask_image (white = repaint), strength (default 1.0), masked_image_latents",
    },
    # img2img, inpaint and fill do NOT take their size from the input image: without height/width they
    # resize it to the default 1024x1024. Pass the image's (rounded) size (Kontext: and max_area).
    "size_from_image": False,
    # FluxImg2ImgPipeline and FluxInpaintPipeline default to guidance_scale 7.0 (not 3.5) and strength 0.6:
    # pass the model's guidance. A flow schedule's first sigma is 1 (pure noise), so img2img at strength s
    # starts at step int(steps * (1 - s)) and ignores the image entirely when that is 0 (2 steps at 0.6).
    "img2img_start_step": "int(steps * (1 - strength)); 0 = the input image is ignored",
    # No clip_skip, no eta, no timesteps argument; joint_attention_kwargs in place of cross_attention_kwargs.
    "scheduler": "FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, "
                 "max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096); the pipeline computes mu "
                 "from the image's token count",
    "vae": {"latent_channels": 16, "scaling_factor": 0.3611, "shift_factor": 0.1159},
}

# FLUX.1-dev's scheduler_config.json (-Fill-dev and -Kontext-dev ship the same). With dynamic shifting the
# pipeline passes mu = calculate_shift(image tokens, ...), so the shift grows with the resolution; the
# static `shift` is unused then but kept as the model ships it.
_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)
# 16 latent channels, packed 2x2 into a token of 64 features.
_LATENT_CHANNELS = 16
_PACKED_CHANNELS = _LATENT_CHANNELS * 4


def make_vae16(scaling_factor: float, shift_factor: float) -> AutoencoderKL:
    """The 16-channel KL autoencoder of FLUX.1 and SD3, tiny: 4 levels (8, 16, 16, 16 channels), so it
    downsamples by 8 as theirs does, and no quant convs (FLUX's and SD3's VAEs have none). The pipelines
    read `scaling_factor` and `shift_factor` from its config: latents = (z - shift) * scale."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=_LATENT_CHANNELS,
        layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 16, 16, 16],
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    ).eval()


def _build(pipeline_class, seed: int, in_channels: int):
    """Seeded components of a FLUX.1 pipeline whose transformer takes `in_channels` packed features."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # The text encoders and the VAE are drawn first, so a seed gives the same ones to the base and the
        # Fill model, as FLUX.1-dev and -Fill-dev share theirs.
        tokenizer = _make_tokenizer()
        text_encoder = _make_text_encoder(tokenizer, projection=False)  # FLUX uses CLIP's pooled output
        tokenizer_2 = make_t5_tokenizer()
        text_encoder_2 = make_t5_encoder(tokenizer_2, d_model=32)
        vae = make_vae16(scaling_factor=0.3611, shift_factor=0.1159)  # FLUX.1's VAE config
        transformer = FluxTransformer2DModel(
            patch_size=1,  # the pipeline packs 2x2 latents itself
            in_channels=in_channels,
            out_channels=_PACKED_CHANNELS,  # it predicts the velocity of the packed latents only
            num_layers=1,  # one double-stream (MMDiT) block
            num_single_layers=1,  # one single-stream block
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=text_encoder_2.config.d_model,  # T5's hidden states
            pooled_projection_dim=text_encoder.config.hidden_size,  # CLIP's pooled output
            guidance_embeds=True,  # dev / Fill / Kontext: guidance_scale is an input of the model
            axes_dims_rope=(4, 6, 6),  # RoPE over (text/id, row, column); must sum to attention_head_dim
        ).eval()
    pipe = pipeline_class(
        scheduler=FlowMatchEulerDiscreteScheduler(**_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_flux1(seed: int = 0) -> FluxPipeline:
    """Build a tiny FLUX.1-dev-style pipeline with random weights.

    Components: CLIP (byte-level tokenizer, 2-layer encoder, pooled output), T5 (character-level
    tokenizer, 2-layer gated-GELU encoder, 32 wide), a `FluxTransformer2DModel` with one double- and one
    single-stream block (2 heads of 16) and a guidance embedding, the 16-channel VAE with FLUX.1's scaling
    and shift factors, and FLUX.1-dev's dynamically shifted `FlowMatchEulerDiscreteScheduler`.

    The same components run `FluxImg2ImgPipeline.from_pipe(pipe)`, `FluxInpaintPipeline.from_pipe(pipe)`
    and `FluxKontextPipeline.from_pipe(pipe)` (call Kontext with `max_area=height * width` and
    `_auto_resize=False`, or it works at about 1024x1024).

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `FluxPipeline` with the progress bar disabled. Pass `height` and `width` (multiples of 16) when
        calling it: its default size is 1024x1024. It pads prompts to `max_sequence_length` (512) T5 tokens.
    """
    return _build(FluxPipeline, seed, in_channels=_PACKED_CHANNELS)


def build_flux1_fill(seed: int = 0) -> FluxFillPipeline:
    """Build a tiny FLUX.1-Fill-dev-style pipeline with random weights: `build_flux1`'s text encoders and
    VAE (the same ones for the same seed) and a transformer that also reads the masked image and the mask.

    Its transformer takes, per token, the packed noisy latents (16 x 4 = 64), the packed latents of the
    masked image (64) and the mask folded to the VAE's 8x8 pixels per latent and packed 2x2 (8 * 8 * 4 =
    256): 384 in, 64 out, as FLUX.1-Fill-dev's.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `FluxFillPipeline` with the progress bar disabled; call it with `image`, `mask_image` (white =
        repaint), `height` and `width`.
    """
    vae_factor = 8  # make_vae16 downsamples by 8
    return _build(FluxFillPipeline, seed,
                  in_channels=_PACKED_CHANNELS * 2 + vae_factor * vae_factor * 4)


def build_flux1_controlnet(seed: int = 0) -> FluxControlNetModel:
    """Build a tiny FLUX.1 ControlNet for `build_flux1(seed)`'s transformer, whose control image visibly
    changes the output.

    `FluxControlNetModel.from_transformer` copies the transformer's blocks, but its output projections and
    the control image's embedding start at zero, which makes a fresh ControlNet an exact no-op; here they get
    random weights.

    Args:
        seed (`int`, defaults to 0): seeds the base transformer (as `build_flux1(seed)`) and the new weights;
            the caller's global RNG is left untouched.

    Returns:
        A `FluxControlNetModel` (one double- and one single-stream block) in eval mode.
    """
    transformer = build_flux1(seed).transformer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        controlnet = FluxControlNetModel.from_transformer(
            transformer, num_layers=1, num_single_layers=1,
            attention_head_dim=transformer.config.attention_head_dim,
            num_attention_heads=transformer.config.num_attention_heads)
        with torch.no_grad():
            zeroed = [*controlnet.controlnet_blocks, *controlnet.controlnet_single_blocks,
                      controlnet.controlnet_x_embedder]
            for module in zeroed:
                module.weight.normal_(0.0, 0.2)
    return controlnet.eval()
