"""The interpolate node: raise a video's frame rate 2 or 4 times by making frames between each pair, with
optical flow or a learned interpolator model from the catalogue."""
from __future__ import annotations

import math

from pipelines.facts import Made
from pipelines.infotext import VERSION, line
from pipelines.node import NodeKind, StepKind
from pipelines.plan import InterpolateStep
from pipelines.spec import INTERPOLATORS, Interpolate

MAX_VIDEO_FPS = 120          # what the MP4 writer accepts


def compile_interpolate(compiler, node, inputs, check, request):
    p: Interpolate = node.params
    video = inputs["video"]
    factor = compiler.checked(p, "factor", check)
    method = compiler.checked(p, "method", check)
    if check.problems:
        return None
    model = compiler.ref(compiler.models[method], check, "method") if method not in INTERPOLATORS else None
    frames = (video.frames - 1) * factor + 1
    fps = video.fps * factor
    limits = compiler.limits
    if frames > limits.max_frames:
        check.fail("too_many_frames", "factor", f"x{factor} makes {frames} frames from {video.frames}; a video "
                   f"may have {limits.max_frames}. Use a smaller factor or a shorter video.")
    if fps > MAX_VIDEO_FPS:
        check.fail("fps_out_of_range", "factor", f"x{factor} makes {fps:g} fps from {video.fps:g}; the most is "
                   f"{MAX_VIDEO_FPS}. Use a smaller factor.")
    if check.problems:
        return None
    step = InterpolateStep(id=node.id, inputs=(("video", node.link("video").node),), width=video.width,
                           height=video.height, factor=factor, method=method, model=model, frames=frames,
                           fps=fps, seeds=tuple(range(video.count)))
    return step, Made(video.count, video.width, video.height, frames=frames, fps=fps)


def infotext(step: InterpolateStep, index: int) -> str:
    return line({"Frame interpolation": f"{step.method} x{step.factor}", "Video frames": step.frames,
                 "FPS": f"{step.fps:g}", "Size": f"{step.width}x{step.height}", "Version": VERSION})


def price(step: InterpolateStep, prices) -> float:
    """`interpolated_frame` per frame it adds, rounded up to half credits, per video."""
    added = step.frames - (step.frames - 1) // step.factor - 1
    return math.ceil(prices.interpolated_frame * added * 2) / 2 * step.video_count


INTERPOLATE = NodeKind(params=Interpolate, compile=compile_interpolate,
                       steps=(StepKind(type=InterpolateStep, infotext=infotext, price=price,
                                       read_back=lambda step: Interpolate(factor=step.factor, method=step.method)),))
