"""What the denoising node kinds share: their plan links, the sizes they round to, and how their steps read
back as requests. Pure: no torch."""
from __future__ import annotations

from pipelines.plan import DiffusionStep, Step
from pipelines.spec import Node


def links(node: Node, *names: str) -> tuple[tuple[str, str], ...]:
    """The plan's (input name, step id) pairs for those of `names` that are connected."""
    return tuple((name, node.link(name).node) for name in names if node.link(name) is not None)


def ceil_to(value: int, multiple: int) -> int:
    """`value` rounded up to a multiple of `multiple`."""
    return -(-value // multiple) * multiple


def request_seed(step: Step) -> int:
    """The seed the request gave: its first image's (image k has seed + k); -1 for a step with none."""
    seeds = getattr(step, "seeds", ())
    return seeds[0] if seeds else -1


def sampling_params(step: DiffusionStep) -> dict:
    """The Sampling fields of a diffusion step, as the request that made it gave them."""
    return {"prompt": step.prompt, "negative_prompt": step.negative_prompt, "model": step.model.id,
            "steps": step.steps, "cfg_scale": step.cfg_scale, "sampler": step.sampler, "schedule": step.schedule,
            "seed": request_seed(step), "batch_size": step.per_input, "style": "",
            "loras": tuple((name, weight) for name, _, weight, _ in step.loras)}


def control_params(step) -> dict:
    """The Control fields of a step that a ControlNet may steer, as the request gave them."""
    if step.control_model is None:
        return {}
    return {"control_model": step.control_model.id, "control_scale": step.control_scale,
            "control_start": step.control_start, "control_end": step.control_end}
