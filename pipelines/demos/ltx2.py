"""A tiny, seeded, randomly initialised LTX-2 (Lightricks' audio+video model) built fully offline.

`build_ltx2(seed)` returns a real `diffusers.LTX2Pipeline`: Gemma 3 tokenizer and text encoder (made in code by
`pipelines.demos.gemma`), the LTX-2 text connectors, the audio-video transformer, the video VAE, the audio VAE and
the vocoder, with about 0.6 million random weights in all. Its videos and sounds are noise, but every code path
the real 19B model takes (prompt packing, connectors, joint audio/video denoising, both decoders) runs.

The architecture choices that the app can observe follow the real LTX-2.0 checkpoint, so the demo refuses and
accepts what the real one does:
  * the video VAE compresses 32x spatially and 8x in time (patch 4, then spatial / temporal / 2x spatiotemporal
    down blocks), so sizes are multiples of 32 and frame counts are 8k+1;
  * the audio VAE takes 16 kHz mel spectrograms with a 160 hop and compresses 4x; the vocoder upsamples 240x to
    24 kHz stereo, so the audio lasts as long as the video;
  * the decoder reflect-pads, so 64 pixels is the smallest side it can decode;
  * the scheduler is flow matching with LTX's dynamic shift (base 0.95, max 2.05) and terminal shift 0.1, which
    makes a 1-step run NaN.
`LTX2_FACTS` records those rules and the real model's documented defaults. `LTX2ImageToVideoPipeline` takes the
same components (`LTX2ImageToVideoPipeline.from_pipe(pipe)`).
"""

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2ImageToVideoPipeline,
    LTX2Pipeline,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2 import LTX2TextConnectors
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

from pipelines.demos.gemma import make_gemma3_text_encoder, make_gemma_tokenizer

LTX2_FACTS = {
    "family": "ltx2",
    # `LTX2Pipeline.check_inputs` raises unless height and width are multiples of 32 (the VAE's spatial factor).
    "size_multiple": 32,
    # The decoder reflect-pads its convolutions, which fails on a 1x1 latent ("Padding size should be less than the
    # corresponding input dimension"), so 32 pixels on a side cannot be decoded: 64 is the smallest side.
    "min_size": 64,
    # The VAE is causal in time with an 8x factor: frame 0 gets its own latent, then one latent per 8 frames. The
    # pipeline floors other counts to ((n - 1) // 8) * 8 + 1 without complaint, so ask for 8k+1 frames.
    "frames_rule": "8k+1",
    "frame_multiple": 8,
    # Lightricks/LTX-2 (19B dev) as diffusers' LTX-2 docs run it (stage 1, non-distilled): 768x512, 121 frames at
    # 24 fps (about 5 s), 40 steps, guidance 4.0, and a stock negative prompt.
    "default_frames": 121,
    "default_fps": 24.0,
    "default_width": 768,
    "default_height": 512,
    "default_steps": 40,
    "default_guidance": 4.0,
    "default_negative_prompt": (
        "shaky, glitchy, low quality, worst quality, deformed, distorted, disfigured, motion smear, motion artifacts,"
        " fused fingers, bad anatomy, weird hand, ugly, transition, static."
    ),
    # What `LTX2Pipeline.__call__` uses when an argument is left out (diffusers 0.42 tracks LTX-2.3 there): 30 steps,
    # guidance 3.0 for video and 7.0 for audio, STG 1.0 at block 28, modality guidance 3.0, rescale 0.7, and
    # num_frames=None meaning 121 (a pipeline with a duration head would predict it instead).
    "call_defaults": {"num_inference_steps": 30, "guidance_scale": 3.0, "audio_guidance_scale": 7.0,
                      "stg_scale": 1.0, "spatio_temporal_guidance_blocks": [28], "modality_scale": 3.0,
                      "guidance_rescale": 0.7, "num_frames": 121, "frame_rate": 24.0, "width": 768, "height": 512},
    # (STG's default block 28 does not exist in the 2-block demo, so there its perturbed pass equals the plain one:
    # an extra transformer pass per step that changes nothing.)
    "negative_prompt": True,
    # The scheduler stretches its shifted sigmas so the last one is 0.1 (`shift_terminal`); with a single step
    # that divides 0 by 0, so 1 step gives NaN latents and noise-free garbage. At least 2 steps.
    "min_steps": 2,
    "call_args": {
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "width": "width",
        "height": "height",
        "num_frames": "num_frames",
        "fps": "frame_rate",
        "steps": "num_inference_steps",
        "guidance": "guidance_scale",
        "seed": "generator",
        "image": "image",  # img2vid only
        "max_sequence_length": "max_sequence_length",
    },
    # `pipe(...)` returns `LTX2PipelineOutput(frames=..., audio=...)`, or `(video, audio)` with return_dict=False.
    # frames: per output_type ("pil": list of lists of PIL images; "np": [B, F, H, W, 3] in [0, 1]; "pt":
    # [B, F, 3, H, W]). audio: a [B, 2, samples] float tensor in [-1, 1], stereo, at
    # `pipe.vocoder.config.output_sampling_rate` Hz (24000), about num_frames / frame_rate seconds long.
    "outputs": ("frames", "audio"),
    "audio": True,
    "audio_channels": 2,
    "audio_sample_rate": 24000,
    "tasks": {"txt2vid": "LTX2Pipeline", "img2vid": "LTX2ImageToVideoPipeline"},
    # LTX2ImageToVideoPipeline re-encodes a PIL conditioning image as H.264 (CRF 33 for Gemma 3 checkpoints) to
    # match training, which needs PyAV (`av`); without it pass `image_crf=0` or it raises ImportError.
    "img2vid_needs_av_unless_image_crf_0": True,
    # The connectors replace padding with learnable registers; prompts are padded to `max_sequence_length`
    # (1024 by default), which must be a multiple of the register count (128 in LTX-2.0's connector config, 8 in the
    # demo) or the connectors raise ValueError.
    "max_sequence_length": 1024,
    "sequence_length_multiple": 128,
}

# The demo's Gemma: 32 wide, 2 layers. The pipeline stacks all 3 hidden states (embeddings + 2 layers) and the
# connectors project 32 * 3 features back to 32.
_TEXT_WIDTH = 32
_TEXT_LAYERS = 2
# Tiny register count; real LTX-2 uses 128. Must divide the padded prompt length.
_REGISTERS = 8
# The audio VAE's packed latent width (latent channels x latent mel bins) must equal its `base_channels`, because
# its `latents_mean` / `latents_std` buffers have `base_channels` entries and the pipeline applies them to packed
# latents. Real: 8 x (64 / 4) = 128 = base_channels. Here: 2 x (16 / 4) = 8.
_AUDIO_LATENT_CHANNELS = 2
_MEL_BINS = 16
_AUDIO_WIDTH = _AUDIO_LATENT_CHANNELS * _MEL_BINS // 4


def _make_transformer() -> LTX2VideoTransformer3DModel:
    """The audio-video DiT: 2 layers, video 2 heads x 8, audio 2 heads x 4, LTX-2.0's structure otherwise."""
    return LTX2VideoTransformer3DModel(
        in_channels=4,  # = the video VAE's latent channels (128 in the real model)
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,  # = video inner dim, as in the real model (4096 = 32 x 128)
        vae_scale_factors=(8, 32, 32),  # the RoPE coordinates are in pixels/frames, so they use the VAE's factors
        audio_in_channels=_AUDIO_WIDTH,
        audio_out_channels=_AUDIO_WIDTH,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=_TEXT_WIDTH,
        # float32 RoPE: double precision buys nothing at this size and is slow on CPU.
        rope_double_precision=False,
    ).eval()


def _make_connectors() -> LTX2TextConnectors:
    """LTX-2.0's text connectors (one shared projection, then a video and an audio 1D transformer)."""
    return LTX2TextConnectors(
        caption_channels=_TEXT_WIDTH,
        text_proj_in_factor=_TEXT_LAYERS + 1,
        # Each connector's width (heads x head_dim) must equal caption_channels: the blocks run on the projection.
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=_TEXT_WIDTH // 4,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=_REGISTERS,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=_TEXT_WIDTH // 4,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=_REGISTERS,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
    ).eval()


def _make_vae() -> AutoencoderKLLTX2Video:
    """LTX-2.0's video VAE layout (32x spatial, 8x temporal, reflect padding in the decoder) with 8-32 channels and
    one layer per block."""
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        # Each decoder level doubles: an up block's depth-to-space upsampler takes twice the channels it emits.
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    ).eval()
    return vae


def _make_audio_vae() -> AutoencoderKLLTX2Audio:
    """LTX-2.0's audio VAE layout (stereo 16 kHz mel in, 4x compression) at 8 base channels and 16 mel bins."""
    return AutoencoderKLLTX2Audio(
        base_channels=_AUDIO_WIDTH,
        output_channels=2,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=_MEL_BINS,
        latent_channels=_AUDIO_LATENT_CHANNELS,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=_MEL_BINS,
    ).eval()


def _make_vocoder() -> LTX2Vocoder:
    """LTX-2.0's HiFi-GAN vocoder upsampling (6, 5, 2, 2, 2 = 240x: one 10 ms mel frame to 240 samples at 24 kHz),
    64 hidden channels halving to 2 and one resnet per stage."""
    return LTX2Vocoder(
        in_channels=2 * _MEL_BINS,  # audio VAE output channels x mel bins
        hidden_channels=64,
        out_channels=2,
        upsample_kernel_sizes=[16, 15, 8, 4, 4],
        upsample_factors=[6, 5, 2, 2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=24000,
    ).eval()


def _make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Flow matching Euler with LTX's resolution-dependent shift; the pipeline passes `mu` from these bounds."""
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )


def build_ltx2(seed: int = 0) -> LTX2Pipeline:
    """Build a tiny LTX-2 text-to-video(+audio) pipeline with random weights, offline.

    Args:
        seed (`int`, defaults to 0): seeds every weight; the caller's global RNG is left untouched. The same seed
            gives identical weights on any machine with the same torch.

    Returns:
        An `LTX2Pipeline` in eval mode with the progress bar disabled. Call it with sizes that are multiples of 32
        (32x32 is the smallest: a 1x1 latent), `num_frames` = 8k+1, and a `max_sequence_length` that is a multiple
        of 8 (the default 1024 works but makes the text encoder the slowest part; 16 is plenty for tests). For
        image-to-video use `LTX2ImageToVideoPipeline.from_pipe(pipe)`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = make_gemma_tokenizer()
        text_encoder = make_gemma3_text_encoder(tokenizer, hidden_size=_TEXT_WIDTH, num_layers=_TEXT_LAYERS)
        connectors = _make_connectors()
        transformer = _make_transformer()
        vae = _make_vae()
        audio_vae = _make_audio_vae()
        vocoder = _make_vocoder()
    pipe = LTX2Pipeline(
        scheduler=_make_scheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_ltx2_img2vid(seed: int = 0) -> LTX2ImageToVideoPipeline:
    """The same tiny model as `build_ltx2(seed)`, as an `LTX2ImageToVideoPipeline` (shares no modules with
    another build). Pass `image_crf=0` when PyAV is not installed; see `LTX2_FACTS`."""
    pipe = LTX2ImageToVideoPipeline.from_pipe(build_ltx2(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe
