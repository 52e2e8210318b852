"""The Inpaint tab: paint a mask over an image with the brush; the white strokes are repainted."""
from __future__ import annotations

import io

import gradio as gr

from pipelines import image_ops
from pipelines.spec import Inpaint
from ui.common import UIContext, node_request
from ui.controls import offered_sampling, sampling_controls
from ui.fields import fields_of, form_input
from ui.generate import priced_action_buttons, results_column, wire_image_tab
from ui.png_parameters import png_info_drop, wire_drop

MASKED_CONTENT = ["original", "fill", "noise"]      # the declared choices, in the order the form shows them


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls; `price_on`: more events that refresh the price (the tab's select)."""
    f = {field.name: field for field in fields_of(Inpaint, ctx.catalogue)}
    with gr.Row():
        with gr.Column(scale=3):
            editor = gr.ImageEditor(label="Image and mask (paint what to repaint)", type="pil", image_mode="RGBA",
                                    brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size=24),
                                    eraser=gr.Eraser(default_size=24), layers=False, height=420,
                                    sources=["upload", "clipboard"], elem_id="inpaint-editor")
            # The editor hands over its canvas, not the file dropped on it, so a PNG's parameters come through
            # a drop of their own.
            png_info = png_info_drop("inpaint")
            with gr.Row():
                strength = form_input(f["strength"], step=0.05, label="Strength", elem_id="inpaint-strength")
                mask_blur = form_input(f["mask_blur"], maximum=64, label="Mask blur (feather, px)",
                                       elem_id="inpaint-blur")
            with gr.Row():
                invert = form_input(f["invert_mask"], label="Invert mask (repaint the unpainted area)")
                full_res = form_input(f["full_res"], label="Only masked area, at full resolution")
                padding = form_input(f["full_res_padding"], maximum=256, step=4, label="Padding around the mask (px)")
            masked_content = gr.Radio(MASKED_CONTENT, value=f["masked_content"].default,
                                      label="Masked content starts from")
            controls, seed = sampling_controls(ctx, "inpaint", params=Inpaint)
            generate, cancel, price = priced_action_buttons("Inpaint", "inpaint")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("inpaint")

    names = ["strength", "mask_blur", "invert_mask", "full_res", "full_res_padding", "masked_content", *controls]

    def make_spec(user, value, *values):
        chosen = dict(zip(names, values))
        if not value or value.get("background") is None:
            raise gr.Error("Add an image first, then paint over the part to repaint.")
        background = value["background"]
        mask = image_ops.mask_from_layers(background.size, [layer for layer in value.get("layers") or [] if layer])
        if image_ops.is_empty(mask) and not chosen["invert_mask"]:
            raise gr.Error("Nothing is painted yet: paint over the part of the image to repaint (white brush).")
        return node_request(ctx.service, user, Inpaint, chosen, image=png_bytes(background), mask=png_bytes(mask))

    inputs = [editor, strength, mask_blur, invert, full_res, padding, masked_content, *controls.values()]
    wire_image_tab(ctx, generate, cancel, price, inputs, make_spec, gallery, summary, info, price_on)
    seed.reuse_from(info)
    wire_drop(png_info, controls, offered_sampling(ctx))
    return {"image": editor, "settings": controls}
