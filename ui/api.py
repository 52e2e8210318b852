"""The named API endpoints for `gradio_client`.

Each generation endpoint makes one node (and the loads of the files it is sent): its parameters are the
node's declared ones (`pipelines/spec.py`), in the order of ../shared/API.md, made into the endpoint's
signature and its `Client.view_api()` types, choices, defaults and descriptions by `ui.fields`; a few
are the endpoint's own (the files, the canny thresholds and hires fix of txt2img, declared by the canny,
upscale and img2img nodes). Its request is built by `ui.common.node_request`, as the tabs build theirs. A
parameter's API default is its declared default (None or "" = the model's default), whatever the
visible tabs show. Image inputs are files, checked on arrival and stored byte for byte as uploads once
the request is accepted (a refused one stores nothing).

Each generation endpoint returns (files, info): the stored files byte for byte and a dict with
job_id, artifact_ids, seeds, plan_hash and credits. While it waits it sends a progress event at least
every few seconds (`ui.common.follow`), each led by "job <id>: ", so a script whose connection breaks
fetches what it paid for by that id: /job_status, then /artifact_info for each artifact id. /submit
and /quote take a WorkflowSpec as JSON text of at most 1 MiB, nested at most 32 levels deep.
"""
from __future__ import annotations

import inspect
import os
import typing

import gradio as gr

from pipelines.png_info import read_png_info
from pipelines.spec import Canny, Img2Img, Interpolate, LoadVideo, Upscale, WorkflowSpec
from queueing.catalogue import PAGE_SIZE
from storage.artifacts import GALLERY_FILTERS
from ui.common import (UIContext, export_animation, node_request, replay_and_wait, stream_result, user_errors,
                       video_spec, wait_for_video)
from ui.controls import read_image
from ui.fields import (Field, api_input, edge_fields, endpoint, endpoint_fields, field_of, node_params,
                       with_arguments)
from ui.mcp import kept_from_agents

AtelierFile = typing.NewType("AtelierFile", str)  # a parameter that takes a PNG or MP4 file Atelier made
SKIPPED = {"request", "progress"}

SAMPLING = ("negative_prompt", "model", "steps", "cfg_scale", "sampler", "schedule", "seed", "batch_size", "style")
CONTROL = ("control_image", "control_model", "control_scale", "control_start", "control_end", "canny_low",
           "canny_high")
HIRES = ("hires_fix", "hires_scale", "hires_upscaler", "hires_strength", "hires_steps")
# The generation endpoints of ../shared/API.md, each named after the node kind it makes, and its parameters in
# order: the node's declared parameters, its files and its own (`own_fields`).
ORDER = {
    "txt2img": ("prompt", "negative_prompt", "model", "width", "height", "steps", "cfg_scale", "sampler", "schedule",
                "seed", "batch_size", "style", *CONTROL, *HIRES),
    "img2img": ("image", "prompt", "strength", "negative_prompt", "model", "width", "height", "steps", "cfg_scale",
                "sampler", "schedule", "seed", "batch_size", "style", *CONTROL),
    "inpaint": ("image", "mask", "prompt", "strength", "mask_blur", "invert_mask", "full_res", "full_res_padding",
                "masked_content", *SAMPLING),
    "outpaint": ("image", "left", "right", "top", "bottom", "prompt", "feather", "strength", "masked_content",
                 *SAMPLING),
    "upscale": ("image", "scale", "upscaler", "steps", "seed", "tile_size"),
    "edit": ("image", "prompt", *SAMPLING, "width", "height"),
    "img2vid": ("image", "frames", "fps", "motion_bucket_id", "noise_aug_strength", "decode_chunk_size", "seed",
                "model", "width", "height", "steps", "cfg_scale", "min_cfg_scale", "prompt", "negative_prompt"),
    "txt2vid": ("prompt", "negative_prompt", "frames", "fps", "steps", "cfg_scale", "seed", "model", "motion_adapter",
                "width", "height", "sampler", "schedule", "style", "decode_chunk_size"),
    "interpolate": ("video", "factor", "artifact_id", "method"),
}
# Node kinds that only ever come inside another endpoint's request (the loads of the files it is sent, the canny
# edges of txt2img's and img2img's control image). Every other kind the server's registry holds, besides those
# in ORDER (a plugin's, a test's), gets an endpoint named after it: its file edges, then its declarations.
INTERNAL = ("load_image", "load_mask", "load_video", "canny")
DESCRIPTIONS = {
    "txt2img": "Text to image. Omitted parameters take the model's defaults; seed -1 is random. With a control_image "
               "and a control_model, a ControlNet steers it (canny edges of the image, with thresholds "
               "canny_low/canny_high; lineage: control). hires_fix: then upscale by hires_scale and repaint at "
               "hires_strength (AUTOMATIC1111's hires fix).",
    "img2img": "Image to image: strength 0 keeps the image, 1 repaints it. Lineage: source (and control).",
    "edit": "Edit an image as the prompt says (\"make the sky stormy\"), with a model trained to edit (FLUX.1 "
            "Kontext, Qwen-Image-Edit); the size is the image's unless given. Lineage: source.",
    "inpaint": "Repaint where the mask (a black-and-white image) is white. Lineage: source, mask.",
    "outpaint": "Extend the canvas by left/right/top/bottom pixels and paint the new area. Lineage: source.",
    "upscale": "Enlarge an image by `scale` with Lanczos or an upscaler model (in tiles of tile_size px). "
               "Lineage: upscale_of.",
    "img2vid": "Image to video with a Stable Video Diffusion model (motion_bucket_id: 1, little motion, to 255), or "
               "with a Wan or LTX-2 model, which animates the image as the prompt says; returns the MP4. Omitted "
               "parameters take the model's defaults; an image of another shape is resized to the video size "
               "(info[\"notes\"] says so). Lineage: source.",
    "txt2vid": "Text to video with a text-to-video model (Wan, LTX-2), or with AnimateDiff: a motion adapter "
               "animates an SD1.5-family model; returns the MP4. Omitted parameters take the model's (or the motion "
               "adapter's) defaults.",
    "interpolate": "Raise a video's frame rate `factor` (2 or 4) times: n frames become (n - 1) * factor + 1, the "
                   "originals kept. The video is an uploaded MP4 or, when none is sent, `artifact_id`, one of your "
                   "videos. method: \"flow\" (optical flow) or the id of an interpolator model. Lineage: frames_of.",
}
# Endpoints Gradio's MCP server does not offer AI agents as tools (issue 15, item 5; `ui.mcp`): what destroys.
KEPT_FROM_AGENTS = ("delete_artifact",)
# The parameters of the endpoints that are not generation ones (their functions' own signatures).
QUERY_FIELDS = {
    "spec": Field("spec", "str", "", "A WorkflowSpec as JSON text: {\"version\": 1, \"nodes\": [...]}."),
    "job_id": Field("job_id", "str", "", "The id of one of your jobs (every generation's info has it)."),
    "artifact_id": Field("artifact_id", "str", "", "The artifact id (sha256) of one of your images or videos."),
    "format": Field("format", "str", "gif", "The animation's format.", choices=("gif", "webp")),
    "file": Field("file", "FILE", None, "A PNG or MP4 file Atelier made, here or elsewhere; pass it with "
                  "handle_file(path).", optional=True),
    "filter": Field("filter", "str", "outputs", "Which of your artifacts: what your jobs made, files you sent "
                    "(painted masks too), videos, or all.", choices=tuple(GALLERY_FILTERS)),
    "query": Field("query", "str", "", "Words that each artifact's prompt or model id contains (any case); "
                   "empty: all."),
    "page": Field("page", "int", 1, "The page, from 1; past the last one gives the last.", low=1),
    "image": Field("image", "FILE", None, "A PNG (or JPEG/WebP) made by Atelier, AUTOMATIC1111, Forge, ComfyUI, "
                   "Fooocus or InvokeAI; pass it with handle_file(path)."),
}


def own_fields(catalogue) -> tuple[Field, ...]:
    """The parameters endpoints take besides their node's: the files, a ControlNet's canny edge map (the canny
    node's thresholds), a hires fix (an upscale node's scale and upscaler, then an img2img repaint) and the
    stored video interpolate takes instead of a file."""
    control, = (f for f in edge_fields(Img2Img) if f.name == "control")
    hires = "Hires fix: "
    return (control.renamed("control_image", description="An image file a ControlNet follows (its canny edges "
                            "unless canny is off), with control_model; pass it with handle_file(path)."),
            field_of(Canny, "low", catalogue).renamed("canny_low", "Canny edges of control_image: "),
            field_of(Canny, "high", catalogue).renamed("canny_high", "Canny edges of control_image: "),
            Field("hires_fix", "bool", False, "Upscale the image, then repaint it (AUTOMATIC1111's hires fix)."),
            field_of(Upscale, "scale", catalogue).renamed("hires_scale", hires),
            field_of(Upscale, "upscaler", catalogue).renamed("hires_upscaler", hires),
            field_of(Img2Img, "strength", catalogue).renamed("hires_strength", "Hires fix repaint: ", default=0.5),
            field_of(Img2Img, "steps", catalogue).renamed("hires_steps", description=hires + "denoising steps of "
                                                          "the repaint; empty: as many as the image's."),
            edge_fields(Interpolate)[0].renamed("video", optional=True, description="A video file (MP4) to "
                                                "interpolate; pass it with handle_file(path), or give artifact_id."),
            field_of(LoadVideo, "artifact_id", catalogue).renamed("artifact_id", "When no video file is sent: "))


def generation_fields(kind: str, catalogue) -> tuple[Field, ...]:
    """The parameters of the endpoint that makes a node of `kind` (see ORDER), for `catalogue` (a Compiler,
    whose registry declares the kind)."""
    return endpoint_fields(catalogue.registry.node(kind).params, catalogue, ORDER.get(kind), own_fields(catalogue))


def read_file(path: str | None, name: str) -> bytes:
    return read_image(path, f"the {name}", "pass it with handle_file(path)")


def read_video(path: str) -> bytes:
    return read_image(path, "the video", "pass it with handle_file(path), or give artifact_id")


def read_files(values: dict) -> dict:
    """The files a call sent, as `node_request` takes them: image, mask, and control (with its canny values)."""
    files = {name: read_file(values[name], name) for name in ("image", "mask") if name in values}
    if values.get("control_image"):
        files.update(control=read_file(values["control_image"], "control image"),
                     canny={"low": values["canny_low"], "high": values["canny_high"]})
    return files


def build(ctx: UIContext) -> None:
    """Add the API endpoints to the enclosing Blocks."""
    service = ctx.service

    caller = ctx.api_caller

    def making(params: type, wait):
        """The body of an endpoint that makes one `params` node from the call's values (and the files it sent;
        a hires fix where it asks for one) and waits for it with `wait` (`wait_for_video`: the video); without
        `wait`, it streams the live previews, then the images (`stream_result`)."""
        def submitted(values: dict, request: gr.Request):
            user = caller(request)
            draft = node_request(service, user, params, values, **read_files(values),
                                 hires=values if values.get("hires_fix") else None)
            return user, draft.submit(service, user).id

        def run(values: dict, request: gr.Request, progress: gr.Progress):
            user, job_id = submitted(values, request)
            return wait(ctx, user, job_id, progress, name_job=True)

        def stream(values: dict, request: gr.Request, progress: gr.Progress):
            user, job_id = submitted(values, request)
            yield from stream_result(ctx, user, job_id, progress)
        return run if wait else stream

    def interpolate(values: dict, request: gr.Request, progress: gr.Progress):
        """The body of /interpolate: the video is a file sent or else one of the caller's, by artifact_id."""
        user = caller(request)
        data = read_video(values["video"]) if values["video"] else None
        draft = video_spec(ctx, user, node_params(Interpolate, values), data, (values["artifact_id"] or "").strip())
        return wait_for_video(ctx, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def export_video(artifact_id: str, format: str = "gif", request: gr.Request = None):
        """One of your videos as a looping animated GIF or WebP (`format`), for sharing."""
        user, artifact_id = caller(request), (artifact_id or "").strip()
        path = export_animation(ctx, user, artifact_id, format)
        video = ctx.artifacts.artifact(user, artifact_id)
        return path, {"artifact_id": video.id, "format": path.rsplit(".", 1)[-1], "frames": video.frames,
                      "fps": video.fps, "size": os.path.getsize(path)}

    @user_errors
    def submit(spec: str, request: gr.Request = None) -> dict:
        """Queue a WorkflowSpec (JSON text) and return {"job_id"} at once."""
        job = service.submit(caller(request), WorkflowSpec.from_json(spec))
        return {"job_id": job.id, "plan_hash": job.plan_hash, "credits": job.credits}

    @user_errors
    def quote(spec: str, request: gr.Request = None) -> dict:
        """What a WorkflowSpec (JSON text) would cost, in credits, without queueing it."""
        plan = service.quote(caller(request), WorkflowSpec.from_json(spec))
        return {"credits": plan.credits, "plan_hash": plan.plan_hash, "notes": list(plan.notes)}

    @user_errors
    def account(request: gr.Request = None) -> dict:
        """Who you are: user_id, email, role, tier and credit balance."""
        return ctx.account.summary(caller(request))

    @user_errors
    def job_status(job_id: str, request: gr.Request = None) -> dict:
        """Status, progress, times (Unix seconds), error and artifact ids of one of your jobs."""
        return service.status(caller(request), job_id)

    @user_errors
    def cancel_job(job_id: str, request: gr.Request = None) -> dict:
        """Cancel one of your jobs: a queued one at once, a running one at its next step."""
        return service.cancel(caller(request), job_id)

    @user_errors
    def jobs(request: gr.Request = None) -> list:
        """Your recent jobs, newest first."""
        return service.recent(caller(request))

    @user_errors
    def artifact_info(artifact_id: str, request: gr.Request = None):
        """An artifact's file and its recipe, kind, size, parents and children."""
        user = caller(request)
        info = ctx.artifacts.artifact_info(user, artifact_id)
        return ctx.artifacts.artifact_path(ctx.artifacts.artifact(user, artifact_id)), info

    @user_errors
    def replay(artifact_id: str = "", file: AtelierFile | None = None, request: gr.Request = None,
               progress=gr.Progress()):
        """Make an artifact again from its recipe, as a new request (checked, limited and charged like one),
        and say whether the bytes are identical (`identical`, `verdict`, and the environment `differences`).
        Give the artifact_id of one of yours, or `file`: a PNG or MP4 Atelier made, here or on another
        install, stored as your upload if the replay is accepted."""
        data = None if file is None else read_image(file, "the file", "pass it with handle_file(path)")
        return replay_and_wait(ctx, caller(request), (artifact_id or "").strip(), progress, name_job=True,
                               file=data)

    @user_errors
    def gallery(filter: str = "outputs", query: str = "", page: int = 1, request: gr.Request = None) -> dict:
        """One page of your artifacts, newest first, as the Gallery lists them: `items` (artifact_id, kind, mime,
        width, height, prompt, model, seed, frames, created_at), `total`, `page`, `pages` and `per_page`. Fetch a
        file with /artifact_info."""
        holdings, total, number = ctx.artifacts.browse(caller(request), filter, query or "", page)
        return {"items": [ctx.artifacts.gallery_item(h) for h in holdings], "total": total, "page": number,
                "pages": max(1, -(-total // PAGE_SIZE)), "per_page": PAGE_SIZE}

    @user_errors
    def delete_artifact(artifact_id: str, request: gr.Request = None) -> dict:
        """Take one of your artifacts out of your Gallery. Its file stays while another user holds the same
        bytes or something was made from it; `files_removed` lists the artifacts whose files went."""
        artifact_id = (artifact_id or "").strip()
        removed = ctx.artifacts.delete(caller(request), artifact_id)
        return {"artifact_id": artifact_id, "deleted": True, "files_removed": removed}

    @user_errors
    def png_info(image: str, request: gr.Request = None) -> dict:
        """The generation parameters an image carries (PNG Info), read from A1111's `parameters` text, ComfyUI's
        graph, Fooocus's or InvokeAI's metadata or Atelier's recipe: source (a1111, comfyui, fooocus, invokeai or
        atelier), prompt, negative_prompt, steps, cfg_scale, sampler, schedule, seed, width, height, model (those
        it holds; sampler and schedule as this server names them) and raw, the text found."""
        caller(request)         # who may call this server may read a PNG here (an API key in accounts mode)
        return read_png_info(read_file(image, "image"))

    with gr.Column(visible=False):
        files = gr.Gallery(label="files", format="png")
        file = gr.File(label="file")
        info = gr.JSON(label="info")
        never = gr.Button()      # never clicked: it only gives the API events a trigger

        def expose(fn, fields, outputs):
            fn.__doc__ = with_arguments(inspect.getdoc(fn), fields)        # each MCP tool parameter's description
            if fn.__name__ in KEPT_FROM_AGENTS:
                kept_from_agents(fn)
            never.click(fn, [api_input(f) for f in fields], outputs, api_name=fn.__name__, show_progress="hidden",
                        concurrency_limit=None)

        for node in ctx.catalogue.registry.nodes:
            if node.kind in INTERNAL:
                continue
            video = "VIDEO" in node.outputs.values()
            fields = generation_fields(node.kind, ctx.catalogue)
            body = interpolate if node.kind == "interpolate" else making(node.params, wait_for_video if video
                                                                          else None)
            description = DESCRIPTIONS.get(node.kind) or inspect.getdoc(node.params)
            expose(user_errors(endpoint(node.kind, description, fields, body)), fields,
                   [file, info] if video else [files, info])
        for query, outputs in ((submit, [info]), (quote, [info]), (job_status, [info]), (cancel_job, [info]),
                               (jobs, [info]), (account, [info]), (export_video, [file, info]),
                               (artifact_info, [file, info]), (replay, [file, info]), (gallery, [info]),
                               (delete_artifact, [info]), (png_info, [info])):
            expose(query, [QUERY_FIELDS[p] for p in inspect.signature(query).parameters if p not in SKIPPED], outputs)
