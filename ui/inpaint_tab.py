"""The Inpaint tab: paint a mask over an image with the brush; the white strokes are repainted."""
from __future__ import annotations

import io

import gradio as gr

from pipelines import image_ops
from pipelines.spec import Inpaint
from ui.common import UIContext, editing_spec, sampling
from ui.controls import sampling_controls
from ui.generate import action_buttons, results_column, wire

MASKED_CONTENT = ["original", "fill", "noise"]


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build(ctx: UIContext) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            editor = gr.ImageEditor(label="Image and mask (paint what to repaint)", type="pil", image_mode="RGBA",
                                    brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size=24),
                                    eraser=gr.Eraser(default_size=24), layers=False, height=420,
                                    sources=["upload", "clipboard"], elem_id="inpaint-editor")
            with gr.Row():
                strength = gr.Slider(0, 1, value=0.75, step=0.05, label="Strength", elem_id="inpaint-strength")
                mask_blur = gr.Slider(0, 64, value=4, step=1, label="Mask blur (feather, px)",
                                      elem_id="inpaint-blur")
            with gr.Row():
                invert = gr.Checkbox(False, label="Invert mask (repaint the unpainted area)")
                full_res = gr.Checkbox(False, label="Only masked area, at full resolution")
                padding = gr.Slider(0, 256, value=32, step=4, label="Padding around the mask (px)")
            masked_content = gr.Radio(MASKED_CONTENT, value="original", label="Masked content starts from")
            controls = sampling_controls(ctx, "inpaint")
            generate, cancel = action_buttons("Inpaint", "inpaint")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("inpaint")

    def make_spec(user, value, strength_value, blur, invert_value, full_res_value, padding_value, content,
                  *values):
        if not value or value.get("background") is None:
            raise gr.Error("Add an image first, then paint over the part to repaint.")
        background = value["background"]
        mask = image_ops.mask_from_layers(background.size, [layer for layer in value.get("layers") or [] if layer])
        if image_ops.is_empty(mask) and not invert_value:
            raise gr.Error("Nothing is painted yet: paint over the part of the image to repaint (white brush).")
        params = Inpaint(strength=strength_value, mask_blur=int(blur), invert_mask=invert_value,
                         full_res=full_res_value, full_res_padding=int(padding_value), masked_content=content,
                         **sampling(*values))
        return editing_spec(ctx.service, user, params, png_bytes(background), png_bytes(mask))

    wire(ctx, generate, cancel, [editor, strength, mask_blur, invert, full_res, padding, masked_content, *controls],
         make_spec, gallery, summary, info)
    return {"image": editor}
