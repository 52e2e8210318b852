"""A tiny, seeded, randomly initialised TAESD (diffusers' `AutoencoderTiny`), built offline: the tiny decoder a
live preview draws the latents of 4-channel models with (`pipelines.preview`), as the real madebyollin/taesd
does for SD1.5. Its pictures are noise, but the real class and the real decode path run."""
from __future__ import annotations

import os
import pathlib

import torch
from diffusers import AutoencoderTiny

from pipelines.demo_model import save_once

DEMO_TAESD = "demo-taesd"


def build_taesd(seed: int = 0, latent_channels: int = 4) -> AutoencoderTiny:
    """An `AutoencoderTiny` 8 channels wide with one block per level: it upsamples by 8, as TAESD does.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.
        latent_channels (`int`, defaults to 4): the latent channels it decodes (4: SD1.5's and SDXL's).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                               num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
                               latent_channels=latent_channels).eval()


def ensure_demo_taesd(root: str | os.PathLike) -> pathlib.Path:
    """`root/demo-taesd`, built and saved there the first time (`demo_model.save_once`); it loads with
    `AutoencoderTiny.from_pretrained(path)`."""
    return save_once(pathlib.Path(root) / DEMO_TAESD, "config.json",
                     lambda folder: build_taesd().save_pretrained(folder), what="tiny decoder")
