"""Live previews: a small picture of the latents a pipeline is denoising, made every few steps while a job runs.

A step callback hands on its `Latents`; `Previewer.offer` decides whether a preview is due (at most one every
`interval` seconds, and never more than `share` of the time the run has taken: each preview's cost sets how
long until the next) and makes it: with the model's tiny decoder (a TAESD, diffusers' `AutoencoderTiny`) when
the catalogue gives one, else with its family's cheap latent-to-RGB projection (`pipelines.latent_rgb`), or,
for latents of a channel count no projection reads (the demo models' small VAEs), with their first three
channels stretched to the picture's range. Packed latents (FLUX, Qwen-Image, LTX-2: a token sequence of
patches) are unpacked first; of a batch, the first picture is shown, of a video, its middle frame. A preview is
at most `PREVIEW_SIDE` pixels on its long side, in the picture's own aspect ratio. What the caller then spends on
a preview (encoding and storing it) is charged to the same budget (`Previewer.charge`).

The preview never changes what the run makes: it reads the latents and writes nothing back.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch

from pipelines.families import FAMILIES
from pipelines.latent_rgb import SD_X4, LatentRGB
from pipelines.plan import ModelRef

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 256            # the long side of a preview, at most
TINY_DECODER_LATENT_SIDE = 32  # latents wider than this are pooled down before a tiny decoder draws them
# Catalogue helpers that denoise latents of their own (not a family's).
HELPER_LATENT_RGB = {"upscaler": (SD_X4,)}

Decoder = Callable[[ModelRef], torch.nn.Module | None]


@dataclass(frozen=True)
class Latents:
    """What a step callback hands on for a preview.

    Args:
        tensor: the pipeline's latents at this step, as its callback sees them.
        model: the model denoising them (its family says how to read them; its id picks a tiny decoder).
        width, height: the size of the picture being made; packed latents are unpacked with it.
        pipe: the pipeline, whose VAE and patch factors say how packed latents map to the picture (None: a VAE
            factor of 8 and 2x2 patches, FLUX's).
    """

    tensor: torch.Tensor
    model: ModelRef
    width: int
    height: int
    pipe: object = None


def _grid(latents: Latents) -> tuple[int, int, int]:
    """(rows, columns, patch side) of the token grid of packed latents: LTX-2's pipelines name their VAE's
    compression and the transformer's patch; FLUX's, Qwen-Image's and Z-Image's pack 2x2 patches of latents the
    VAE made `vae_scale_factor` times smaller than the picture."""
    pipe = latents.pipe
    if hasattr(pipe, "vae_spatial_compression_ratio"):
        patch = int(getattr(pipe, "transformer_spatial_patch_size", 1) or 1)
        cell = int(pipe.vae_spatial_compression_ratio) * patch
    else:
        patch = 2
        cell = int(getattr(pipe, "vae_scale_factor", 8) or 8) * patch
    return max(latents.height // cell, 1), max(latents.width // cell, 1), patch


def latent_picture(latents: Latents) -> torch.Tensor | None:
    """The latents of one picture as (channels, h, w) floats: the first of the batch, a video's middle frame,
    packed tokens unpacked; None when their shape fits none of those (nothing is drawn then)."""
    tensor = latents.tensor.detach()
    family = FAMILIES.get(latents.model.family)
    if tensor.ndim == 4:                                   # (batch, channels, h, w)
        return tensor[0].float()
    if tensor.ndim == 5:                                   # a video: channels or frames first
        if family is not None and family.latent_layout == "frames_first":
            return tensor[0, tensor.shape[1] // 2].float()
        return tensor[0, :, tensor.shape[2] // 2].float()
    if tensor.ndim != 3:
        return None
    rows, columns, patch = _grid(latents)                  # (batch, tokens, features) of patches
    per_frame = rows * columns
    frames = tensor.shape[1] // per_frame
    features = tensor.shape[2]
    if frames == 0 or features % (patch * patch):
        return None
    middle = frames // 2
    tokens = tensor[0, middle * per_frame:(middle + 1) * per_frame].float()
    channels = features // (patch * patch)
    # Features are (channel, row in patch, column in patch), as the pipelines' _pack_latents lay them out.
    grid = tokens.reshape(rows, columns, channels, patch, patch)
    return grid.permute(2, 0, 3, 1, 4).reshape(channels, rows * patch, columns * patch)


def projections_of(model: ModelRef) -> tuple[LatentRGB, ...]:
    """The latent-to-RGB projections that may read `model`'s latents."""
    family = FAMILIES.get(model.family)
    return family.latent_rgb if family is not None else HELPER_LATENT_RGB.get(model.family, ())


def project(picture: torch.Tensor, projections: tuple[LatentRGB, ...]) -> torch.Tensor:
    """(3, h, w) colours in [0, 1] from (channels, h, w) latents: the projection that reads that many channels,
    else the first three channels (repeated if fewer), each stretched to its range in the picture."""
    channels = picture.shape[0]
    chosen = next((p for p in projections if p.channels == channels), None)
    if chosen is not None:
        factors = torch.tensor(chosen.factors, dtype=picture.dtype, device=picture.device)
        bias = torch.tensor(chosen.bias, dtype=picture.dtype, device=picture.device)
        rgb = torch.einsum("chw,cr->rhw", picture, factors) + bias[:, None, None]
        return ((rgb + 1) / 2).clamp(0, 1)
    three = picture[[k % channels for k in range(3)]]
    low = three.amin(dim=(1, 2), keepdim=True)
    high = three.amax(dim=(1, 2), keepdim=True)
    return (three - low) / (high - low).clamp_min(1e-6)


def tiny_decode(picture: torch.Tensor, decoder: torch.nn.Module) -> torch.Tensor:
    """(3, H, W) colours in [0, 1] drawn by a tiny decoder (TAESD); latents wider than
    TINY_DECODER_LATENT_SIDE are average-pooled down first, so the decode costs the same at any size."""
    parameter = next(decoder.parameters())
    latents = picture[None].to(parameter.device, parameter.dtype)
    factor = math.ceil(max(latents.shape[-2:]) / TINY_DECODER_LATENT_SIDE)
    if factor > 1:
        latents = torch.nn.functional.avg_pool2d(latents, factor, ceil_mode=True)
    decoded = decoder.decode(latents).sample[0].float()
    return ((decoded + 1) / 2).clamp(0, 1)


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The picture's size scaled down to at most PREVIEW_SIDE on its long side."""
    scale = min(1.0, PREVIEW_SIDE / max(width, height, 1))
    return max(round(width * scale), 1), max(round(height * scale), 1)


@torch.no_grad()
def preview_image(latents: Latents, decoder: torch.nn.Module | None = None) -> PIL.Image.Image | None:
    """A small RGB picture of `latents` (see the module), drawn by `decoder` when it reads their channel count;
    None when their shape is not one a picture can be read from."""
    picture = latent_picture(latents)
    if picture is None:
        return None
    channels = getattr(getattr(decoder, "config", None), "latent_channels", None)
    if decoder is not None and channels == picture.shape[0]:
        rgb = tiny_decode(picture, decoder)
    else:
        rgb = project(picture, projections_of(latents.model))
    pixels = (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
    image = PIL.Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    return image.resize(preview_size(latents.width, latents.height), PIL.Image.BILINEAR)


class Previewer:
    """Makes the previews of one run, when due.

    Args:
        decoder: model -> its tiny decoder (a TAESD), or None for the cheap projection.
        interval: least seconds between two previews.
        share: most of the run's time previews may take: after a preview that took c seconds the next waits
            at least c / share.
        clock: seconds, for the spacing (a test may pass its own).
    """

    def __init__(self, decoder: Decoder = lambda model: None, interval: float = 0.5, share: float = 0.05,
                 clock: Callable[[], float] = time.perf_counter):
        self.decoder = decoder
        self.interval = interval
        self.share = share
        self.clock = clock
        self.made = 0
        self.seconds = 0.0            # spent making previews
        self._due = clock()
        self._broken = False

    def offer(self, latents: Latents) -> PIL.Image.Image | None:
        """A preview of `latents` if one is due, else None. A preview that fails is logged once and previews stop
        for this run: they never stop the run itself."""
        if self._broken or self.clock() < self._due:
            return None
        decoder = self.decoder(latents.model)     # loaded once, outside the measured cost
        started = self.clock()
        try:
            image = preview_image(latents, decoder)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            logger.warning("preview of %s latents %s failed (%s); no more previews in this run",
                           latents.model.family, tuple(latents.tensor.shape), e)
            self._broken = True
            return None
        cost = self.clock() - started
        self.seconds += cost
        self.made += image is not None
        self._due = self.clock() + max(self.interval, cost / self.share)
        return image

    def charge(self, seconds: float) -> None:
        """Count `seconds` more spent on the last preview (its caller encoding and storing it): the next waits
        longer by seconds / share."""
        self.seconds += seconds
        self._due += seconds / self.share


def load_preview_decoder(source: str, models_dir, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The tiny decoder a catalogue entry's `preview_vae` names: "demo" (built offline under
    `models_dir`/demo the first time), "folder:PATH" (relative to `models_dir`) or "hub:ORG/NAME"."""
    import pathlib

    from diffusers import AutoencoderTiny

    from pipelines.demos.taesd import ensure_demo_taesd

    kind, _, location = source.partition(":")
    if kind == "demo":
        path = ensure_demo_taesd(pathlib.Path(models_dir) / "demo")
    elif kind == "folder":
        path = pathlib.Path(location).expanduser()
        path = path if path.is_absolute() else pathlib.Path(models_dir) / path
    else:
        path = location
    return AutoencoderTiny.from_pretrained(path, torch_dtype=dtype).to(device).eval()
