"""The edit node: each input image edited as the prompt says, by a model whose family declares an "edit"
pipeline (FLUX.1 Kontext, Qwen-Image-Edit)."""
from __future__ import annotations

import dataclasses

from pipelines.facts import Made
from pipelines.infotext import diffusion_infotext
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import links, sampling_params
from pipelines.plan import EditStep
from pipelines.pricing import denoising_price
from pipelines.spec import Edit


def compile_edit(compiler, node, inputs, check, request):
    p: Edit = node.params
    image = inputs["image"]
    if p.model in ("", None):
        editors = compiler.able("edit")
        if not editors:
            check.fail("no_pipeline", "model", "No model that edits is configured; add a FLUX.1 Kontext or a "
                       "Qwen-Image-Edit model to configs/models.toml.")
            return None
        p = dataclasses.replace(p, model=editors[0])
    common = compiler.sampling(p, check, need_prompt=True, task="edit")
    if common is None:
        return None
    model = common.pop("entry")
    width, height = compiler.size_of(p, image, model, check)
    batch = common.pop("batch")
    if check.problems:
        return None
    step = EditStep(id=node.id, inputs=links(node, "image"), width=width, height=height,
                    seeds=compiler.seeds(common.pop("seed"), image.count * batch), per_input=batch, **common)
    return step, Made(image.count * batch, width, height)


def read_back(step: EditStep) -> Edit:
    return Edit(**sampling_params(step), width=step.width, height=step.height)


EDIT = NodeKind(params=Edit, compile=compile_edit,
                steps=(StepKind(type=EditStep, read_back=read_back,
                                infotext=lambda step, index: diffusion_infotext(step, index, {}),
                                price=lambda step, prices: denoising_price(step, prices, step.width, step.height)),))
