"""The named API endpoints for `gradio_client`.

Each endpoint is a plain typed function; `expose` gives it hidden input components built from its
signature, so every parameter's API default is the function's own default (None or "" = the model's
default), whatever the visible tabs show. Image inputs are files, checked on arrival and stored byte
for byte as uploads once the request is accepted (a refused one stores nothing).

Each generation endpoint returns (files, info): the stored files byte for byte and a dict with
job_id, artifact_ids, seeds, plan_hash and credits. While it waits it sends a progress event at least
every few seconds (`ui.common.follow`), each led by "job <id>: ", so a script whose connection breaks
fetches what it paid for by that id: /job_status, then /artifact_info for each artifact id. /submit
and /quote take a WorkflowSpec as JSON text of at most 1 MiB, nested at most 32 levels deep.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import typing

import gradio as gr

from pipelines.spec import Img2Img, Img2Vid, Inpaint, Interpolate, Outpaint, Txt2Img, Txt2Vid, Upscale, WorkflowSpec
from ui.common import (UIContext, control, editing_spec, export_animation, replay_and_wait, sampling, user_errors,
                       video_spec, wait_for_result, wait_for_video, whole, with_hires_fix)
from ui.controls import read_image

ImageFile = typing.NewType("ImageFile", str)      # a parameter that takes an uploaded image file
VideoFile = typing.NewType("VideoFile", str)      # a parameter that takes an uploaded video file (MP4)
AtelierFile = typing.NewType("AtelierFile", str)  # a parameter that takes a PNG or MP4 file Atelier made
SKIPPED = {"request", "progress"}


def read_file(path: str | None, name: str) -> bytes:
    return read_image(path, f"the {name}", "pass it with handle_file(path)")


def read_video(path: str) -> bytes:
    return read_image(path, "the video", "pass it with handle_file(path), or give artifact_id")


def build(ctx: UIContext) -> None:
    """Add the API endpoints to the enclosing Blocks."""
    service = ctx.service

    caller = ctx.api_caller

    @user_errors
    def txt2img(prompt: str, negative_prompt: str = "", model: str = "", width: int | None = None,
                height: int | None = None, steps: int | None = None, cfg_scale: float | None = None,
                sampler: str = "", schedule: str = "", seed: int = -1, batch_size: int = 1, style: str = "",
                control_image: ImageFile | None = None, control_model: str = "", control_scale: float = 1.0,
                control_start: float = 0.0, control_end: float = 1.0, canny_low: int = 100, canny_high: int = 200,
                hires_fix: bool = False, hires_scale: float = 2.0, hires_upscaler: str = "lanczos",
                hires_strength: float = 0.5, hires_steps: int | None = None,
                request: gr.Request = None, progress=gr.Progress()):
        """Text to image. Omitted parameters take the model's defaults; seed -1 is random. With a
        control_image and a control_model, a ControlNet steers it (canny edges of the image, with
        thresholds canny_low/canny_high; lineage: control). hires_fix: then upscale by hires_scale
        and repaint at hires_strength (AUTOMATIC1111's hires fix)."""
        user = caller(request)
        params = Txt2Img(width=whole(width), height=whole(height),
                         **sampling(prompt, negative_prompt, model, steps, cfg_scale, sampler, schedule, seed,
                                    batch_size, style),
                         **control(control_model, control_scale, control_start, control_end))
        control_bytes = read_file(control_image, "control image") if control_image else None
        draft = editing_spec(service, user, params, control=control_bytes, canny=(whole(canny_low),
                                                                                   whole(canny_high)))
        if hires_fix:
            draft = dataclasses.replace(draft, spec=with_hires_fix(draft.spec, hires_scale, hires_upscaler,
                                                                   hires_strength, hires_steps))
        return wait_for_result(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def img2img(image: ImageFile, prompt: str = "", strength: float = 0.75, negative_prompt: str = "",
                model: str = "", width: int | None = None, height: int | None = None, steps: int | None = None,
                cfg_scale: float | None = None, sampler: str = "", schedule: str = "", seed: int = -1,
                batch_size: int = 1, style: str = "", control_image: ImageFile | None = None,
                control_model: str = "", control_scale: float = 1.0, control_start: float = 0.0,
                control_end: float = 1.0, canny_low: int = 100, canny_high: int = 200,
                request: gr.Request = None, progress=gr.Progress()):
        """Image to image: strength 0 keeps the image, 1 repaints it. Lineage: source (and control)."""
        user = caller(request)
        params = Img2Img(strength=strength, width=whole(width), height=whole(height),
                         **sampling(prompt, negative_prompt, model, steps, cfg_scale, sampler, schedule, seed,
                                    batch_size, style),
                         **control(control_model, control_scale, control_start, control_end))
        control_bytes = read_file(control_image, "control image") if control_image else None
        draft = editing_spec(service, user, params, read_file(image, "image"), control=control_bytes,
                             canny=(whole(canny_low), whole(canny_high)))
        return wait_for_result(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def inpaint(image: ImageFile, mask: ImageFile, prompt: str = "", strength: float = 0.75, mask_blur: int = 4,
                invert_mask: bool = False, full_res: bool = False, full_res_padding: int = 32,
                masked_content: str = "original", negative_prompt: str = "", model: str = "",
                steps: int | None = None, cfg_scale: float | None = None, sampler: str = "", schedule: str = "",
                seed: int = -1, batch_size: int = 1, style: str = "", request: gr.Request = None,
                progress=gr.Progress()):
        """Repaint where the mask (a black-and-white image) is white. Lineage: source, mask."""
        user = caller(request)
        params = Inpaint(strength=strength, mask_blur=whole(mask_blur), invert_mask=invert_mask, full_res=full_res,
                         full_res_padding=whole(full_res_padding), masked_content=masked_content,
                         **sampling(prompt, negative_prompt, model, steps, cfg_scale, sampler, schedule, seed,
                                    batch_size, style))
        draft = editing_spec(service, user, params, read_file(image, "image"), read_file(mask, "mask"))
        return wait_for_result(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def outpaint(image: ImageFile, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0, prompt: str = "",
                 feather: int = 16, strength: float = 1.0, masked_content: str = "fill", negative_prompt: str = "",
                 model: str = "", steps: int | None = None, cfg_scale: float | None = None, sampler: str = "",
                 schedule: str = "", seed: int = -1, batch_size: int = 1, style: str = "",
                 request: gr.Request = None, progress=gr.Progress()):
        """Extend the canvas by left/right/top/bottom pixels and paint the new area. Lineage: source."""
        user = caller(request)
        params = Outpaint(left=whole(left), right=whole(right), top=whole(top), bottom=whole(bottom),
                          feather=whole(feather), strength=strength, masked_content=masked_content,
                          **sampling(prompt, negative_prompt, model, steps, cfg_scale, sampler, schedule, seed,
                                     batch_size, style))
        draft = editing_spec(service, user, params, read_file(image, "image"))
        return wait_for_result(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def upscale(image: ImageFile, scale: float = 2.0, upscaler: str = "lanczos", steps: int | None = None,
                seed: int = -1, tile_size: int = 128, request: gr.Request = None, progress=gr.Progress()):
        """Enlarge an image by `scale` with Lanczos or an upscaler model (in tiles of tile_size px).
        Lineage: upscale_of."""
        user = caller(request)
        params = Upscale(scale=scale, upscaler=upscaler, steps=whole(steps), seed=whole(seed),
                         tile_size=whole(tile_size))
        draft = editing_spec(service, user, params, read_file(image, "image"))
        return wait_for_result(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def img2vid(image: ImageFile, frames: int | None = None, fps: int | None = None, motion_bucket_id: int = 127,
                noise_aug_strength: float = 0.02, decode_chunk_size: int | None = None, seed: int = -1,
                model: str = "", width: int | None = None, height: int | None = None, steps: int | None = None,
                cfg_scale: float | None = None, min_cfg_scale: float = 1.0, request: gr.Request = None,
                progress=gr.Progress()):
        """Image to video with a Stable Video Diffusion model; returns the MP4. Omitted parameters take the
        model's defaults; an image of another shape is resized to the video size (info["notes"] says so).
        motion_bucket_id: 1 (little motion) to 255. Lineage: source."""
        user = caller(request)
        params = Img2Vid(model=model or "", width=whole(width), height=whole(height), frames=whole(frames),
                         fps=whole(fps), motion_bucket_id=whole(motion_bucket_id),
                         noise_aug_strength=noise_aug_strength, decode_chunk_size=whole(decode_chunk_size),
                         steps=whole(steps), cfg_scale=cfg_scale, min_cfg_scale=min_cfg_scale,
                         seed=-1 if seed is None else whole(seed))
        draft = editing_spec(service, user, params, read_file(image, "image"))
        return wait_for_video(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def txt2vid(prompt: str, negative_prompt: str = "", frames: int | None = None, fps: int | None = None,
                steps: int | None = None, cfg_scale: float | None = None, seed: int = -1, model: str = "",
                motion_adapter: str = "", width: int | None = None, height: int | None = None, sampler: str = "",
                schedule: str = "", style: str = "", decode_chunk_size: int | None = None,
                request: gr.Request = None, progress=gr.Progress()):
        """Text to video with AnimateDiff: a motion adapter animates an SD1.5-family model; returns the MP4.
        Omitted parameters take the motion adapter's and the model's defaults."""
        user = caller(request)
        params = Txt2Vid(motion_adapter=motion_adapter or "", width=whole(width), height=whole(height),
                         frames=whole(frames), fps=whole(fps), decode_chunk_size=whole(decode_chunk_size),
                         **sampling(prompt, negative_prompt, model, steps, cfg_scale, sampler, schedule, seed, 1,
                                    style))
        return wait_for_video(service, user, service.submit(user, WorkflowSpec.single(params)).id, progress,
                              name_job=True)

    @user_errors
    def interpolate(video: VideoFile | None = None, factor: int = 2, artifact_id: str = "", method: str = "flow",
                    request: gr.Request = None, progress=gr.Progress()):
        """Raise a video's frame rate `factor` (2 or 4) times: n frames become (n - 1) * factor + 1, the
        originals kept. The video is an uploaded MP4 or, when none is sent, `artifact_id`, one of your
        videos. method: "flow" (optical flow) or the id of an interpolator model. Lineage: frames_of."""
        user = caller(request)
        data = read_video(video) if video else None
        params = Interpolate(factor=whole(factor), method=method or "flow")
        draft = video_spec(service, user, params, data, (artifact_id or "").strip())
        return wait_for_video(service, user, draft.submit(service, user).id, progress, name_job=True)

    @user_errors
    def export_video(artifact_id: str, format: str = "gif", request: gr.Request = None):
        """One of your videos as a looping animated GIF or WebP (`format`), for sharing."""
        user, artifact_id = caller(request), (artifact_id or "").strip()
        path = export_animation(service, user, artifact_id, format)
        video = service.artifact(user, artifact_id)
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
        info = service.artifact_info(user, artifact_id)
        return service.artifact_path(service.artifact(user, artifact_id)), info

    @user_errors
    def replay(artifact_id: str = "", file: AtelierFile | None = None, request: gr.Request = None,
               progress=gr.Progress()):
        """Make an artifact again from its recipe, as a new request (checked, limited and charged like one),
        and say whether the bytes are identical (`identical`, `verdict`, and the environment `differences`).
        Give the artifact_id of one of yours, or `file`: a PNG or MP4 Atelier made, here or on another
        install, stored as your upload if the replay is accepted."""
        data = None if file is None else read_image(file, "the file", "pass it with handle_file(path)")
        return replay_and_wait(service, caller(request), (artifact_id or "").strip(), progress, name_job=True,
                               file=data)

    with gr.Column(visible=False):
        files = gr.Gallery(label="files", format="png")
        file = gr.File(label="file")
        info = gr.JSON(label="info")
        never = gr.Button()      # never clicked: it only gives the API events a trigger

        def expose(fn, outputs):
            inputs = [_hidden_input(parameter) for parameter in inspect.signature(fn).parameters.values()
                      if parameter.name not in SKIPPED]
            never.click(fn, inputs, outputs, api_name=fn.__name__, show_progress="hidden", concurrency_limit=None)

        for generate in (txt2img, img2img, inpaint, outpaint, upscale):
            expose(generate, [files, info])
        for query in (submit, quote, job_status, cancel_job, jobs, account):
            expose(query, [info])
        for video_maker in (img2vid, txt2vid, interpolate, export_video):
            expose(video_maker, [file, info])
        expose(artifact_info, [file, info])
        expose(replay, [file, info])


def _hidden_input(parameter: inspect.Parameter):
    """A hidden component whose initial value is the parameter's default (so the API's default)."""
    default = None if parameter.default is inspect.Parameter.empty else parameter.default
    annotation = parameter.annotation
    if annotation in ("ImageFile", ImageFile, "ImageFile | None", "VideoFile", VideoFile, "VideoFile | None",
                      "AtelierFile | None"):
        return gr.File(label=parameter.name)
    if annotation == "bool":
        return gr.Checkbox(value=default, label=parameter.name)
    if annotation.startswith(("int", "float")):
        return gr.Number(value=default, label=parameter.name, precision=None)
    return gr.Textbox(value=default if default is not None else "", label=parameter.name)

