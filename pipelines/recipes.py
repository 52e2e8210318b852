"""A stored plan read back as the request that makes it, so a replay is checked like a new submission.

A recipe (the `atelier` text of a PNG or MP4) holds the compiled plan. Replaying it must pass every rule
a new request passes: the caller's ownership of each input, the tier's limits, the price. `spec_of`
turns a plan back into the WorkflowSpec that compiles to it (concrete seeds, resolved sizes, the
LoRAs by name), and `mismatches` names what a fresh compile of that spec made differently: a model
whose weights are not the recipe's, a LoRA file that changed, or a plan this version would not make.
Pure: no torch.
"""
from __future__ import annotations

import dataclasses

from pipelines.errors import Problem
from pipelines.plan import (CannyStep, ExecutionPlan, Img2ImgStep, Img2VidStep, InpaintStep, InterpolateStep,
                            LoadImageStep, LoadVideoStep, OutpaintStep, Step, Txt2ImgStep, Txt2VidStep, UpscaleStep)
from pipelines.spec import (Canny, Img2Img, Img2Vid, Inpaint, Interpolate, Link, LoadImage, LoadMask, LoadVideo,
                            Node, Outpaint, Txt2Img, Txt2Vid, Upscale, WorkflowSpec)

# The output of each step kind that later steps take, by the spec node kind's name for it.
OUTPUT_NAMES = {"load_image": "image", "load_mask": "mask", "load_video": "video", "img2vid": "video",
                "txt2vid": "video", "interpolate": "video"}       # every other kind: "images"
# Plan fields that only label a step: the prompt already has the style applied.
LABELS = ("style",)


def spec_of(plan: ExecutionPlan) -> WorkflowSpec:
    """The WorkflowSpec whose compile gives `plan` (for the same catalogue, files and inputs). Raises
    ValueError for a step kind it cannot express."""
    kinds = {step.id: _node_kind(step) for step in plan.steps}
    nodes = []
    for step in plan.steps:
        inputs = tuple((name, Link(source, OUTPUT_NAMES.get(kinds[source], "images"))) for name, source in step.inputs)
        nodes.append(Node(step.id, _params(step), inputs))
    return WorkflowSpec(nodes=tuple(nodes))


def mismatches(recipe: ExecutionPlan, compiled: ExecutionPlan) -> list[Problem]:
    """What `compiled` (a fresh compile of `spec_of(recipe)`) does differently from `recipe`, one Problem
    per step field, with what to do about it; [] when they make the same outputs."""
    problems = []
    fresh = {step.id: step for step in compiled.steps}
    for step in recipe.steps:
        theirs, ours = step.to_dict(), fresh[step.id].to_dict()
        for name in sorted(set(theirs) | set(ours)):
            if name in LABELS or theirs.get(name) == ours.get(name):
                continue
            problems.append(_mismatch(step.id, name, theirs.get(name), ours.get(name)))
    return problems


def _mismatch(step_id: str, name: str, theirs, ours) -> Problem:
    where = f"{step_id}.{name}"
    if isinstance(theirs, dict) and isinstance(ours, dict) and theirs.get("id") == ours.get("id"):
        return Problem("model_changed", where,
                       f"The recipe's {name} {theirs['id']!r} had weights {theirs['hash'][:16]}…; this server's "
                       f"{ours['id']!r} has {ours['hash'][:16]}…. Replaying needs the same weights: point "
                       f"{ours['id']!r} in configs/models.toml at them.")
    if name == "loras":
        return Problem("lora_changed", where,
                       f"The recipe's LoRAs {_lora_files(theirs)} differ from this server's {_lora_files(ours)}; "
                       "put the recipe's files in the models/loras folder to replay it.")
    if name == "embeddings":
        return Problem("embedding_changed", where,
                       f"The recipe's embeddings {theirs} differ from this server's {ours}; put the recipe's "
                       "files in the models/embeddings folder to replay it.")
    return Problem("not_replayable", where,
                   f"Step {step_id!r} of the recipe has {name} = {theirs!r}, where this server would make "
                   f"{ours!r} from the same request, so it cannot replay it as it is. Send the request again "
                   "instead (the Gallery's \"Use these settings\").")


def _lora_files(loras) -> list[str]:
    return [f"{name} ({sha[:10]}…)" for name, sha, *_ in loras or ()]


def _node_kind(step: Step) -> str:
    if isinstance(step, LoadImageStep) and step.as_mask:
        return "load_mask"
    return step.kind


def _sampling(step) -> dict:
    """The Sampling fields of a diffusion step, as the request that made it gave them."""
    return {"prompt": step.prompt, "negative_prompt": step.negative_prompt, "model": step.model.id,
            "steps": step.steps, "cfg_scale": step.cfg_scale, "sampler": step.sampler, "schedule": step.schedule,
            "seed": _seed(step), "batch_size": step.per_input, "style": "",
            "loras": tuple((name, weight) for name, _, weight, _ in step.loras)}


def _seed(step) -> int:
    """The seed the request gave: its first image's (image k has seed + k); -1 for a step with none."""
    return step.seeds[0] if step.seeds else -1


def _control(step) -> dict:
    if step.control_model is None:
        return {}
    return {"control_model": step.control_model.id, "control_scale": step.control_scale,
            "control_start": step.control_start, "control_end": step.control_end}


def _whole(value):
    """A count the plan holds as a float (fps) as the whole number a request gives."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _params(step: Step):
    if isinstance(step, LoadImageStep):
        return (LoadMask if step.as_mask else LoadImage)(artifact_id=step.artifact_id)
    if isinstance(step, LoadVideoStep):
        return LoadVideo(artifact_id=step.artifact_id)
    if isinstance(step, Txt2VidStep):          # its batch is its number of videos
        return Txt2Vid(**{**_sampling(step), "batch_size": step.video_count}, motion_adapter=step.motion_adapter.id,
                       width=step.width, height=step.height, frames=step.frames, fps=_whole(step.fps),
                       decode_chunk_size=step.decode_chunk_size)
    if isinstance(step, Txt2ImgStep):
        return Txt2Img(**_sampling(step), **_control(step), width=step.width, height=step.height)
    if isinstance(step, Img2ImgStep):
        return Img2Img(**_sampling(step), **_control(step), strength=step.strength, width=step.width,
                       height=step.height)
    if isinstance(step, InpaintStep):
        return Inpaint(**_sampling(step), strength=step.strength, mask_blur=step.mask_blur,
                       invert_mask=step.invert_mask, full_res=step.full_res, full_res_padding=step.full_res_padding,
                       masked_content=step.masked_content)
    if isinstance(step, OutpaintStep):
        return Outpaint(**_sampling(step), left=step.left, right=step.right, top=step.top, bottom=step.bottom,
                        feather=step.feather, strength=step.strength, masked_content=step.masked_content)
    if isinstance(step, UpscaleStep):
        return Upscale(scale=step.scale, upscaler=step.upscaler, steps=step.steps or None,
                       seed=_seed(step), tile_size=step.tile_size)
    if isinstance(step, CannyStep):
        return Canny(low=step.low, high=step.high)
    if isinstance(step, Img2VidStep):
        return Img2Vid(model=step.model.id, width=step.width, height=step.height, frames=step.frames,
                       fps=_whole(step.fps), motion_bucket_id=step.motion_bucket_id,
                       noise_aug_strength=step.noise_aug_strength, decode_chunk_size=step.decode_chunk_size,
                       steps=step.steps, min_cfg_scale=step.min_cfg_scale, cfg_scale=step.cfg_scale,
                       seed=_seed(step))
    if isinstance(step, InterpolateStep):
        return Interpolate(factor=step.factor, method=step.method)
    raise ValueError(f"a {step.kind} step cannot be read back as a request")


def with_labels(compiled: ExecutionPlan, recipe: ExecutionPlan) -> ExecutionPlan:
    """`compiled` with each step's LABELS as `recipe` has them, so it is the recipe's plan to the byte
    (the same `plan_hash`), priced and noted as a new request."""
    labelled = {step.id: step for step in recipe.steps}
    steps = tuple(dataclasses.replace(step, **{name: getattr(labelled[step.id], name) for name in LABELS
                                               if hasattr(step, name)}) for step in compiled.steps)
    return dataclasses.replace(compiled, steps=steps)
