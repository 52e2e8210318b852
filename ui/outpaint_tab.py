"""The Outpaint tab: extend the canvas on any side and paint the new area."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Outpaint
from ui.common import UIContext, node_request
from ui.controls import image_input, offered_sampling, read_image, sampling_controls
from ui.fields import fields_of, form_input
from ui.generate import priced_action_buttons, results_column, wire_image_tab
from ui.png_parameters import parameters_offer


SIDES = ("left", "right", "top", "bottom")


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (the tab's select)."""
    f = {field.name: field for field in fields_of(Outpaint, ctx.catalogue)}
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("outpaint")
            offer = parameters_offer("outpaint")
            with gr.Row():
                sides = [form_input(f[name], maximum=512, step=8, label=f"{name.title()} (px)",
                                    elem_id=f"outpaint-{name}") for name in SIDES]
            with gr.Row():
                feather = form_input(f["feather"], maximum=128, label="Feather into the old image (px)")
                strength = form_input(f["strength"], step=0.05, label="Strength")
            # The declared choices, in the order the form shows them.
            masked_content = gr.Radio(["fill", "noise", "original"], value=f["masked_content"].default,
                                      label="New area starts from")
            controls, seed = sampling_controls(ctx, "outpaint", params=Outpaint)
            generate, cancel, price = priced_action_buttons("Outpaint", "outpaint")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("outpaint")

    names = [*SIDES, "feather", "strength", "masked_content", *controls]

    def make_spec(user, path, *values):
        return node_request(ctx.service, user, Outpaint, dict(zip(names, values)), image=read_image(path))

    inputs = [image, *sides, feather, strength, masked_content, *controls.values()]
    wire_image_tab(ctx, generate, cancel, price, inputs, make_spec, gallery, summary, info, price_on)
    seed.reuse_from(info)
    offer.wire(image, controls, offered_sampling(ctx))
    return {"image": image, "settings": controls}
