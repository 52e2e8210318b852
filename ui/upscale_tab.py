"""The Upscale tab: enlarge an image with a resampler or an upscaler model."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Upscale
from ui.common import UIContext, node_request
from ui.controls import image_input, read_image, seed_input
from ui.fields import fields_of, form_input
from ui.generate import priced_action_buttons, results_column, wire_image_tab
from ui.png_parameters import parameters_offer


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (the tab's select)."""
    f = {field.name: field for field in fields_of(Upscale, ctx.catalogue)}
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("upscale")
            offer = parameters_offer("upscale")
            with gr.Row():
                scale = form_input(f["scale"], step=0.25, label="Scale", elem_id="upscale-scale")
                upscaler = form_input(f["upscaler"], label="Upscaler", elem_id="upscale-upscaler")
            with gr.Row():
                steps = form_input(f["steps"], value=20, label="Steps (upscaler models)")
                tile = form_input(f["tile_size"], step=32, label="Tile size (px)")
            seed = seed_input(f["seed"], "upscale", label="Seed (-1 = random)")      # a row of its own
            generate, cancel, price = priced_action_buttons("Upscale", "upscale")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("upscale")

    names = ["scale", "upscaler", "steps", "tile_size", "seed"]

    def make_spec(user, path, *values):
        return node_request(ctx.service, user, Upscale, dict(zip(names, values)), image=read_image(path))

    inputs = [image, scale, upscaler, steps, tile, seed.box]
    wire_image_tab(ctx, generate, cancel, price, inputs, make_spec, gallery, summary, info, price_on)
    seed.reuse_from(info)
    offer.wire(image, {"seed": seed.box})       # an upscaler model's steps are not the PNG's
    # Send to carries the seed only: a picture's steps are its diffusion steps, not an upscaler model's.
    return {"image": image, "settings": {"seed": seed.box}}
