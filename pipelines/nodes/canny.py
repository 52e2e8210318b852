"""The canny node: edges of images (OpenCV's Canny), white on black, to steer a ControlNet."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import VERSION, line
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import links
from pipelines.plan import CannyStep
from pipelines.spec import Canny


def compile_canny(compiler, node, inputs, check, request):
    image = inputs["image"]
    low = compiler.checked(node.params, "low", check)
    high = compiler.checked(node.params, "high", check)
    if low is not None and high is not None and low > high:
        check.fail("out_of_range", "low", f"low ({low}) must not be above high ({high}).")
    if check.problems:
        return None
    step = CannyStep(id=node.id, inputs=links(node, "image"), width=image.width, height=image.height,
                     low=low, high=high, seeds=tuple(range(image.count)))
    return step, Made(image.count, image.width, image.height)


def infotext(step: CannyStep, index: int) -> str:
    return line({"Preprocessor": "canny", "Threshold A": step.low, "Threshold B": step.high, "Version": VERSION})


CANNY = NodeKind(params=Canny, compile=compile_canny,
                 steps=(StepKind(type=CannyStep, read_back=lambda step: Canny(low=step.low, high=step.high),
                                 infotext=infotext),))
