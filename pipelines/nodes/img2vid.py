"""The img2vid node: one video per input image, with a Stable Video Diffusion model, or with an image-to-video
model's own pipeline (Wan, LTX-2: `family_video`)."""
from __future__ import annotations

from pipelines.checks import whole
from pipelines.facts import Made
from pipelines.infotext import VERSION, line
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import request_seed
from pipelines.nodes.family_video import VIDEO_STEP, as_txt2vid, compile_family_video
from pipelines.plan import Img2VidStep
from pipelines.pricing import video_price
from pipelines.spec import Img2Vid


def compile_img2vid(compiler, node, inputs, check, request):
    p: Img2Vid = node.params
    image = inputs["image"]
    # SVD has its own step (motion bucket, noise augmentation, guidance rising over the frames); the others
    # run their family's image-to-video pipeline with a prompt.
    if isinstance(p.model, str) and p.model in compiler.able("img2vid") and compiler.models[p.model].family != "svd":
        return compile_family_video(compiler, node, as_txt2vid(p, check), check, "img2vid", image)
    if p.prompt or p.negative_prompt:
        check.fail("no_prompt", "prompt" if p.prompt else "negative_prompt", "Stable Video Diffusion reads no "
                   "prompt: it animates the image alone. Leave the prompts empty, or choose a Wan or LTX-2 model.")
    model = compiler.video_model(p.model, "svd", "model", check)
    if model is None:
        return None
    width = compiler.side("width", model.width if p.width is None else p.width, check)
    height = compiler.side("height", model.height if p.height is None else p.height, check)
    frames, fps = compiler.frames_and_fps(p, model, check)
    compiler.pixels(width, height, check)
    steps = compiler.checked(p, "steps", check, model.steps if p.steps is None else p.steps)
    motion = compiler.checked(p, "motion_bucket_id", check)
    noise = compiler.checked(p, "noise_aug_strength", check)
    low = compiler.checked(p, "min_cfg_scale", check)
    high = compiler.checked(p, "cfg_scale", check, model.cfg_scale if p.cfg_scale is None else p.cfg_scale)
    chunk = compiler.chunk(p, frames, check)
    seed = compiler.seed(p, check)
    if check.problems:
        return None
    if image.width * height != image.height * width:
        request.notes.append(f"The image ({image.width}x{image.height}) was resized to the video's "
                             f"{width}x{height}, which changes its shape; give width and height to keep it.")
    step = Img2VidStep(id=node.id, inputs=(("image", node.link("image").node),), width=width, height=height,
                       model=compiler.ref(model, check, "model"), frames=frames, fps=float(fps), steps=steps,
                       motion_bucket_id=motion, noise_aug_strength=noise, min_cfg_scale=low, cfg_scale=high,
                       decode_chunk_size=chunk, seeds=compiler.seeds(seed, image.count))
    return step, Made(image.count, width, height, frames=frames, fps=float(fps))


def read_back(step: Img2VidStep) -> Img2Vid:
    return Img2Vid(model=step.model.id, width=step.width, height=step.height, frames=step.frames,
                   fps=whole(step.fps), motion_bucket_id=step.motion_bucket_id,
                   noise_aug_strength=step.noise_aug_strength, decode_chunk_size=step.decode_chunk_size,
                   steps=step.steps, min_cfg_scale=step.min_cfg_scale, cfg_scale=step.cfg_scale,
                   seed=request_seed(step))


def infotext(step: Img2VidStep, index: int) -> str:
    """As Forge's SVD tab writes it."""
    return line({"Steps": step.steps, "Sampler": "Euler", "Schedule type": "Karras",
                 "CFG scale": f"{step.cfg_scale:g}", "Min CFG scale": f"{step.min_cfg_scale:g}",
                 "Seed": step.seeds[index], "Size": f"{step.width}x{step.height}",
                 "Model hash": step.model.short_hash, "Model": step.model.id, "Video frames": step.frames,
                 "FPS": f"{step.fps:g}", "Motion bucket id": step.motion_bucket_id,
                 "Augmentation level": f"{step.noise_aug_strength:g}", "Version": VERSION})


IMG2VID = NodeKind(params=Img2Vid, compile=compile_img2vid,
                   steps=(StepKind(type=Img2VidStep, read_back=read_back, infotext=infotext, price=video_price),
                          VIDEO_STEP))
