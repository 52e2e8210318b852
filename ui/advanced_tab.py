"""The Advanced tab: every txt2img parameter, with the chosen model's defaults filled in."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Canny, Img2Img, Txt2Img, Upscale
from ui.common import UIContext, node_request
from ui.controls import (family_choices, family_updates, offered_sampling, preset_choices, preset_sizes,
                         seed_input)
from ui.fields import field_of, fields_of, form_input
from ui.generate import priced_action_buttons, results_column, wire, wire_price
from ui.image_upload import ImageUpload
from ui.png_parameters import png_info_drop, wire_drop, wire_paste


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab's controls (the form the Gallery's "Use these settings" fills in), keyed by the spec's names
    (`model`, `prompt`, ..., `loras`, `lora_weight`, `control_image`, `control_model`, `preprocess`,
    `canny_low`, `canny_high`, `control_scale`, `control_start`, `control_end`, `hires`, `hires_scale`,
    `hires_upscaler`, `hires_strength`); `price_on`: more events that refresh the price (page load, tab
    select)."""
    m = ctx.default_model
    f = {field.name: field for field in fields_of(Txt2Img, ctx.catalogue)}
    family = family_choices(ctx, m)
    with gr.Row():
        with gr.Column(scale=3):
            model = form_input(f["model"], label="Model", value=m.id, elem_id="adv-model")
            prompt = form_input(f["prompt"], label="Prompt", lines=3, elem_id="adv-prompt")
            paste = gr.Button("↙ Read parameters from the prompt", size="sm", elem_id="adv-paste")
            negative = form_input(f["negative_prompt"], label="Negative prompt", lines=2, elem_id="adv-negative",
                                  **family["negative_prompt"])
            with gr.Row():
                multiple = ctx.catalogue.family(m).size_multiple
                width = form_input(f["width"], label="Width", value=m.width, step=multiple, elem_id="adv-width")
                height = form_input(f["height"], label="Height", value=m.height, step=multiple, elem_id="adv-height")
            with gr.Row(equal_height=True):
                preset = gr.Dropdown(preset_choices(ctx, m), value=None, label="Size preset", scale=3,
                                     elem_id="adv-preset")
                swap = gr.Button("⇅ Swap width and height", size="sm", scale=2, elem_id="adv-swap")
            with gr.Row():
                steps = form_input(f["steps"], label="Steps", value=m.steps, elem_id="adv-steps")
                cfg = form_input(f["cfg_scale"], step=0.5, elem_id="adv-cfg", **family["cfg_scale"])
            with gr.Row():
                sampler = form_input(f["sampler"], label="Sampler", elem_id="adv-sampler", **family["sampler"])
                schedule = form_input(f["schedule"], label="Schedule", elem_id="adv-schedule", **family["schedule"])
            seed = seed_input(f["seed"], "adv", label="Seed (-1 = random)")
            with gr.Row():
                batch = form_input(f["batch_size"], label="Batch size", elem_id="adv-batch")
                style = form_input(f["style"], label="Style", value=ctx.styles[0].name if ctx.styles else None,
                                   elem_id="adv-style")
            with gr.Accordion("ControlNet", open=False, elem_id="adv-controlnet"):
                with gr.Row():
                    # image_mode=None: the file goes to the request as it is, not re-encoded as RGB, so the
                    # stored control image the Gallery fills in loads as the same artifact (the compiler converts).
                    control_image = ImageUpload(label="Control image", type="filepath", sources=["upload", "clipboard"],
                                                image_mode=None, height=200, elem_id="adv-control-image")
                    with gr.Column():
                        nets = f["control_model"].choices
                        control_model = form_input(f["control_model"], choices=["None", *nets], value="None",
                                                   label="ControlNet", elem_id="adv-control-model")
                        preprocess = gr.Radio(["canny", "none"], value="canny", label="Preprocess the image",
                                              elem_id="adv-preprocess")
                        with gr.Row():
                            low = form_input(field_of(Canny, "low", ctx.catalogue), label="Canny low",
                                             elem_id="adv-canny-low")
                            high = form_input(field_of(Canny, "high", ctx.catalogue), label="Canny high",
                                              elem_id="adv-canny-high")
                with gr.Row():
                    control_scale = form_input(f["control_scale"], label="Strength", step=0.05,
                                               elem_id="adv-control-scale")
                    control_start = form_input(f["control_start"], label="Start", step=0.05,
                                               elem_id="adv-control-start")
                    control_end = form_input(f["control_end"], label="End", step=0.05, elem_id="adv-control-end")
                gr.Markdown("The edge map is stored and shown with the results.")
            with gr.Accordion("Hires fix and LoRA", open=False, elem_id="adv-hires-lora"):
                with gr.Row():
                    hires = gr.Checkbox(False, label="Hires fix (upscale, then repaint)", elem_id="adv-hires")
                    # The form offers ×4 at most (the declaration, and so the API, allows ×8).
                    hires_scale = form_input(field_of(Upscale, "scale", ctx.catalogue), maximum=4, value=2, step=0.25,
                                             label="Upscale by", elem_id="adv-hires-scale")
                    hires_upscaler = form_input(field_of(Upscale, "upscaler", ctx.catalogue), label="Upscaler",
                                                elem_id="adv-hires-upscaler")
                    hires_strength = form_input(field_of(Img2Img, "strength", ctx.catalogue), value=0.5, step=0.05,
                                                label="Denoising strength", elem_id="adv-hires-strength")
                with gr.Row():
                    loras = gr.Dropdown(ctx.loras(), multiselect=True, label="LoRAs", elem_id="adv-loras")
                    lora_weight = gr.Slider(-2, 2, value=0.8, step=0.05, label="LoRA weight", elem_id="adv-lora-weight")
                gr.Markdown("LoRAs can also be written in the prompt as `<lora:name:0.8>` (files in "
                            "`models/loras`); embeddings by their file name (files in `models/embeddings`).")
            generate, cancel, price = priced_action_buttons("Generate", "adv")
            model_note = gr.Markdown(m.description)
            png_info = png_info_drop("adv")
        with gr.Column(scale=4):
            gallery, summary, info = results_column("adv")

    def model_defaults(model_id):
        e = ctx.model(model_id)
        multiple = ctx.catalogue.family(e).size_multiple       # the sliders step by the sizes the family takes
        return (gr.update(value=e.width, step=multiple), gr.update(value=e.height, step=multiple), e.steps,
                *family_updates(ctx, e), e.description, gr.update(choices=preset_choices(ctx, e), value=None))

    def apply_preset(aspect, model_id):
        if not aspect:
            return gr.update(), gr.update()
        return preset_sizes(ctx, ctx.model(model_id))[aspect]

    model.input(model_defaults, model, [width, height, steps, sampler, schedule, cfg, negative, model_note, preset],
                api_visibility="private")
    swap.click(lambda w, h: (h, w), [width, height], [width, height], api_visibility="private",
               show_progress="hidden")
    preset.input(apply_preset, [preset, model], [width, height], api_visibility="private", show_progress="hidden")
    # A size typed by hand is no longer the preset's.
    gr.on([width.input, height.input], lambda: None, None, preset, api_visibility="private", show_progress="hidden")
    form = {"model": model, "prompt": prompt, "negative_prompt": negative, "width": width, "height": height,
            "steps": steps, "cfg_scale": cfg, "sampler": sampler, "schedule": schedule, "seed": seed.box,
            "batch_size": batch, "style": style, "loras": loras, "lora_weight": lora_weight,
            "control_image": control_image, "control_model": control_model, "preprocess": preprocess,
            "canny_low": low, "canny_high": high, "control_scale": control_scale, "control_start": control_start,
            "control_end": control_end, "hires": hires, "hires_scale": hires_scale, "hires_upscaler": hires_upscaler,
            "hires_strength": hires_strength}
    names = ["prompt", *(name for name in form if name != "prompt")]      # wire_price reads the prompt first
    inputs = [form[name] for name in names]

    def make_spec(user, *values):
        v = dict(zip(names, values))
        net, path = v["control_model"], v["control_image"]
        if net != "None" and not path:
            raise gr.Error("Add a control image for the ControlNet, or set ControlNet to None.")
        data = None
        if path and net != "None":
            with open(path, "rb") as file:
                data = file.read()
        chosen = {**v, "control_model": "" if net == "None" else net,
                  "loras": tuple((name, v["lora_weight"]) for name in v["loras"] or ())}
        return node_request(ctx.service, user, Txt2Img, chosen, control=data,
                            canny={"low": v["canny_low"], "high": v["canny_high"]} if v["preprocess"] == "canny"
                            else None, hires=v if v["hires"] else None)

    ran = wire(ctx, generate, cancel, inputs, make_spec, gallery, summary, info)
    seed.reuse_from(info)
    wire_drop(png_info, form, offered_sampling(ctx))
    wire_paste(paste, prompt, form, offered_sampling(ctx))      # A1111's ↙: an infotext pasted as the prompt
    # Pricing a request with a control image checks that image and prices it as Generate would, but
    # stores nothing: the image is stored only when Generate's request is accepted.
    priced_by = [prompt.blur, model.change, width.change, height.change, steps.change, batch.change, loras.change,
                 control_model.change, control_image.change, hires.change, hires_scale.change,
                 hires_upscaler.change, *price_on]
    wire_price(ctx, price, inputs, make_spec, priced_by, after=(ran,))
    return form
