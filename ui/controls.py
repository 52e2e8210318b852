"""Form controls the generating tabs share: the diffusion settings, made from their declarations (`ui.fields`),
the seed box with its ♻ and 🎲 buttons, and the size presets."""
from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr

from pipelines.spec import Sampling
from ui.common import UIContext
from ui.fields import Field, fields_of, form_input
from ui.image_upload import ImageUpload

QUIET = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
# The size presets, as width:height, in the order the Advanced tab lists them.
ASPECTS = {"1:1": (1, 1), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9), "9:16": (9, 16), "4:3": (4, 3),
           "3:4": (3, 4)}


@dataclass(frozen=True)
class SeedInput:
    """A seed box (elem_id PREFIX-seed) with ♻ (PREFIX-seed-reuse: the seed of the result shown) and 🎲
    (PREFIX-seed-random: a new random seed each run, -1) beside it."""

    box: gr.components.Component
    reuse: gr.Button
    dice: gr.Button

    def reuse_from(self, info: gr.JSON) -> None:
        """Make ♻ put the first seed of `info` (a results column's details, which list the `seeds`) in the box."""
        self.reuse.click(last_seed, info, self.box, **QUIET)


def last_seed(info: dict | None):
    """The first seed of a result's info, or (with a warning) no change when no result with a seed is shown."""
    seeds = [seed for seed in (info or {}).get("seeds") or [] if seed is not None]
    if not seeds:
        gr.Warning("No result with a seed yet: ♻ puts the seed of the result shown here into the seed box.")
        return gr.update()
    return seeds[0]


def seed_input(field: Field, prefix: str, **props) -> SeedInput:
    """The seed box for `field` (`props` go to `form_input`) with ♻ and 🎲 beside it; 🎲 is wired here, ♻ by
    `SeedInput.reuse_from` once the results column exists."""
    # A row of its own: beside other controls the buttons wrap under the box on a narrow column. Each says
    # what it does in a word too, for browsers without an emoji font.
    with gr.Row(equal_height=True):
        box = form_input(field, elem_id=f"{prefix}-seed", scale=3, min_width=120, **props)
        reuse = gr.Button("♻ Reuse", size="sm", scale=1, min_width=80, elem_id=f"{prefix}-seed-reuse")
        dice = gr.Button("🎲 Random", size="sm", scale=1, min_width=80, elem_id=f"{prefix}-seed-random")
    dice.click(lambda: -1, None, box, **QUIET)
    return SeedInput(box, reuse, dice)


def preset_size(aspect: str, width: int, height: int, multiple: int, low: int, high: int) -> tuple[int, int]:
    """A size of `aspect` (a key of ASPECTS) with about the pixels of width × height (the model's native size),
    each side a multiple of `multiple` within [low, high]; the whole size scales up or down to fit rather than
    one side being cut, so the ratio holds."""
    w_ratio, h_ratio = ASPECTS[aspect]
    w = math.sqrt(width * height * w_ratio / h_ratio)
    h = w * h_ratio / w_ratio
    scale = low / min(w, h) if min(w, h) < low else high / max(w, h) if max(w, h) > high else 1.0
    floor = math.ceil(low / multiple) * multiple

    def side(x: float) -> int:
        return min(max(floor, round(x * scale / multiple) * multiple), high // multiple * multiple)
    return side(w), side(h)


def preset_sizes(ctx: UIContext, entry) -> dict[str, tuple[int, int]]:
    """The size of each of ASPECTS for model `entry`: at its native size and its family's size multiple,
    within the server's limits (`preset_size`)."""
    multiple = ctx.catalogue.family(entry).size_multiple
    limits = ctx.catalogue.limits
    return {name: preset_size(name, entry.width, entry.height, multiple, limits.min_side, limits.max_side)
            for name in ASPECTS}


def preset_choices(ctx: UIContext, entry) -> list[tuple[str, str]]:
    """`preset_sizes` as a dropdown's (label, aspect) choices: ("3:2 · 768×512", "3:2")."""
    return [(f"{name} · {w}×{h}", name) for name, (w, h) in preset_sizes(ctx, entry).items()]


def offered_sampling(ctx: UIContext):
    """For `png_parameters`: the sampler and schedule choices of the model a form has chosen (its values by
    name), or none to check against when it has no model."""
    def offered(values: dict) -> dict:
        if not values.get("model"):
            return {}
        samplers, schedules = ctx.catalogue.sampling_choices(ctx.model(values["model"]))
        return {"sampler": tuple(samplers), "schedule": tuple(schedules)}
    return offered


def family_choices(ctx: UIContext, entry) -> dict:
    """What the sampling controls offer on `entry`'s family, as keyword arguments by control name: the
    samplers and schedules that apply, what its guidance is called, and whether it reads a negative prompt."""
    family = ctx.catalogue.family(entry)
    samplers, schedules = ctx.catalogue.sampling_choices(entry)
    guidance = {"distilled": "Distilled guidance", "true_cfg": "True CFG scale"}.get(family.guidance, "CFG scale")
    return {"sampler": {"choices": list(samplers), "value": entry.sampler},
            "schedule": {"choices": list(schedules), "value": entry.schedule},
            "cfg_scale": {"label": guidance, "value": entry.cfg_scale},
            "negative_prompt": {"interactive": family.negative_prompt,
                                "placeholder": "" if family.negative_prompt else
                                f"{family.label} models read no negative prompt"}}


def family_updates(ctx: UIContext, entry) -> tuple:
    """`family_choices` as updates of the sampler, schedule, CFG and negative prompt controls, in that order
    (the negative prompt emptied where the family reads none)."""
    chosen = family_choices(ctx, entry)
    negative = chosen["negative_prompt"]
    return (gr.update(**chosen["sampler"]), gr.update(**chosen["schedule"]), gr.update(**chosen["cfg_scale"]),
            gr.update(**negative) if negative["interactive"] else gr.update(value="", **negative))


def sampling_controls(ctx: UIContext, prefix: str, model_id: str = "",
                      params: type = Sampling) -> tuple[dict, SeedInput]:
    """Prompt, negative prompt, model, then (folded) steps, CFG, sampler, schedule, seed (with ♻ and 🎲),
    batch size, style, keyed by their names in the spec; `params`: the node's parameters (its models are the
    ones offered). Choosing a model fills in its defaults. Returns the controls and the seed's SeedInput,
    whose ♻ the tab wires to its results (`SeedInput.reuse_from`)."""
    m = ctx.model(model_id) if model_id else ctx.default_model
    f = {field.name: field for field in fields_of(params, ctx.catalogue)}
    family = family_choices(ctx, m)
    prompt = form_input(f["prompt"], label="Prompt", lines=2, elem_id=f"{prefix}-prompt")
    negative = form_input(f["negative_prompt"], label="Negative prompt", lines=1, elem_id=f"{prefix}-negative",
                          **family["negative_prompt"])
    model = form_input(f["model"], label="Model", value=m.id, elem_id=f"{prefix}-model")
    with gr.Accordion("Sampling", open=False, elem_id=f"{prefix}-sampling"):
        with gr.Row():
            steps = form_input(f["steps"], label="Steps", value=m.steps, elem_id=f"{prefix}-steps")
            cfg = form_input(f["cfg_scale"], step=0.5, elem_id=f"{prefix}-cfg", **family["cfg_scale"])
        with gr.Row():
            sampler = form_input(f["sampler"], label="Sampler", elem_id=f"{prefix}-sampler", **family["sampler"])
            schedule = form_input(f["schedule"], label="Schedule", elem_id=f"{prefix}-schedule",
                                  **family["schedule"])
        seed = seed_input(f["seed"], prefix, label="Seed (-1 = random)")
        with gr.Row():
            batch = form_input(f["batch_size"], label="Batch size")
            style = form_input(f["style"], label="Style", value=ctx.styles[0].name if ctx.styles else None)

    def model_defaults(chosen):
        e = ctx.model(chosen)
        return (e.steps, *family_updates(ctx, e))

    model.input(model_defaults, model, [steps, sampler, schedule, cfg, negative], api_visibility="private")
    return {"prompt": prompt, "negative_prompt": negative, "model": model, "steps": steps, "cfg_scale": cfg,
            "sampler": sampler, "schedule": schedule, "seed": seed.box, "batch_size": batch, "style": style}, seed


def image_input(prefix: str) -> gr.Image:
    """An image to work on, dropped, pasted or sent from the Gallery (elem_id PREFIX-image)."""
    return ImageUpload(label="Image", type="filepath", sources=["upload", "clipboard"], height=320,
                    elem_id=f"{prefix}-image")


def read_image(path: str | None, what: str = "an image",
               hint: str = "drop a file, paste, or use Send to from the Gallery") -> bytes:
    """The bytes of the file at `path`, or a message saying `what` is missing and how to give it."""
    if not path:
        raise gr.Error(f"Add {what} first ({hint}).")
    with open(path, "rb") as f:
        return f.read()
