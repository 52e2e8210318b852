"""The Img2img tab: an input image, a prompt and a strength."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Img2Img
from ui.common import UIContext, editing_spec, sampling
from ui.controls import image_input, read_image, sampling_controls
from ui.generate import action_buttons, results_column, wire


def build(ctx: UIContext) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("i2i")
            strength = gr.Slider(0, 1, value=0.75, step=0.05, label="Strength (0 keeps the image)",
                                 elem_id="i2i-strength")
            controls = sampling_controls(ctx, "i2i")
            generate, cancel = action_buttons("Generate", "i2i")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("i2i")

    def make_spec(user, path, strength_value, *values):
        params = Img2Img(strength=strength_value, **sampling(*values))
        return editing_spec(ctx.service, user, params, read_image(path))

    wire(ctx, generate, cancel, [image, strength, *controls], make_spec, gallery, summary, info)
    return {"image": image}
