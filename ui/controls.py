"""Form controls the editing tabs share: the diffusion settings, in the order `ui.common.sampling` takes."""
from __future__ import annotations

import gradio as gr

from ui.common import UIContext


def sampling_controls(ctx: UIContext, prefix: str, model_id: str = "") -> list:
    """Prompt, negative prompt, model, then (folded) steps, CFG, sampler, schedule, seed, batch size, style.
    Choosing a model fills in its defaults."""
    m = ctx.model(model_id) if model_id else ctx.default_model
    prompt = gr.Textbox(label="Prompt", lines=2, elem_id=f"{prefix}-prompt")
    negative = gr.Textbox(label="Negative prompt", lines=1, elem_id=f"{prefix}-negative")
    model = gr.Dropdown(ctx.generators, value=m.id, label="Model", elem_id=f"{prefix}-model")
    with gr.Accordion("Sampling", open=False):
        with gr.Row():
            steps = gr.Slider(1, ctx.max_steps, value=m.steps, step=1, label="Steps", elem_id=f"{prefix}-steps")
            cfg = gr.Slider(0, ctx.max_cfg_scale, value=m.cfg_scale, step=0.5, label="CFG scale")
        with gr.Row():
            sampler = gr.Dropdown(list(ctx.samplers), value=m.sampler, label="Sampler")
            schedule = gr.Dropdown(list(ctx.schedules), value=m.schedule, label="Schedule")
        with gr.Row():
            seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)", elem_id=f"{prefix}-seed")
            batch = gr.Slider(1, ctx.max_batch_size, value=1, step=1, label="Batch size")
            style = gr.Dropdown([s.name for s in ctx.styles], value=ctx.styles[0].name if ctx.styles else None,
                                label="Style")

    def model_defaults(chosen):
        e = ctx.model(chosen)
        return e.steps, e.cfg_scale, e.sampler, e.schedule

    model.input(model_defaults, model, [steps, cfg, sampler, schedule], api_visibility="private")
    return [prompt, negative, model, steps, cfg, sampler, schedule, seed, batch, style]


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
