"""The Advanced tab: every txt2img parameter, with the chosen model's defaults filled in."""
from __future__ import annotations

import dataclasses

import gradio as gr

from pipelines.spec import Txt2Img
from ui.common import UIContext, control, editing_spec, sampling, whole, with_hires_fix
from ui.generate import priced_action_buttons, results_column, wire, wire_price


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls (the form the Gallery's "Use these settings" fills in), keyed by the spec's names
    (`model`, `prompt`, ..., `loras`, `lora_weight`, `control_image`, `control_model`, `preprocess`,
    `canny_low`, `canny_high`, `control_scale`, `control_start`, `control_end`, `hires`, `hires_scale`,
    `hires_upscaler`, `hires_strength`); `price_on`: more events that refresh the price (page load, tab
    select)."""
    m = ctx.default_model
    with gr.Row():
        with gr.Column(scale=3):
            model = gr.Dropdown(ctx.generators, value=m.id, label="Model", elem_id="adv-model")
            prompt = gr.Textbox(label="Prompt", lines=3, elem_id="adv-prompt")
            negative = gr.Textbox(label="Negative prompt", lines=2, elem_id="adv-negative")
            with gr.Row():
                width = gr.Slider(64, ctx.max_side, value=m.width, step=8, label="Width", elem_id="adv-width")
                height = gr.Slider(64, ctx.max_side, value=m.height, step=8, label="Height", elem_id="adv-height")
            with gr.Row():
                steps = gr.Slider(1, ctx.max_steps, value=m.steps, step=1, label="Steps", elem_id="adv-steps")
                cfg = gr.Slider(0, ctx.max_cfg_scale, value=m.cfg_scale, step=0.5, label="CFG scale",
                                elem_id="adv-cfg")
            with gr.Row():
                sampler = gr.Dropdown(list(ctx.samplers), value=m.sampler, label="Sampler", elem_id="adv-sampler")
                schedule = gr.Dropdown(list(ctx.schedules), value=m.schedule, label="Schedule",
                                       elem_id="adv-schedule")
            with gr.Row():
                seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)", elem_id="adv-seed")
                batch = gr.Slider(1, ctx.max_batch_size, value=1, step=1, label="Batch size", elem_id="adv-batch")
                style = gr.Dropdown([s.name for s in ctx.styles], value=ctx.styles[0].name if ctx.styles else None,
                                    label="Style", elem_id="adv-style")
            nets = [e.id for e in ctx.models if e.family == "controlnet"]
            with gr.Accordion("ControlNet", open=False, elem_id="adv-controlnet"):
                with gr.Row():
                    # image_mode=None: the file goes to the request as it is, not re-encoded as RGB, so the
                    # stored control image the Gallery fills in loads as the same artifact (the compiler converts).
                    control_image = gr.Image(label="Control image", type="filepath", sources=["upload", "clipboard"],
                                             image_mode=None, height=200, elem_id="adv-control-image")
                    with gr.Column():
                        control_model = gr.Dropdown(["None", *nets], value="None", label="ControlNet",
                                                    elem_id="adv-control-model")
                        preprocess = gr.Radio(["canny", "none"], value="canny", label="Preprocess the image",
                                              elem_id="adv-preprocess")
                        with gr.Row():
                            low = gr.Slider(0, 255, value=100, step=1, label="Canny low", elem_id="adv-canny-low")
                            high = gr.Slider(0, 255, value=200, step=1, label="Canny high", elem_id="adv-canny-high")
                with gr.Row():
                    control_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Strength", elem_id="adv-control-scale")
                    control_start = gr.Slider(0, 1, value=0.0, step=0.05, label="Start", elem_id="adv-control-start")
                    control_end = gr.Slider(0, 1, value=1.0, step=0.05, label="End", elem_id="adv-control-end")
                gr.Markdown("The edge map is stored and shown with the results.")
            with gr.Accordion("Hires fix and LoRA", open=False, elem_id="adv-hires-lora"):
                with gr.Row():
                    hires = gr.Checkbox(False, label="Hires fix (upscale, then repaint)", elem_id="adv-hires")
                    hires_scale = gr.Slider(1, 4, value=2, step=0.25, label="Upscale by", elem_id="adv-hires-scale")
                    hires_upscaler = gr.Dropdown(list(ctx.upscalers), value=ctx.upscalers[0], label="Upscaler",
                                                 elem_id="adv-hires-upscaler")
                    hires_strength = gr.Slider(0, 1, value=0.5, step=0.05, label="Denoising strength",
                                               elem_id="adv-hires-strength")
                with gr.Row():
                    loras = gr.Dropdown(ctx.loras(), multiselect=True, label="LoRAs", elem_id="adv-loras")
                    lora_weight = gr.Slider(-2, 2, value=0.8, step=0.05, label="LoRA weight", elem_id="adv-lora-weight")
                gr.Markdown("LoRAs can also be written in the prompt as `<lora:name:0.8>` (files in "
                            "`models/loras`); embeddings by their file name (files in `models/embeddings`).")
            generate, cancel, price = priced_action_buttons("Generate", "adv")
            model_note = gr.Markdown(m.description)
        with gr.Column(scale=4):
            gallery, summary, info = results_column("adv")

    def model_defaults(model_id):
        e = ctx.model(model_id)
        return e.width, e.height, e.steps, e.cfg_scale, e.sampler, e.schedule, e.description

    model.input(model_defaults, model, [width, height, steps, cfg, sampler, schedule, model_note],
                api_visibility="private")
    inputs = [prompt, negative, model, width, height, steps, cfg, sampler, schedule, seed, batch, style]
    guidance = [control_image, control_model, preprocess, low, high, control_scale, control_start, control_end]
    extras = [hires, hires_scale, hires_upscaler, hires_strength, loras, lora_weight]

    def make_spec(user, *values):
        p, n, mdl, w, h, st, c, sa, sc, se, b, sty = values[:len(inputs)]
        path, net, how, low_value, high_value, scale, start, end = values[len(inputs):len(inputs) + len(guidance)]
        use_hires, up_scale, up_name, up_strength, chosen, weight = values[len(inputs) + len(guidance):]
        if net != "None" and not path:
            raise gr.Error("Add a control image for the ControlNet, or set ControlNet to None.")
        params = Txt2Img(width=whole(w), height=whole(h), **sampling(p, n, mdl, st, c, sa, sc, se, b, sty),
                         loras=tuple((name, weight) for name in chosen or ()),
                         **control("" if net == "None" else net, scale, start, end))
        data = None
        if path and net != "None":
            with open(path, "rb") as f:
                data = f.read()
        draft = editing_spec(ctx.service, user, params, control=data,
                             canny=(int(low_value), int(high_value)) if how == "canny" else None)
        if use_hires:
            draft = dataclasses.replace(draft, spec=with_hires_fix(draft.spec, up_scale, up_name, up_strength, None))
        return draft

    ran = wire(ctx, generate, cancel, inputs + guidance + extras, make_spec, gallery, summary, info)
    # Pricing a request with a control image checks that image and prices it as Generate would, but
    # stores nothing: the image is stored only when Generate's request is accepted.
    priced_by = [prompt.blur, model.change, width.change, height.change, steps.change, batch.change, loras.change,
                 control_model.change, control_image.change, hires.change, hires_scale.change,
                 hires_upscaler.change, *price_on]
    wire_price(ctx, price, inputs + guidance + extras, make_spec, priced_by, after=(ran,))
    return {"model": model, "prompt": prompt, "negative_prompt": negative, "width": width, "height": height,
            "steps": steps, "cfg_scale": cfg, "sampler": sampler, "schedule": schedule, "seed": seed,
            "batch_size": batch, "style": style, "loras": loras, "lora_weight": lora_weight,
            "control_image": control_image, "control_model": control_model, "preprocess": preprocess,
            "canny_low": low, "canny_high": high, "control_scale": control_scale, "control_start": control_start,
            "control_end": control_end, "hires": hires, "hires_scale": hires_scale, "hires_upscaler": hires_upscaler,
            "hires_strength": hires_strength}
