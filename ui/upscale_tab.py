"""The Upscale tab: enlarge an image with a resampler or an upscaler model."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Upscale
from ui.common import UIContext, editing_spec
from ui.controls import image_input, read_image
from ui.generate import action_buttons, results_column, wire


def build(ctx: UIContext) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            image = image_input("upscale")
            with gr.Row():
                scale = gr.Slider(1, 8, value=2, step=0.25, label="Scale", elem_id="upscale-scale")
                upscaler = gr.Dropdown(list(ctx.upscalers), value=ctx.upscalers[0], label="Upscaler",
                                       elem_id="upscale-upscaler")
            with gr.Row():
                steps = gr.Slider(1, ctx.max_steps, value=20, step=1, label="Steps (upscaler models)")
                tile = gr.Slider(32, 1024, value=128, step=32, label="Tile size (px)")
                seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
            generate, cancel = action_buttons("Upscale", "upscale")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("upscale")

    def make_spec(user, path, scale_value, upscaler_name, steps_value, tile_value, seed_value):
        params = Upscale(scale=scale_value, upscaler=upscaler_name, steps=int(steps_value), tile_size=int(tile_value),
                         seed=-1 if seed_value is None else int(seed_value))
        return editing_spec(ctx.service, user, params, read_image(path))

    wire(ctx, generate, cancel, [image, scale, upscaler, steps, tile, seed], make_spec, gallery, summary, info)
    return {"image": image}
