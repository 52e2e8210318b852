"""What the txt2vid and img2vid nodes make on a video family's own pipeline (Wan, LTX-2; `pipelines.families`):
one `VideoDiffusionStep`, with its price, infotext and read-back. Pure: no torch."""
from __future__ import annotations

from pipelines.checks import whole
from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import StepKind
from pipelines.nodes.common import links, request_seed, sampling_params
from pipelines.plan import VideoDiffusionStep
from pipelines.pricing import video_price
from pipelines.spec import Img2Vid, Txt2Vid


def compile_family_video(compiler, node, p: Txt2Vid, check, task: str, image: Made | None = None):
    """The step for `task` ("txt2vid", or "img2vid" from `image`) on the family of `p.model`; `p` carries the
    node's parameters as a Txt2Vid (see `as_txt2vid` for img2vid's)."""
    common = compiler.sampling(p, check, need_prompt=image is None, task=task)
    if common is None:
        return None
    model = common.pop("entry")
    family = compiler.family(model)
    width = compiler.side("width", model.width if p.width is None else p.width, check, model)
    height = compiler.side("height", model.height if p.height is None else p.height, check, model)
    frames, fps = compiler.frames_and_fps(p, model, check)
    if frames is not None and (problem := family.frames_error(frames)) is not None:
        check.fail("frames_rule", "frames", problem)
    compiler.pixels(width, height, check)
    batch = common.pop("batch")
    if check.problems:
        return None
    count = image.count * batch if image is not None else batch
    step = VideoDiffusionStep(id=node.id, inputs=links(node, "image"), width=width, height=height, frames=frames,
                              fps=float(fps), seeds=compiler.seeds(common.pop("seed"), count),
                              per_input=batch if image is not None else 1, **common)
    return step, Made(count, width, height, frames=frames, fps=float(fps))


def as_txt2vid(p: Img2Vid, check) -> Txt2Vid:
    """An img2vid request on a Wan or LTX-2 model as the Txt2Vid parameters its step is compiled from; the
    parameters only SVD reads are refused when they are set."""
    svd_only = {"motion_bucket_id": 127, "noise_aug_strength": 0.02, "min_cfg_scale": 1.0, "decode_chunk_size": None}
    for name, default in svd_only.items():
        if getattr(p, name) != default:
            check.fail("svd_only", name, f"{name} is Stable Video Diffusion's; {p.model!r} animates the image as the "
                       "prompt says, so leave it out.")
    return Txt2Vid(prompt=p.prompt, negative_prompt=p.negative_prompt, model=p.model, steps=p.steps,
                   cfg_scale=p.cfg_scale, seed=p.seed, width=p.width, height=p.height, frames=p.frames, fps=p.fps)


def read_back(step: VideoDiffusionStep) -> Txt2Vid | Img2Vid:
    if step.inputs:
        return Img2Vid(model=step.model.id, width=step.width, height=step.height, frames=step.frames,
                       fps=whole(step.fps), steps=step.steps, cfg_scale=step.cfg_scale, seed=request_seed(step),
                       prompt=step.prompt, negative_prompt=step.negative_prompt)
    return Txt2Vid(**{**sampling_params(step), "batch_size": step.video_count}, width=step.width,
                   height=step.height, frames=step.frames, fps=whole(step.fps))


def infotext(step: VideoDiffusionStep, index: int) -> str:
    return diffusion_infotext(step, index, {"Video frames": step.frames, "FPS": f"{step.fps:g}"})


VIDEO_STEP = StepKind(type=VideoDiffusionStep, read_back=read_back, infotext=infotext, price=video_price)
