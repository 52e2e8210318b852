"""The Outpaint tab: extend the canvas on any side and paint the new area."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Outpaint
from ui.common import UIContext, editing_spec, sampling
from ui.controls import image_input, read_image, sampling_controls
from ui.generate import action_buttons, results_column, wire


def build(ctx: UIContext) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("outpaint")
            with gr.Row():
                sides = [gr.Slider(0, 512, value=0, step=8, label=f"{name.title()} (px)", elem_id=f"outpaint-{name}")
                         for name in ("left", "right", "top", "bottom")]
            with gr.Row():
                feather = gr.Slider(0, 128, value=16, step=1, label="Feather into the old image (px)")
                strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength")
            masked_content = gr.Radio(["fill", "noise", "original"], value="fill", label="New area starts from")
            controls = sampling_controls(ctx, "outpaint")
            generate, cancel = action_buttons("Outpaint", "outpaint")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("outpaint")

    def make_spec(user, path, left, right, top, bottom, feather_value, strength_value, content, *values):
        params = Outpaint(left=int(left), right=int(right), top=int(top), bottom=int(bottom),
                          feather=int(feather_value), strength=strength_value, masked_content=content,
                          **sampling(*values))
        return editing_spec(ctx.service, user, params, read_image(path))

    wire(ctx, generate, cancel, [image, *sides, feather, strength, masked_content, *controls], make_spec,
         gallery, summary, info)
    return {"image": image}
