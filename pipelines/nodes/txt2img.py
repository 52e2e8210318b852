"""The txt2img node: images from a prompt, optionally steered by a ControlNet from its `control` input."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import control_params, links, sampling_params
from pipelines.plan import Txt2ImgStep
from pipelines.pricing import denoising_price
from pipelines.spec import Txt2Img


def compile_txt2img(compiler, node, inputs, check, request):
    p: Txt2Img = node.params
    common = compiler.sampling(p, check, need_prompt=True)
    if common is None:
        return None
    model = common.pop("entry")
    width = compiler.side("width", model.width if p.width is None else p.width, check, model)
    height = compiler.side("height", model.height if p.height is None else p.height, check, model)
    compiler.pixels(width, height, check)
    batch = common.pop("batch")
    guidance = compiler.control(p, inputs.get("control"), model, 1, check)
    if check.problems:
        return None
    step = Txt2ImgStep(id=node.id, inputs=links(node, "control"), width=width, height=height,
                       seeds=compiler.seeds(common.pop("seed"), batch), per_input=batch, **guidance, **common)
    return step, Made(batch, width, height)


def read_back(step: Txt2ImgStep) -> Txt2Img:
    return Txt2Img(**sampling_params(step), **control_params(step), width=step.width, height=step.height)


TXT2IMG = NodeKind(params=Txt2Img, compile=compile_txt2img,
                   steps=(StepKind(type=Txt2ImgStep, read_back=read_back,
                                   infotext=lambda step, index: diffusion_infotext(step, index, {}),
                                   price=lambda step, prices: denoising_price(step, prices, step.width,
                                                                              step.height)),))
