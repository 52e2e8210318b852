"""The outpaint node: extend the canvas by `left`, `right`, `top`, `bottom` pixels and paint the new area."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import ceil_to, sampling_params
from pipelines.plan import OutpaintStep
from pipelines.pricing import denoising_price
from pipelines.spec import Outpaint

SIDES = ("left", "right", "top", "bottom")


def compile_outpaint(compiler, node, inputs, check, request):
    p: Outpaint = node.params
    image = inputs["image"]
    common = compiler.sampling(p, check, need_prompt=False, inpaints=True)
    sides = {name: compiler.checked(p, name, check) for name in SIDES}
    feather, strength, content = (compiler.checked(p, name, check) for name in ("feather", "strength",
                                                                                 "masked_content"))
    if all(v == 0 for v in sides.values()):
        check.fail("nothing_to_extend", "left", "left, right, top and bottom are all 0; extend at least one side.")
    if common is None or None in sides.values():
        return None
    compiler.denoises(common.get("steps"), strength, check)
    model = common.pop("entry")
    multiple = compiler.family(model).size_multiple
    width = ceil_to(image.width + sides["left"] + sides["right"], multiple)
    height = ceil_to(image.height + sides["top"] + sides["bottom"], multiple)
    compiler.side("width", width, check, model)
    compiler.side("height", height, check, model)
    compiler.pixels(width, height, check)
    batch = common.pop("batch")
    if check.problems:
        return None
    step = OutpaintStep(id=node.id, inputs=(("image", node.link("image").node),), width=width, height=height,
                        feather=feather, strength=strength, masked_content=content,
                        seeds=compiler.seeds(common.pop("seed"), image.count * batch), per_input=batch,
                        **sides, **common)
    return step, Made(image.count * batch, width, height)


def read_back(step: OutpaintStep) -> Outpaint:
    return Outpaint(**sampling_params(step), left=step.left, right=step.right, top=step.top, bottom=step.bottom,
                    feather=step.feather, strength=step.strength, masked_content=step.masked_content)


def infotext(step: OutpaintStep, index: int) -> str:
    return diffusion_infotext(step, index, {
        "Denoising strength": f"{step.strength:g}",
        "Outpaint": f"left {step.left}, right {step.right}, top {step.top}, bottom {step.bottom}"})


OUTPAINT = NodeKind(params=Outpaint, compile=compile_outpaint,
                    steps=(StepKind(type=OutpaintStep, read_back=read_back, infotext=infotext,
                                    price=lambda step, prices: denoising_price(step, prices, step.width,
                                                                               step.height)),))
