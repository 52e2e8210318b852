"""The img2img node: each input image repainted by `strength`, optionally steered by a ControlNet."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import control_params, links, sampling_params
from pipelines.plan import Img2ImgStep
from pipelines.pricing import denoising_price
from pipelines.spec import Img2Img


def compile_img2img(compiler, node, inputs, check, request):
    p: Img2Img = node.params
    image = inputs["image"]
    common = compiler.sampling(p, check, need_prompt=False, task="img2img")
    strength = compiler.checked(p, "strength", check)
    if common is None:
        return None
    compiler.denoises(common.get("steps"), strength, check)
    model = common.pop("entry")
    width, height = compiler.size_of(p, image, model, check)
    batch = common.pop("batch")
    guidance = compiler.control(p, inputs.get("control"), model, image.count, check, task="img2img")
    if check.problems:
        return None
    step = Img2ImgStep(id=node.id, inputs=links(node, "image", "control"), width=width, height=height,
                       strength=strength, seeds=compiler.seeds(common.pop("seed"), image.count * batch),
                       per_input=batch, **guidance, **common)
    return step, Made(image.count * batch, width, height)


def read_back(step: Img2ImgStep) -> Img2Img:
    return Img2Img(**sampling_params(step), **control_params(step), strength=step.strength, width=step.width,
                   height=step.height)


IMG2IMG = NodeKind(params=Img2Img, compile=compile_img2img,
                   steps=(StepKind(type=Img2ImgStep, read_back=read_back,
                                   infotext=lambda step, index: diffusion_infotext(
                                       step, index, {"Denoising strength": f"{step.strength:g}"}),
                                   price=lambda step, prices: denoising_price(step, prices, step.width,
                                                                              step.height)),))
