"""The Video tab: image to video (Stable Video Diffusion, Wan, LTX-2) and text to video (Wan, LTX-2, or
AnimateDiff animating an SD1.5-family model), each with Generate, Cancel and a price; the result plays beside
them, and can be interpolated to a higher frame rate or downloaded as a looping GIF or WebP. The controls one
model family reads (SVD's motion, AnimateDiff's adapter, a prompt) show only for a model of it."""
from __future__ import annotations

import gradio as gr

from pipelines.spec import Img2Vid, Interpolate, Txt2Vid
from ui.common import UIContext, export_animation, node_request, user_errors, video_result, video_spec
from ui.controls import SeedInput, read_image, seed_input
from ui.fields import fields_of, form_input, node_params
from ui.generate import priced_action_buttons, wire, wire_price
from ui.image_upload import ImageUpload
from ui.png_parameters import parameters_offer

QUIET = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}


def _first(ctx: UIContext, *families: str):
    models = ctx.family(*families)
    return models[0] if models else None


def _length_controls(fields: dict, prefix: str, model) -> tuple[gr.Slider, gr.Slider]:
    frames = form_input(fields["frames"], value=model.frames if model else 16, label="Frames",
                        elem_id=f"{prefix}-frames")
    fps = form_input(fields["fps"], value=model.fps if model else 8, label="Frames per second",
                     elem_id=f"{prefix}-fps")
    return frames, fps


def image_to_video_controls(ctx: UIContext) -> dict:
    """The Image to video form: the image, the controls keyed by their names in the spec ("inputs"), the seed's
    SeedInput ("seed") and the offer to read a dropped PNG's parameters ("offer")."""
    f = {field.name: field for field in fields_of(Img2Vid, ctx.catalogue)}
    svd = _first(ctx, "svd")
    if svd is None:
        gr.Markdown("No Stable Video Diffusion model is configured: add one (family \"svd\") to "
                    "`configs/models.toml`.", elem_id="i2v-missing")
    image = ImageUpload(label="Image (the first frame)", type="filepath", sources=["upload", "clipboard"], height=260,
                     elem_id="video-image")
    offer = parameters_offer("i2v")
    model = form_input(f["model"], value=svd.id if svd else None, label="Model", elem_id="i2v-model")
    prompt = form_input(f["prompt"], label="Prompt", lines=2, placeholder="the boat drifts out of the frame",
                        visible=not _is_svd(svd), elem_id="i2v-prompt")
    with gr.Row():
        frames, fps = _length_controls(f, "i2v", svd)
    with gr.Row(visible=_is_svd(svd)) as svd_row:
        motion = form_input(f["motion_bucket_id"], value=svd.motion_bucket_id if svd else 127,
                            label="Motion bucket id", info="1-255: more moves more", elem_id="i2v-motion")
        noise = form_input(f["noise_aug_strength"], value=svd.noise_aug_strength if svd else 0.02, step=0.01,
                           label="Noise augmentation", info="more strays further from the image", elem_id="i2v-noise")
    with gr.Row():
        chunk = form_input(f["decode_chunk_size"], value=0, minimum=0, label="Decode chunk size",
                           info="frames the VAE decodes at once: fewer use less memory; 0 = all",
                           visible=_is_svd(svd), elem_id="i2v-chunk")
    seed = seed_input(f["seed"], "i2v", label="Seed", info="-1 = random")      # a row of its own, with ♻ and 🎲

    def defaults(chosen):
        m = ctx.model(chosen)
        svd_model = _is_svd(m)       # SVD's own controls go back to its defaults, which the others must keep
        return (m.frames, m.fps, m.motion_bucket_id, m.noise_aug_strength, gr.update(visible=svd_model),
                gr.update(visible=svd_model, value=0),
                gr.update(visible=False, value="") if svd_model else gr.update(visible=True))

    model.input(defaults, model, [frames, fps, motion, noise, svd_row, chunk, prompt], **QUIET)
    return {"image": image, "inputs": {"model": model, "frames": frames, "fps": fps, "motion_bucket_id": motion,
                                       "noise_aug_strength": noise, "decode_chunk_size": chunk, "seed": seed.box,
                                       "prompt": prompt}, "seed": seed, "offer": offer}


def _is_svd(model) -> bool:
    return model is not None and model.family == "svd"


def text_to_video_controls(ctx: UIContext) -> tuple[dict, SeedInput]:
    """The Text to video form, keyed by the names in the spec (the prompt first), and the seed's SeedInput.
    The adapter's sampler and schedule (DDIM for AnimateDiff) apply: the form leaves them unset."""
    f = {field.name: field for field in fields_of(Txt2Vid, ctx.catalogue)}
    adapter, base = _first(ctx, "animatediff"), _first(ctx, "sd15")
    if adapter is None:
        gr.Markdown("No AnimateDiff motion adapter is configured: add one (family \"animatediff\") to "
                    "`configs/models.toml`.", elem_id="t2v-missing")
    prompt = form_input(f["prompt"], label="Prompt", lines=2, placeholder="a paper boat drifting on a pond",
                        elem_id="t2v-prompt")
    negative = form_input(f["negative_prompt"], label="Negative prompt", lines=1, elem_id="t2v-negative")
    with gr.Row():
        model = form_input(f["model"], value=base.id if base else None, label="Model",
                           info="a text-to-video model, or an SD1.5-family model the motion adapter animates",
                           elem_id="t2v-model")
        motion_adapter = form_input(f["motion_adapter"], value=adapter.id if adapter else None,
                                    label="Motion adapter", elem_id="t2v-adapter")
    with gr.Row():
        frames, fps = _length_controls(f, "t2v", adapter)
    with gr.Row():
        steps = form_input(f["steps"], value=adapter.steps if adapter else 20, label="Steps", elem_id="t2v-steps")
        cfg = form_input(f["cfg_scale"], value=adapter.cfg_scale if adapter else 7.5, step=0.5,
                         label="Guidance (CFG scale)", elem_id="t2v-cfg")
    seed = seed_input(f["seed"], "t2v", label="Seed", info="-1 = random")

    def defaults(chosen):
        m = ctx.model(chosen)
        return m.frames, m.fps, m.steps, m.cfg_scale

    def model_defaults(chosen, adapter_chosen):
        """A text-to-video model brings its own defaults and needs no adapter; an SD1.5 one takes the adapter's."""
        own = chosen in ctx.catalogue.able("txt2vid")
        return (*defaults(chosen if own else adapter_chosen), gr.update(visible=not own))

    motion_adapter.input(defaults, motion_adapter, [frames, fps, steps, cfg], **QUIET)
    model.input(model_defaults, [model, motion_adapter], [frames, fps, steps, cfg, motion_adapter], **QUIET)
    return {"prompt": prompt, "negative_prompt": negative, "model": model, "motion_adapter": motion_adapter,
            "frames": frames, "fps": fps, "steps": steps, "cfg_scale": cfg, "seed": seed.box}, seed


def result_column(ctx: UIContext) -> dict:
    """The live preview (shown while a video is made), the player, its summary, the Interpolate (with a choice
    of interpolator) and Download buttons under it, and the details."""
    preview = gr.Image(label="Preview", height=260, interactive=False, visible=False, elem_id="video-preview")
    player = gr.Video(label="Video", height=380, autoplay=True, loop=True, interactive=False,
                      elem_id="video-player")
    summary = gr.Markdown("Make a video, or send one from the Gallery.", elem_id="video-summary")
    learned = [m.id for m in ctx.family("interpolator")]
    with gr.Row(equal_height=True):
        method = gr.Dropdown(["flow", *learned], value="flow", label="Interpolator", container=False, scale=2,
                             min_width=120, visible=bool(learned), elem_id="video-interpolator")
        small = {"size": "sm", "min_width": 90, "scale": 2}
        twice = gr.Button("Interpolate ×2", elem_id="video-interpolate-2", **small)
        four = gr.Button("Interpolate ×4", elem_id="video-interpolate-4", **small)
    with gr.Row():
        gif = gr.Button("Download GIF", elem_id="video-gif", **small)
        webp = gr.Button("Download WebP", elem_id="video-webp", **small)
    download = gr.File(label="Animation", visible=False, elem_id="video-download")
    with gr.Accordion("Details", open=False):
        info = gr.JSON(label="Info", elem_id="video-info")
    return {"preview": preview, "player": player, "summary": summary, "method": method, "interpolate": (twice, four),
            "animations": (gif, webp),
            "download": download, "info": info}


def current_video(info: dict | None) -> str:
    """The id of the video the player shows (from its info), or an error saying how to get one."""
    if not info or not info.get("artifact_id"):
        raise gr.Error("Make a video first (Generate), or send one from the Gallery.")
    return info["artifact_id"]


def build(ctx: UIContext, price_on: tuple = ()) -> dict:
    """The tab; `price_on`: more events that refresh the prices (the tab's select)."""
    service = ctx.service
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Tabs() as sections:
                with gr.Tab("Image to video", id="img2vid") as i2v_page:
                    i2v = image_to_video_controls(ctx)
                    i2v_go, i2v_cancel, i2v_price = priced_action_buttons("Generate", "i2v")
                with gr.Tab("Text to video", id="txt2vid") as t2v_page:
                    t2v, t2v_seed = text_to_video_controls(ctx)
                    t2v_go, t2v_cancel, t2v_price = priced_action_buttons("Generate", "t2v")
        with gr.Column(scale=4):
            out = result_column(ctx)
    shown = (out["player"], out["summary"], out["info"])
    cancels = [i2v_cancel, t2v_cancel]

    def i2v_spec(user, path, *values):
        chosen = dict(zip(i2v["inputs"], values))
        chosen["decode_chunk_size"] = chosen["decode_chunk_size"] or None          # 0 in the form: all frames
        return node_request(service, user, Img2Vid, chosen, image=read_image(path))

    def t2v_spec(user, *values):
        chosen = dict(zip(t2v, values))
        if chosen["model"] in ctx.catalogue.able("txt2vid"):
            chosen["motion_adapter"] = ""             # hidden: a text-to-video model makes its videos itself
        return node_request(service, user, Txt2Vid, chosen)

    i2v_inputs = [i2v["image"], *i2v["inputs"].values()]
    t2v_inputs = list(t2v.values())
    i2v_ran = wire(ctx, i2v_go, cancels, i2v_inputs, i2v_spec, *shown, result=video_result, preview=out["preview"])
    t2v_ran = wire(ctx, t2v_go, cancels, t2v_inputs, t2v_spec, *shown, result=video_result, preview=out["preview"])
    wire_price(ctx, t2v_price, t2v_inputs, t2v_spec, [t2v["prompt"].blur, *(c.change for c in t2v_inputs[2:]),
                                                      t2v_page.select, *price_on], after=(t2v_ran,))
    for seed in (i2v["seed"], t2v_seed):
        seed.reuse_from(out["info"])
    i2v["offer"].wire(i2v["image"], {name: i2v["inputs"][name] for name in ("prompt", "seed")})
    # Pricing checks the image as Generate would, and stores nothing.
    wire_price(ctx, i2v_price, i2v_inputs, i2v_spec, [c.change for c in i2v_inputs] + [i2v_page.select],
               after=(i2v_ran,), first_missing="Add an image to see the price.")

    for button, factor in zip(out["interpolate"], (2, 4)):
        wire(ctx, button, cancels, [out["info"], out["method"]], _interpolation(ctx, factor), *shown,
             result=video_result)
    for button, fmt in zip(out["animations"], ("gif", "webp")):
        button.click(_exporter(ctx, fmt), [out["info"]], out["download"], api_visibility="private",
                     concurrency_limit=None)
    # Another video in the player: the animation shown was of the one before.
    out["info"].change(lambda: gr.update(value=None, visible=False), None, out["download"], **QUIET)
    return {"image": i2v["image"], "sections": sections, "image_section": "img2vid",
            "player": out["player"], "summary": out["summary"], "info": out["info"]}


def _interpolation(ctx: UIContext, factor: int):
    """make_spec for "Interpolate ×factor": the video the player shows, `factor` times the frame rate by the
    chosen interpolator."""
    def make_spec(user, info, method):
        return video_spec(ctx, user, node_params(Interpolate, {"factor": factor, "method": method}),
                          artifact_id=current_video(info))
    return make_spec


def _exporter(ctx: UIContext, fmt: str):
    """The handler of "Download GIF/WebP": the player's video as a looping animation, in the file box."""
    @user_errors
    def download(info, request: gr.Request = None):
        path = export_animation(ctx, ctx.current_user(request), current_video(info), fmt)
        return gr.update(value=path, visible=True)
    return download
