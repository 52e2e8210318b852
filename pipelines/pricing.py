"""What a plan's steps cost in credits, and whether they fit the caller's tier. Pure: no torch."""
from __future__ import annotations

import math

from configs import CreditPrices
from pipelines.errors import Problem
from pipelines.plan import DiffusionStep, InpaintStep, Step, UpscaleStep


def price(step: Step, prices: CreditPrices) -> float:
    """Credits for a step: `base_image` per 512x512 image, in proportion to the pixels the model works
    on, rounded up to half credits, times `sdxl_multiplier` on SDXL-family models, plus `lora` per LoRA
    and `controlnet` when a ControlNet steers it; an upscaler model costs `upscale` per image; loading
    images and Lanczos resizing are free."""
    if isinstance(step, UpscaleStep):
        return prices.upscale * len(step.seeds) if step.model else 0.0
    if not isinstance(step, DiffusionStep):
        return 0.0
    width, height = (step.work_width, step.work_height) if isinstance(step, InpaintStep) else (step.width, step.height)
    per_image = prices.base_image * width * height / (512 * 512)
    if step.model.family == "sdxl":
        per_image *= prices.sdxl_multiplier
    per_image = max(0.5, math.ceil(per_image * 2) / 2) + prices.lora * len(step.loras)
    if getattr(step, "control_model", None) is not None:
        per_image += prices.controlnet
    return per_image * step.image_count


def over_tier(steps: list[Step], max_side: int, tier: str) -> list[Problem]:
    """A problem for the first step that makes images wider or taller than the tier allows (0 = no cap)."""
    for step in steps if max_side else ():
        if max(step.width, step.height) > max_side:
            return [Problem("tier_max_side", f"{step.id}.width",
                            f"Your {tier or 'current'} tier makes images up to {max_side} px per side; step "
                            f"{step.id!r} would make {step.width}x{step.height}. Ask for a smaller size, or "
                            "change tier in the Account tab.")]
    return []
