"""A tiny randomly initialised Stable Diffusion 3.5 demo model, built offline, that runs through diffusers'
real SD3 pipelines: `build_sd35` (SD3.5 Large's layout: text to image, and through `from_pipe` image to
image and inpainting).

As with `pipelines.demo_model`, the same seed gives identical weights; the images are noise, but every code
path (three tokenizers, two CLIP encoders with projection and T5, the MMDiT transformer with QK-norm and its
cropped position embedding, the shifted flow scheduler, the 16-channel VAE with its scaling and shift) is
the real one.
"""

import torch
from diffusers import (FlowMatchEulerDiscreteScheduler, SD3ControlNetModel, SD3Transformer2DModel,
                       StableDiffusion3Pipeline)

from pipelines.demo_model import _make_text_encoder, _make_tokenizer
from pipelines.demos.flux1 import make_vae16
from pipelines.demos.t5 import make_t5_encoder, make_t5_tokenizer

# What the family declaration needs to know, from diffusers 0.42.1's pipelines and the published models
# (SD3.5 Large's model card and scheduler_config.json; Medium and Large Turbo noted apart).
SD35_FACTS = {
    # VAE factor 8 x patch size 2. StableDiffusion3Pipeline raises ValueError on anything else (it does not
    # round, unlike FluxPipeline).
    "size_multiple": 16,
    # T5 tokens read: the pipeline's default is 256 (the models were trained with 256); it may be raised
    # to 512. The two CLIPs read 77 tokens each, and their hidden states are part of the text sequence.
    "max_sequence_length": 256,
    "clip_tokens": 77,
    "guidance": "cfg",  # real classifier-free guidance: two passes per step when guidance_scale > 1
    "negative_prompt": "yes (negative_prompt, negative_prompt_2 for CLIP-G, negative_prompt_3 for T5)",
    "tasks": {
        "txt2img": "StableDiffusion3Pipeline",
        "img2img": "StableDiffusion3Img2ImgPipeline",  # from_pipe; strength (default 0.6)
        # from_pipe: the ordinary 16-channel transformer repaints the masked area, the rest blended back
        # from the input's latents (the pipeline also accepts a 33-channel inpainting transformer).
        "inpaint": "StableDiffusion3InpaintPipeline",
    },
    "default_steps": 28,  # SD3.5 Large's card (and the pipeline's default); Medium: 40; Large Turbo: 4
    "default_guidance": 3.5,  # SD3.5 Large's card; Medium: 4.5; Large Turbo: 0.0. Pipeline default: 7.0
    "default_size": (1024, 1024),  # transformer sample_size 128 x VAE factor 8
    # The transformer crops its sin-cos position table to the image: pos_embed_max_size x patch 2 x VAE 8 px
    # a side at most (Large: 192 -> 3072 px; this demo: 96 -> 1536); larger raises ValueError.
    "max_side": 3072,
    # Call arguments that differ from SD's.
    "call_args": {
        "max_sequence_length": "T5 tokens (default 256, <= 512)",
        "prompt_2": "CLIP-G prompt (defaults to prompt)",
        "prompt_3": "T5 prompt (defaults to prompt)",
        "negative_prompt_2": "CLIP-G negative prompt",
        "negative_prompt_3": "T5 negative prompt",
        "clip_skip": "as SD's (the CLIPs give their penultimate hidden states by default)",
        "skip_guidance_layers": "skip-layer guidance (SD3.5 Medium: [7, 8, 9]); with skip_layer_guidance_scale "
                                "(2.8), _start (0.01), _stop (0.2)",
        "sigmas": "custom sigmas",
        "mu": "flow shift for dynamically shifted schedulers (SD3.5's is static)",
        "joint_attention_kwargs": "in place of cross_attention_kwargs",
        "inpaint": "image, mask_image, strength (default 0.6), padding_mask_crop, masked_image_latents",
    },
    # img2img and inpaint do NOT take their size from the input image: without height/width they resize it
    # to the default 1024x1024. Pass the image's (rounded) size.
    "size_from_image": False,
    # StableDiffusion3Img2ImgPipeline and StableDiffusion3InpaintPipeline default to 50 steps, guidance 7.0
    # and strength 0.6: pass the model's. A flow schedule's first sigma is 1 (pure noise), so img2img at
    # strength s starts at step int(steps * (1 - s)) and ignores the image entirely when that is 0.
    "img2img_start_step": "int(steps * (1 - strength)); 0 = the input image is ignored",
    # No eta, no guidance_rescale, no timesteps argument.
    "scheduler": "FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0): a static shift",
    "vae": {"latent_channels": 16, "scaling_factor": 1.5305, "shift_factor": 0.0609},
    "layout": "SD3.5 Large (qk_norm rms_norm, no dual-attention layers); Medium adds dual attention "
              "(MMDiT-X) in its first 13 layers",
}


def build_sd35(seed: int = 0) -> StableDiffusion3Pipeline:
    """Build a tiny Stable Diffusion 3.5-style pipeline with random weights.

    Components: two CLIP text encoders with projection (byte-level tokenizers, 2 layers, 32 wide: their
    penultimate hidden states are concatenated to 64 features and their projections to a 64-wide pooled
    vector), T5 (character-level tokenizer, 2-layer gated-GELU encoder, 64 wide: SD3 pads the CLIP
    features up to T5's width and appends T5's tokens), an `SD3Transformer2DModel` in SD3.5 Large's layout
    (QK RMS-norm, no dual attention) with 2 blocks of 2 heads of 16, the 16-channel VAE with SD3's scaling
    and shift factors, and SD3.5's `FlowMatchEulerDiscreteScheduler` (static shift 3.0).

    The same components run `StableDiffusion3Img2ImgPipeline.from_pipe(pipe)` and
    `StableDiffusion3InpaintPipeline.from_pipe(pipe)`.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `StableDiffusion3Pipeline` with the progress bar disabled. Pass `height` and `width` (multiples of
        16, at most 1536) when calling it: its default size is 1024x1024.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer, tokenizer_2 = _make_tokenizer(), _make_tokenizer()
        # SD3 reads both CLIPs' pooled projections (text_embeds), so both have a projection.
        text_encoder = _make_text_encoder(tokenizer, projection=True)
        text_encoder_2 = _make_text_encoder(tokenizer_2, projection=True)
        clip_width = text_encoder.config.hidden_size + text_encoder_2.config.hidden_size
        tokenizer_3 = make_t5_tokenizer()
        # The pipeline pads the concatenated CLIP hidden states to T5's width, so T5 must be at least as wide.
        text_encoder_3 = make_t5_encoder(tokenizer_3, d_model=clip_width)
        vae = make_vae16(scaling_factor=1.5305, shift_factor=0.0609)  # SD3's VAE config
        transformer = SD3Transformer2DModel(
            sample_size=128,  # the pipeline's default size: 128 latents x 8 = 1024 px, as SD3.5's
            patch_size=2,
            in_channels=16,
            out_channels=16,
            num_layers=2,  # the last block only reads the text (context_pre_only), so 2 exercise both kinds
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=text_encoder_3.config.d_model,
            caption_projection_dim=32,  # must equal heads x head dim: the text stream's width
            pooled_projection_dim=text_encoder.config.projection_dim + text_encoder_2.config.projection_dim,
            # The sin-cos position table (a saved buffer, 96 x 96 x 32 floats) is cropped to the image:
            # 96 patches x 2 x 8 = 1536 px a side at most. SD3.5 Large's 192 would make it 4.7 MB.
            pos_embed_max_size=96,
            qk_norm="rms_norm",  # SD3.5 (SD3.0 had none)
            dual_attention_layers=(),  # Large's layout; Medium's MMDiT-X has (0, ..., 12)
        ).eval()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),  # SD3.5's config
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_sd35_controlnet(seed: int = 0) -> SD3ControlNetModel:
    """Build a tiny SD3.5 ControlNet for `build_sd35(seed)`'s transformer, whose control image visibly changes
    the output: `SD3ControlNetModel.from_transformer` copies one block, and its zero-initialised output
    projections and control image embedding get random weights (else a fresh ControlNet is a no-op).

    Args:
        seed (`int`, defaults to 0): seeds the base transformer (as `build_sd35(seed)`) and the new weights;
            the caller's global RNG is left untouched.

    Returns:
        An `SD3ControlNetModel` in eval mode.
    """
    transformer = build_sd35(seed).transformer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        controlnet = SD3ControlNetModel.from_transformer(transformer, num_layers=1,
                                                         num_extra_conditioning_channels=0)
        with torch.no_grad():
            for module in [*controlnet.controlnet_blocks, controlnet.pos_embed_input.proj]:
                module.weight.normal_(0.0, 0.2)
    return controlnet.eval()
