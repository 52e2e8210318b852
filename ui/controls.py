"""Form controls the editing tabs share: the diffusion settings, made from their declarations (`ui.fields`)."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Sampling
from ui.common import UIContext
from ui.fields import fields_of, form_input


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


def sampling_controls(ctx: UIContext, prefix: str, model_id: str = "", params: type = Sampling) -> dict:
    """Prompt, negative prompt, model, then (folded) steps, CFG, sampler, schedule, seed, batch size, style,
    keyed by their names in the spec; `params`: the node's parameters (its models are the ones offered).
    Choosing a model fills in its defaults."""
    m = ctx.model(model_id) if model_id else ctx.default_model
    f = {field.name: field for field in fields_of(params, ctx.catalogue)}
    family = family_choices(ctx, m)
    prompt = form_input(f["prompt"], label="Prompt", lines=2, elem_id=f"{prefix}-prompt")
    negative = form_input(f["negative_prompt"], label="Negative prompt", lines=1, elem_id=f"{prefix}-negative",
                          **family["negative_prompt"])
    model = form_input(f["model"], label="Model", value=m.id, elem_id=f"{prefix}-model")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            steps = form_input(f["steps"], label="Steps", value=m.steps, elem_id=f"{prefix}-steps")
            cfg = form_input(f["cfg_scale"], step=0.5, **family["cfg_scale"])
        with gr.Row():
            sampler = form_input(f["sampler"], label="Sampler", **family["sampler"])
            schedule = form_input(f["schedule"], label="Schedule", **family["schedule"])
        with gr.Row():
            seed = form_input(f["seed"], label="Seed (-1 = random)", elem_id=f"{prefix}-seed")
            batch = form_input(f["batch_size"], label="Batch size")
            style = form_input(f["style"], label="Style", value=ctx.styles[0].name if ctx.styles else None)

    def model_defaults(chosen):
        e = ctx.model(chosen)
        return (e.steps, *family_updates(ctx, e))

    model.input(model_defaults, model, [steps, sampler, schedule, cfg, negative], api_visibility="private")
    return {"prompt": prompt, "negative_prompt": negative, "model": model, "steps": steps, "cfg_scale": cfg,
            "sampler": sampler, "schedule": schedule, "seed": seed, "batch_size": batch, "style": style}


def image_input(prefix: str) -> gr.Image:
    """An image to work on, dropped, pasted or sent from the Gallery (elem_id PREFIX-image)."""
    return gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"], height=320,
                    elem_id=f"{prefix}-image")


def read_image(path: str | None, what: str = "an image",
               hint: str = "drop a file, paste, or use Send to from the Gallery") -> bytes:
    """The bytes of the file at `path`, or a message saying `what` is missing and how to give it."""
    if not path:
        raise gr.Error(f"Add {what} first ({hint}).")
    with open(path, "rb") as f:
        return f.read()
