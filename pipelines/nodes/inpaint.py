"""The inpaint node: repaint where a mask is white (AUTOMATIC1111's inpaint), optionally on a crop around the
mask at the model's size ("inpaint only masked")."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import sampling_params
from pipelines.plan import InpaintStep
from pipelines.pricing import denoising_price
from pipelines.spec import Inpaint


def compile_inpaint(compiler, node, inputs, check, request):
    p: Inpaint = node.params
    image, mask = inputs["image"], inputs["mask"]
    common = compiler.sampling(p, check, need_prompt=False, inpaints=True)
    strength, blur, invert, full_res, padding, content = (
        compiler.checked(p, name, check) for name in ("strength", "mask_blur", "invert_mask", "full_res",
                                                      "full_res_padding", "masked_content"))
    if mask.count not in (1, image.count):
        check.fail("mask_count", "mask", f"Give one mask, or one per image ({image.count}); got {mask.count}.")
    if common is not None:
        compiler.denoises(common.get("steps"), strength, check)
    if mask.mask_empty and invert is False:
        check.fail("empty_mask", "mask", "The mask is all black, so there is nothing to repaint. Paint the "
                   "area to change in white (or tick invert_mask to repaint everything else).")
    if common is None:
        return None
    model = common.pop("entry")
    if (mask.width, mask.height) != (image.width, image.height):
        request.notes.append(f"The mask ({mask.width}x{mask.height}) was resized to the image "
                             f"({image.width}x{image.height}).")
    if full_res:
        work = (model.width, model.height)
    else:
        work = (compiler.floor_size(image.width, model), compiler.floor_size(image.height, model))
        compiler.side("width", work[0], check, model)
        compiler.side("height", work[1], check, model)
    compiler.pixels(image.width, image.height, check)
    batch = common.pop("batch")
    if check.problems:
        return None
    step = InpaintStep(id=node.id, inputs=(("image", node.link("image").node), ("mask", node.link("mask").node)),
                       width=image.width, height=image.height, work_width=work[0], work_height=work[1],
                       strength=strength, mask_blur=blur, invert_mask=invert, full_res=full_res,
                       full_res_padding=padding, masked_content=content,
                       seeds=compiler.seeds(common.pop("seed"), image.count * batch), per_input=batch, **common)
    return step, Made(image.count * batch, image.width, image.height)


def read_back(step: InpaintStep) -> Inpaint:
    return Inpaint(**sampling_params(step), strength=step.strength, mask_blur=step.mask_blur,
                   invert_mask=step.invert_mask, full_res=step.full_res, full_res_padding=step.full_res_padding,
                   masked_content=step.masked_content)


def infotext(step: InpaintStep, index: int) -> str:
    return diffusion_infotext(step, index, {
        "Denoising strength": f"{step.strength:g}", "Mask blur": step.mask_blur,
        "Mask mode": "Inpaint not masked" if step.invert_mask else None,
        "Inpaint area": "Only masked" if step.full_res else None,
        "Masked area padding": step.full_res_padding if step.full_res else None,
        "Masked content": step.masked_content})


def price(step: InpaintStep, prices) -> float:
    """The model works at `work_width` x `work_height` (the crop's size with full_res)."""
    return denoising_price(step, prices, step.work_width, step.work_height)


INPAINT = NodeKind(params=Inpaint, compile=compile_inpaint,
                   steps=(StepKind(type=InpaintStep, read_back=read_back, infotext=infotext, price=price),))
