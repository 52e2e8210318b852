"""The Edit tab: an input image and an instruction ("make the sky stormy") for a model trained to edit."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Edit
from ui.common import UIContext, node_request
from ui.controls import image_input, offered_sampling, read_image, sampling_controls
from ui.generate import priced_action_buttons, results_column, wire_image_tab
from ui.png_parameters import parameters_offer


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (the tab's select)."""
    editors = ctx.catalogue.able("edit")
    with gr.Row():
        with gr.Column(scale=3):
            if not editors:
                gr.Markdown("No model that edits is configured: add a FLUX.1 Kontext (family \"flux1\") or a "
                            "Qwen-Image-Edit (family \"qwen-image-edit\") model to `configs/models.toml`.",
                            elem_id="edit-missing")
            image = image_input("edit")
            offer = parameters_offer("edit")
            controls, seed = sampling_controls(ctx, "edit", editors[0] if editors else "", params=Edit)
            generate, cancel, price = priced_action_buttons("Edit", "edit")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("edit")

    def make_spec(user, path, *values):
        return node_request(ctx.service, user, Edit, dict(zip(controls, values)), image=read_image(path))

    inputs = [image, *controls.values()]
    wire_image_tab(ctx, generate, cancel, price, inputs, make_spec, gallery, summary, info, price_on)
    seed.reuse_from(info)
    offer.wire(image, controls, offered_sampling(ctx))
    return {"image": image, "settings": controls}
