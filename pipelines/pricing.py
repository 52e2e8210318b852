"""The price rules the node kinds share, and whether a plan's steps fit the caller's tier. Each step kind's own
price is in its declaration (`pipelines/nodes/`). Pure: no torch."""
from __future__ import annotations

import math

from configs import CreditPrices
from pipelines.errors import Problem
from pipelines.families import FAMILIES
from pipelines.plan import DiffusionStep, Step, VideoStep


def denoising_price(step: DiffusionStep, prices: CreditPrices, width: int, height: int) -> float:
    """Credits for a denoising step whose model works on `width` x `height`: `base_image` per 512x512 image,
    in proportion to the pixels, rounded up to half credits, times the model family's `price_factor` (a number,
    or a [credits] setting such as `sdxl_multiplier`), plus `lora` per LoRA and `controlnet` when a ControlNet
    steers it."""
    per_image = prices.base_image * width * height / (512 * 512)
    family = FAMILIES.get(step.model.family)
    factor = family.price_factor if family is not None else 1.0
    per_image *= getattr(prices, factor) if isinstance(factor, str) else factor
    per_image = max(0.5, math.ceil(per_image * 2) / 2) + prices.lora * len(step.loras)
    if getattr(step, "control_model", None) is not None:
        per_image += prices.controlnet
    return per_image * step.image_count


def video_price(step: VideoStep, prices: CreditPrices) -> float:
    """Credits for a step that makes videos with a model: `video_frame` per frame, whatever its size, plus
    `lora` per LoRA, per video."""
    loras = prices.lora * len(getattr(step, "loras", ()))
    return (prices.video_frame * step.frames + loras) * step.video_count


def over_tier(steps: list[Step], max_side: int, tier: str, max_frames: int = 0) -> list[Problem]:
    """A problem for the first step that makes images wider or taller, or videos longer, than the tier
    allows (0 = no cap)."""
    for step in steps:
        if max_side and max(step.width, step.height) > max_side:
            return [Problem("tier_max_side", f"{step.id}.width",
                            f"Your {tier or 'current'} tier makes images up to {max_side} px per side; step "
                            f"{step.id!r} would make {step.width}x{step.height}. Ask for a smaller size, or "
                            "change tier in the Account tab.")]
        if max_frames and isinstance(step, VideoStep) and step.frames > max_frames:
            return [Problem("tier_max_frames", f"{step.id}.frames",
                            f"Your {tier or 'current'} tier makes videos of up to {max_frames} frames; step "
                            f"{step.id!r} would make {step.frames}. Ask for fewer frames, or change tier in the "
                            "Account tab.")]
    return []
