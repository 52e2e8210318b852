"""A tiny, seeded, randomly initialised Z-Image pipeline, built offline.

Every component is the real class (`ZImageTransformer2DModel`, the FLUX-style 16-channel
`AutoencoderKL`, `Qwen3Model` and a Qwen2 tokenizer with Qwen3's chat template) with a tiny config, so
the real pipeline code runs end to end; the images are noise. The same seed gives identical weights,
and the caller's RNG is left untouched (see `demo_model.build_sd15`).

`Z_IMAGE_FACTS` records what the real models expect, for the family declaration.
"""

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel

from pipelines.demos.flux1 import make_vae16
from pipelines.demos.qwen import make_qwen3, make_qwen_tokenizer

Z_IMAGE_FACTS = {
    "family": "z-image",
    "checkpoint": "Tongyi-MAI/Z-Image-Turbo",
    # vae_scale_factor = 2 ** (len(vae.block_out_channels) - 1) = 8, latents patchified 2x2: multiples of
    # 16. Unlike Qwen-Image and FLUX.2, other sizes raise ValueError ("Height must be divisible by 16").
    "size_multiple": 16,
    "size_rule": "raise",
    "default_size": (1024, 1024),  # also the pipeline's default when height/width are None
    # Turbo is distilled: 8 steps without guidance (diffusers' examples; the model card's 9 predates
    # diffusers fixing the schedule, huggingface.co/Tongyi-MAI/Z-Image-Turbo/discussions/158).
    "default_steps": 8,
    "default_guidance": 0.0,
    # Ordinary CFG on `guidance_scale`, but it is ON when guidance_scale > 0 (SD: > 1). Without a
    # negative prompt the negative branch encodes "". cfg_normalization (clamp the guided norm) and
    # cfg_truncation (drop CFG late in the schedule) are Z-Image-only call arguments.
    "guidance": "cfg",
    "guidance_arg": "guidance_scale",
    "cfg_enabled_when": "guidance_scale > 0",
    "negative_prompt": True,
    # Prompts go through Qwen3's chat template (enable_thinking=True) and are padded to this length;
    # the embeddings are the text encoder's second-to-last hidden states at the real tokens.
    "max_sequence_length": 512,
    "scheduler": "FlowMatchEulerDiscreteScheduler",
    "tasks": {
        "txt2img": "ZImagePipeline",
        "img2img": "ZImageImg2ImgPipeline",   # image=, strength= (default 0.6)
        "inpaint": "ZImageInpaintPipeline",   # image=, mask_image=, strength= (default 1.0)
    },
    "call_args": {"guidance": "guidance_scale", "negative_prompt": "negative_prompt",
                  "max_sequence_length": "max_sequence_length", "extra": ["cfg_normalization", "cfg_truncation"]},
    "dtype": "bfloat16",  # the published weights' dtype
    # The undistilled base model (Tongyi-MAI/Z-Image) uses the pipeline's own defaults.
    "variants": {"base": {"checkpoint": "Tongyi-MAI/Z-Image", "default_steps": 50, "default_guidance": 5.0}},
}

# Tongyi-MAI/Z-Image-Turbo's scheduler_config.json: a fixed shift of 3. The pipeline always passes `mu`,
# which the scheduler ignores without dynamic shifting.
Z_IMAGE_SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}

# Width of the text encoder, hence the transformer's caption input (cap_feat_dim; 2560 in Qwen3-4B).
_TEXT_HIDDEN = 32


def build_z_image(seed: int = 0) -> ZImagePipeline:
    """Build a tiny Z-Image text-to-image pipeline with random weights.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `ZImagePipeline` with the progress bar disabled: a 2-layer Qwen3 text encoder (32 wide), a
        2-layer single-stream transformer and a 4-level FLUX-style VAE (16 latent channels, factor 8),
        with Z-Image-Turbo's scheduler config. Pass `height` and `width` (multiples of 16, e.g. 64): the
        default is 1024. The img2img and inpaint pipelines take the same components:
        `ZImageImg2ImgPipeline.from_pipe(pipe)`, `ZImageInpaintPipeline.from_pipe(pipe)`.
    """
    tokenizer = make_qwen_tokenizer()  # no randomness
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = make_qwen3(tokenizer, hidden_size=_TEXT_HIDDEN, num_layers=2)
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=16,
            dim=32,
            n_layers=2,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=_TEXT_HIDDEN,
            # RoPE over (caption/frame, height, width) fills the 16-wide head: 4 + 6 + 6 (real 32 + 48 +
            # 48). axes_lens stay the real ones: axis 0 indexes caption tokens, up to 512 of them.
            axes_dims=[4, 6, 6],
            axes_lens=[1024, 512, 512],
        ).eval()
        # The FLUX.1 VAE Z-Image ships: its latent scale and shift, and no quant convs.
        vae = make_vae16(scaling_factor=0.3611, shift_factor=0.1159)
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**Z_IMAGE_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
