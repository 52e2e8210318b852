"""The upscale node: enlarge images by `scale` with Lanczos, or with an upscaler model from the catalogue,
which works in tiles and is then resized to the exact scale."""
from __future__ import annotations

from pipelines.facts import Made
from pipelines.infotext import VERSION, line
from pipelines.node import NodeKind, StepKind
from pipelines.nodes.common import request_seed
from pipelines.plan import UpscaleStep
from pipelines.spec import RESAMPLERS, Upscale


def compile_upscale(compiler, node, inputs, check, request):
    p: Upscale = node.params
    image = inputs["image"]
    scale = compiler.checked(p, "scale", check)
    upscaler = compiler.checked(p, "upscaler", check)
    seed = compiler.seed(p, check)
    tile = compiler.checked(p, "tile_size", check)
    entry = compiler.models.get(upscaler) if upscaler not in RESAMPLERS else None
    steps = compiler.checked(p, "steps", check, (entry.steps if entry else 1) if p.steps is None else p.steps)
    if scale is None or upscaler is None or check.problems:
        return None
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    if max(width, height) > compiler.limits.max_side:
        check.fail("too_big", "scale", f"x{scale:g} makes {width}x{height}; the longest side may be "
                   f"{compiler.limits.max_side}. Use a smaller scale.")
    compiler.pixels(width, height, check)
    if check.problems:
        return None
    model = compiler.ref(entry, check, "upscaler") if entry is not None else None
    step = UpscaleStep(id=node.id, inputs=(("image", node.link("image").node),), width=width, height=height,
                       scale=scale, upscaler=upscaler, model=model, seeds=compiler.seeds(seed, image.count),
                       steps=steps if model else 0, tile_size=tile)
    return step, Made(image.count, width, height)


def read_back(step: UpscaleStep) -> Upscale:
    return Upscale(scale=step.scale, upscaler=step.upscaler, steps=step.steps or None, seed=request_seed(step),
                   tile_size=step.tile_size)


def infotext(step: UpscaleStep, index: int) -> str:
    return line({"Postprocess upscale by": f"{step.scale:g}", "Postprocess upscaler": step.upscaler.title(),
                 "Seed": step.seeds[index] if step.model else None, "Steps": step.steps or None,
                 "Tile size": step.tile_size if step.model else None, "Version": VERSION})


def price(step: UpscaleStep, prices) -> float:
    """`upscale` per image with an upscaler model; resizing with Lanczos is free."""
    return prices.upscale * len(step.seeds) if step.model else 0.0


UPSCALE = NodeKind(params=Upscale, compile=compile_upscale,
                   steps=(StepKind(type=UpscaleStep, read_back=read_back, infotext=infotext, price=price),))
