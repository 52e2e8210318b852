"""The txt2vid node: a text-to-video model's own pipeline (Wan, LTX-2: `family_video`), or AnimateDiff, a motion
adapter animating an SD1.5-family model; one video per batch entry."""
from __future__ import annotations

import dataclasses

from pipelines.checks import whole
from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import sampling_params
from pipelines.nodes.family_video import VIDEO_STEP, compile_family_video
from pipelines.plan import Txt2VidStep
from pipelines.pricing import video_price
from pipelines.spec import Txt2Vid


def compile_txt2vid(compiler, node, inputs, check, request):
    p: Txt2Vid = node.params
    if isinstance(p.model, str) and p.model in compiler.able("txt2vid"):
        if p.motion_adapter:
            check.fail("not_animated", "motion_adapter", f"{p.model!r} makes videos itself; leave motion_adapter "
                       "empty (AnimateDiff's adapters animate SD1.5-family models).")
        return compile_family_video(compiler, node, p, check, "txt2vid")
    adapter = compiler.video_model(p.motion_adapter, "animatediff", "motion_adapter", check)
    if adapter is None:
        return None
    # The adapter's defaults (steps, guidance, sampler) suit its motion modules better than the image
    # model's, so they stand in for the ones the request leaves out.
    p = dataclasses.replace(p, steps=adapter.steps if p.steps is None else p.steps,
                            cfg_scale=adapter.cfg_scale if p.cfg_scale is None else p.cfg_scale,
                            sampler=p.sampler or adapter.sampler, schedule=p.schedule or adapter.schedule)
    common = compiler.sampling(p, check, need_prompt=True)
    if common is None:
        return None
    model = common.pop("entry")
    if model.family != adapter.base_family:
        check.fail("wrong_model", "model", f"Motion adapter {adapter.id!r} animates {adapter.base_family} models; "
                   f"{model.id!r} is {model.family}. Choose one of "
                   f"{sorted(m.id for m in compiler.models.values() if m.family == adapter.base_family)}.")
    width = compiler.side("width", adapter.width if p.width is None else p.width, check)
    height = compiler.side("height", adapter.height if p.height is None else p.height, check)
    frames, fps = compiler.frames_and_fps(p, adapter, check)
    compiler.pixels(width, height, check)
    chunk = compiler.chunk(p, frames, check)
    batch = common.pop("batch")
    if check.problems:
        return None
    motion_adapter = compiler.ref(adapter, check, "motion_adapter")
    step = Txt2VidStep(id=node.id, width=width, height=height, motion_adapter=motion_adapter, frames=frames,
                       fps=float(fps), decode_chunk_size=chunk, seeds=compiler.seeds(common.pop("seed"), batch),
                       **common)
    return step, Made(batch, width, height, frames=frames, fps=float(fps))


def read_back(step: Txt2VidStep) -> Txt2Vid:
    """Its batch is its number of videos (its per_input stays 1)."""
    return Txt2Vid(**{**sampling_params(step), "batch_size": step.video_count}, motion_adapter=step.motion_adapter.id,
                   width=step.width, height=step.height, frames=step.frames, fps=whole(step.fps),
                   decode_chunk_size=step.decode_chunk_size)


def infotext(step: Txt2VidStep, index: int) -> str:
    """The denoising keys, and AnimateDiff's as sd-webui-animatediff writes them."""
    adapter = step.motion_adapter
    return diffusion_infotext(step, index, {"AnimateDiff": f"model: {adapter.id} [{adapter.short_hash[:8]}], "
                                                           f"video_length: {step.frames}, fps: {step.fps:g}"})


TXT2VID = NodeKind(params=Txt2Vid, compile=compile_txt2vid,
                   steps=(StepKind(type=Txt2VidStep, read_back=read_back, infotext=infotext, price=video_price),
                          VIDEO_STEP))
