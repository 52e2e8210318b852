"""A tiny randomly initialised Wan 2.2 demo model, built offline, in Wan2.2-TI2V-5B's layout, that runs through
diffusers' real Wan pipelines: `build_wan22` makes text to video with `WanPipeline`, and the same components
make image to video with `WanImageToVideoPipeline.from_pipe(pipe)`.

Wan2.2-TI2V-5B is one transformer for both tasks: the pipelines' `expand_timesteps=True` gives every latent
token its own timestep, and for image to video the first latent frame is the encoded image, held at timestep
0 (clean) while the rest is denoised. There is no CLIP image encoder (Wan 2.1's I2V models have one, and a
transformer with `image_dim`; WanImageToVideoPipeline skips the image encoder when the transformer's
`image_dim` is None), so image to video needs no other components.

As with `pipelines.demo_model`, the same seed gives identical weights; the videos are noise, but every code
path (the UMT5 tokenizer and encoder with the attention mask, the 3D transformer with per-token timesteps
and 3D RoPE, UniPC with flow sigmas, the 48-channel residual VAE with 2x2 patchify, 16x spatial and 4x
temporal compression and its per-channel latent mean and std) is the real one.
"""

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

from pipelines.demos.t5 import make_t5_tokenizer, make_umt5_encoder

# What the family declaration needs to know, from diffusers 0.42.1's pipelines, diffusers'
# scripts/convert_wan_to_diffusers.py (the published Diffusers folders' configs) and the Wan2.2-TI2V-5B
# model card.
WAN22_FACTS = {
    # VAE factor 16 x patch size 2. Both pipelines warn and round other sizes down to a multiple of 32
    # (80 -> 64); WanImageToVideoPipeline first raises ValueError on a size that is not a multiple of 16.
    "size_multiple": 32,
    # frames = 4k + 1 (the VAE keeps the first frame and compresses the rest 4x in time); the pipelines
    # warn and round anything else down to 4k + 1.
    "frames_rule": (4, 1),
    "max_sequence_length": 512,  # UMT5 tokens, the call's default (the encoding helper's own is 226)
    "guidance": "cfg",  # real CFG: two transformer passes per step when guidance_scale > 1
    "negative_prompt": "yes; Wan's own default negative prompt is a long Chinese one (the pipeline's is '')",
    "tasks": {
        "txt2vid": "WanPipeline",
        # from_pipe on the same components: expand_timesteps carries over in the pipeline config. No
        # image encoder (TI2V's transformer has image_dim None). Needs the `ftfy` package: the i2v
        # pipeline's prompt cleaner calls ftfy.fix_text unconditionally (WanPipeline's only when it is
        # installed); without it a text prompt raises NameError: name 'ftfy' is not defined.
        "img2vid": "WanImageToVideoPipeline",
    },
    "default_steps": 50,
    "default_guidance": 5.0,
    "default_size": (1280, 704),  # width, height: the 5B's 720p (pipeline defaults: 832x480, Wan 2.1's)
    "default_frames": 121,  # at 24 fps (5 s); Wan 2.1: 81 at 16 fps. Pipeline default: 81
    "fps": 24,
    # Call arguments that differ from SD's. Output: .frames (a batch of videos), not .images;
    # output_type defaults to "np" (float frames in [0, 1]), not "pil".
    "call_args": {
        "num_frames": "frames (4k + 1)",
        "max_sequence_length": "UMT5 tokens (default 512)",
        "num_videos_per_prompt": "in place of num_images_per_prompt",
        "guidance_scale_2": "low-noise transformer's CFG in Wan2.2 A14B (two experts; needs boundary_ratio)",
        "attention_kwargs": "in place of cross_attention_kwargs",
        "img2vid": "image (PIL or tensor: the first frame); last_image (first-last-frame: Wan 2.1 FLF2V and "
                   "2.2 A14B; ignored with expand_timesteps, so by TI2V-5B)",
    },
    # No sigmas/timesteps arguments, no eta, no clip_skip.
    "scheduler": "UniPCMultistepScheduler(prediction_type='flow_prediction', use_flow_sigmas=True, "
                 "num_train_timesteps=1000, flow_shift=5.0) (Wan 2.1: flow_shift 3.0 at 480p, 5.0 at 720p)",
    "vae": {"z_dim": 48, "scale_factor_spatial": 16, "scale_factor_temporal": 4, "patch_size": 2,
            "is_residual": True},
    "layout": "Wan2.2-TI2V-5B (48-channel VAE, expand_timesteps=True, one transformer for t2v and i2v)",
}

# Wan2.2's VAE normalises each of its 48 latent channels: latents = (z - mean) / std. From the published
# Wan2.2-TI2V-5B-Diffusers vae/config.json (as diffusers' conversion script writes it).
_LATENTS_MEAN = (
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
    0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313, -0.1649, 0.0117, 0.0723,
    -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
)
_LATENTS_STD = (
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
)
_Z_DIM = 48


def _make_vae() -> AutoencoderKLWan:
    """Wan2.2's VAE, tiny: the real layout (48 latent channels; the image patchified 2x2 into 12 channels;
    residual down/up blocks; three 2x downsamplings, the last two also in time: 16x16 pixels and 4 frames
    per latent) with 8 channels at the first level instead of 160 (256 in the decoder) and one residual
    block per level instead of 2."""
    return AutoencoderKLWan(
        base_dim=8,
        decoder_base_dim=8,
        z_dim=_Z_DIM,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
        latents_mean=list(_LATENTS_MEAN),
        latents_std=list(_LATENTS_STD),
        is_residual=True,
        in_channels=12,  # RGB x the 2x2 patch
        out_channels=12,
        patch_size=2,
        scale_factor_temporal=4,
        scale_factor_spatial=16,
    ).eval()


def build_wan22(seed: int = 0) -> WanPipeline:
    """Build a tiny Wan 2.2 (TI2V-5B layout) text-to-video pipeline with random weights.

    Components: UMT5 (character-level T5 tokenizer, 2-layer encoder, 32 wide), a `WanTransformer3DModel`
    with 2 blocks of 2 heads of 16 on the 48 latent channels in 1x2x2 patches (no image embedding, as the
    5B's), Wan2.2's 48-channel VAE (tiny, see `_make_vae`), and the 5B's `UniPCMultistepScheduler` with
    flow sigmas and flow_shift 5.0. The pipeline has `expand_timesteps=True` (per-token timesteps), as
    TI2V-5B's does.

    `WanImageToVideoPipeline.from_pipe(pipe)` runs image to video on the same components (see the module
    docstring; it needs the `ftfy` package for text prompts).

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `WanPipeline` with the progress bar disabled. Pass `height` and `width` (multiples of 32) and
        `num_frames` (4k + 1) when calling it: its defaults are 480x832 and 81 frames. A 64x64, 5-frame
        video has 2 x 4 x 4 latents and 8 transformer tokens.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = make_t5_tokenizer()
        text_encoder = make_umt5_encoder(tokenizer, d_model=32)
        vae = _make_vae()
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=16,  # 3D RoPE splits it: 8 for time, 4 for height, 4 for width
            in_channels=_Z_DIM,  # TI2V: the latents only (the image is the first latent frame, not channels)
            out_channels=_Z_DIM,
            text_dim=text_encoder.config.d_model,
            freq_dim=32,  # sinusoidal timestep features
            ffn_dim=64,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            eps=1e-6,
            image_dim=None,  # no CLIP image embedding (Wan 2.1 I2V's is 1280)
            added_kv_proj_dim=None,
            rope_max_seq_len=1024,
        ).eval()
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=5.0,
        ),
        transformer=transformer,
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
