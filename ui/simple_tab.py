"""The Simple tab: a prompt, a style, an aspect ratio and a Generate button."""
from __future__ import annotations

import math

import gradio as gr

from pipelines.spec import Txt2Img
from ui.common import UIContext, node_request
from ui.fields import field_of, form_input
from ui.generate import priced_action_buttons, results_column, wire, wire_price
from ui.png_parameters import nearest_aspect, png_info_drop, wire_drop

ASPECT_RATIOS = {"1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "16:9": (16, 9), "9:16": (9, 16), "3:2": (3, 2),
                 "2:3": (2, 3)}


def size_for(aspect: str, width: int, height: int) -> tuple[int, int]:
    """A size with the model's default pixel count and the chosen aspect ratio, in multiples of 8."""
    w_ratio, h_ratio = ASPECT_RATIOS[aspect]
    area = width * height
    w = math.sqrt(area * w_ratio / h_ratio)
    return max(64, round(w / 8) * 8), max(64, round(area / w / 8) * 8)


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (page load, tab select)."""
    model = ctx.default_model
    if model.is_demo:
        gr.Markdown(f"Using the **demo model** `{model.id}`: tiny and randomly initialised, so pictures look "
                    "like coloured noise. Add a real model to `configs/models.toml` for real pictures.",
                    elem_id="demo-banner")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, placeholder="a lighthouse at dusk, oil painting",
                                elem_id="simple-prompt")
            with gr.Row():
                style = form_input(field_of(Txt2Img, "style", ctx.catalogue), label="Style",
                                   value=ctx.styles[0].name if ctx.styles else None, elem_id="simple-style")
                aspect = gr.Radio(list(ASPECT_RATIOS), value="1:1", label="Aspect ratio", elem_id="simple-aspect")
            generate, cancel, price = priced_action_buttons("Generate", "simple")
            png_info = png_info_drop("simple")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("simple")

    def make_spec(user, prompt_text, style_name, aspect_name):
        width, height = size_for(aspect_name, model.width, model.height)
        return node_request(ctx.service, user, Txt2Img, {"prompt": prompt_text, "model": model.id, "width": width,
                                                         "height": height, "style": style_name})

    inputs = [prompt, style, aspect]
    ran = wire(ctx, generate, cancel, inputs, make_spec, gallery, summary, info)
    # The prompt matters to the price only through <lora:...> tags, so it is priced when left, not per key.
    wire_price(ctx, price, inputs, make_spec, [prompt.blur, style.change, aspect.change, *price_on], after=(ran,))

    def with_aspect(values: dict) -> dict:
        """The Simple tab takes no size: the aspect ratio nearest the PNG's stands for it."""
        if values.get("width") and values.get("height"):
            return {**values, "aspect": nearest_aspect(values["width"], values["height"], ASPECT_RATIOS)}
        return values

    wire_drop(png_info, {"prompt": prompt, "style": style, "aspect": aspect}, derive=with_aspect)
    return {"prompt": prompt, "style": style, "aspect": aspect, "generate": generate, "gallery": gallery,
            "price": price}
