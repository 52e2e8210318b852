"""Where a loaded pipeline runs and in what precision: the family's dtype on CUDA (bfloat16 for the flow
transformers, which overflow in float16), the whole pipeline on the GPU when it fits, diffusers' model CPU
offload when the catalogue asks for it or its weights exceed the free GPU memory, and a message saying what to
do when even one part cannot fit. VAE tiling follows the size of what is made, never the machine, so the same
plan makes the same bytes on every host.
"""
from __future__ import annotations

import logging

import torch

from pipelines.errors import AtelierError
from pipelines.families import FAMILIES

logger = logging.getLogger(__name__)

GIB = 1024 ** 3
# Leave room for activations: a pipeline whose weights take more than this share of the free memory is offloaded.
HEADROOM = 0.8
# Decoding more pixels than this at once (a frame's width x height x frames) goes through the VAE in tiles.
TILE_ABOVE = 1536 * 1536


def family_dtype(family: str, device: torch.device, default: torch.dtype) -> torch.dtype:
    """The dtype `family`'s models run in on `device`: its declared CUDA dtype on a GPU that has it, else
    `default` (float32 on CPU)."""
    declared = FAMILIES.get(family)
    if device.type != "cuda" or declared is None or declared.cuda_dtype == "float16":
        return default
    if declared.cuda_dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, declared.cuda_dtype)


def placement(model_id: str, parts: dict[str, int], free: int, offload: bool) -> str:
    """"gpu" or "offload" for a pipeline whose parts take `parts` bytes, with `free` bytes free on the GPU and
    `offload` asked by the catalogue. Raises AtelierError when its largest part alone cannot fit."""
    total, (largest, size) = sum(parts.values()), max(parts.items(), key=lambda item: item[1])
    if not offload and total <= free * HEADROOM:
        return "gpu"
    if size > free * HEADROOM:
        raise AtelierError(f"Model {model_id!r} does not fit on this GPU: its {largest} alone takes "
                           f"{size / GIB:.1f} GiB and {free / GIB:.1f} GiB are free. Use a GGUF (quantized) file of "
                           "its transformer, a smaller variant, or a GPU with more memory.",
                           code="model_too_large", field="model")
    return "offload"


def place(pipe, model_id: str, device: torch.device, offload: bool = False):
    """`pipe` on `device`: whole, or with model CPU offload on CUDA when `placement` says so."""
    if device.type != "cuda":
        return pipe.to(device)
    parts = {name: sum(p.numel() * p.element_size() for p in module.parameters())
             for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    free, _ = torch.cuda.mem_get_info(device)
    if placement(model_id, parts, free, offload) == "gpu":
        return pipe.to(device)
    logger.info("model cache: %s runs with model CPU offload (%.1f GiB of weights, %.1f GiB free)", model_id,
                sum(parts.values()) / GIB, free / GIB)
    pipe.enable_model_cpu_offload(device=device)
    return pipe


def tile_vae(pipe, family: str, width: int, height: int, frames: int = 1) -> None:
    """Decode in tiles when `family` declares it and the output is large (more than `TILE_ABOVE` pixels in all),
    else whole. (The older families never tile: their stored images replay as they were made.)"""
    vae = getattr(pipe, "vae", None)
    declared = FAMILIES.get(family)
    if vae is None or not hasattr(vae, "enable_tiling") or declared is None or not declared.tile_vae:
        return
    if width * height * frames > TILE_ABOVE:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
