"""The Img2img tab: an input image, a prompt and a strength."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Img2Img
from ui.common import UIContext, node_request
from ui.controls import image_input, offered_sampling, read_image, sampling_controls
from ui.fields import field_of, form_input
from ui.generate import priced_action_buttons, results_column, wire_image_tab
from ui.png_parameters import parameters_offer


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (the tab's select)."""
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("i2i")
            offer = parameters_offer("i2i")
            strength = form_input(field_of(Img2Img, "strength", ctx.catalogue), step=0.05,
                                  label="Strength (0 keeps the image)", elem_id="i2i-strength")
            controls, seed = sampling_controls(ctx, "i2i")
            generate, cancel, price = priced_action_buttons("Generate", "i2i")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("i2i")

    names = ["strength", *controls]

    def make_spec(user, path, *values):
        return node_request(ctx.service, user, Img2Img, dict(zip(names, values)), image=read_image(path))

    inputs = [image, strength, *controls.values()]
    wire_image_tab(ctx, generate, cancel, price, inputs, make_spec, gallery, summary, info, price_on)
    seed.reuse_from(info)
    offer.wire(image, controls, offered_sampling(ctx))
    return {"image": image, "settings": controls}
