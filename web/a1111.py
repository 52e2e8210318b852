"""AUTOMATIC1111's REST API (`/sdapi/v1/...`), so the scripts and plugins written for it (webuiapi, Open WebUI,
SillyTavern, the Krita and Photoshop plugins) work against Atelier unchanged.

Requests and responses carry A1111's field names and types (its `StableDiffusionTxt2ImgProcessingAPI` and
`...Img2ImgProcessingAPI` models); a field A1111 does not have is refused with 422 naming it, as A1111 does.
Each request becomes an ordinary WorkflowSpec submitted through the same JobService as every tab and
endpoint: the same queue, credits, ownership and lineage. The images answered are the stored PNG bytes
(base64), so their sha256 is the artifact id. Fields of A1111's that Atelier has no counterpart for (face
restoration, tiling, variation seeds, scripts) are accepted and ignored, as A1111 ignores a script it lacks.

Who calls: in local mode the local owner; in accounts mode the API key, sent as `Authorization: Bearer <key>`
or as the password of A1111's `--api-auth` basic auth (the user name is not read).

Not here yet: the hires fix (`enable_hr`), ControlNet units and `extra-single-image`.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pipelines.errors import AtelierError

PREFIX = "/sdapi/v1"
FINISHED = ("succeeded", "failed", "cancelled")
# A1111's inpainting_fill: 0 fill, 1 original, 2 latent noise, 3 latent nothing (noise is the nearest we have).
MASKED_CONTENT = {0: "fill", 1: "original", 2: "noise", 3: "noise"}


class _Processing(BaseModel):
    """The fields A1111's txt2img and img2img requests share (modules/processing.py, as its API exposes them)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] | None = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    sampler_name: str | None = None
    scheduler: str | None = None
    sampler_index: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    distilled_cfg_scale: float | None = None
    width: int = 512
    height: int = 512
    restore_faces: bool | None = None
    tiling: bool | None = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    eta: float | None = None
    s_min_uncond: float | None = None
    s_churn: float | None = None
    s_tmax: float | None = None
    s_tmin: float | None = None
    s_noise: float | None = None
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool = True
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    disable_extra_networks: bool = False
    firstpass_image: str | None = None
    comments: dict[str, Any] | None = None
    script_name: str | None = None
    script_args: list = Field(default_factory=list)
    send_images: bool = True
    save_images: bool = False
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    infotext: str | None = None
    force_task_id: str | None = None


class Txt2ImgRequest(_Processing):
    """A1111's `StableDiffusionTxt2ImgProcessingAPI`."""

    enable_hr: bool = False
    denoising_strength: float | None = None
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_checkpoint_name: str | None = None
    hr_additional_modules: list | None = None
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    hr_cfg: float | None = None
    hr_distilled_cfg: float | None = None


class Img2ImgRequest(_Processing):
    """A1111's `StableDiffusionImg2ImgProcessingAPI`: `init_images` and `mask` are base64 images (a data URL
    prefix is allowed); with a mask it inpaints."""

    init_images: list[str] = Field(default_factory=list)
    resize_mode: int = 0
    image_cfg_scale: float | None = None
    mask: str | None = None
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    mask_blur: int | None = None
    mask_round: bool = True
    inpainting_fill: int = 0
    inpaint_full_res: bool | int = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: float | None = None
    latent_mask: str | None = None
    denoising_strength: float = 0.75
    include_init_images: bool = False


def decode_image(text: str, name: str) -> bytes:
    """The bytes of a base64 image as A1111's clients send it (with or without a "data:image/...;base64,"
    prefix). Raises AtelierError naming `name` when it is not base64; whether the bytes are an image the
    upload check says."""
    body = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise AtelierError(f"{name} is not base64: send the image file's bytes encoded as base64 (a "
                           "'data:image/png;base64,' prefix is allowed).", code="bad_image", field=name) from None


def infotext_of(png: bytes) -> str:
    """The `parameters` text a stored PNG carries ("" if none)."""
    import PIL.Image

    with PIL.Image.open(io.BytesIO(png)) as image:
        return str(image.info.get("parameters", ""))


class PngInfoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="the image file's bytes, base64 (a data: prefix is allowed)")


def read_parameters(image: str) -> dict:
    """/png-info's answer for a base64 image: A1111's `info` (the parameters text found) and `items`, and
    `parameters`, what `pipelines.png_info.read_png_info` reads (prompt, steps, sampler, ...), from A1111,
    ComfyUI, Fooocus, InvokeAI or Atelier metadata. A file that is not an image, or one with no parameters,
    is an AtelierError that says so."""
    from pipelines.png_info import read_png_info

    found = read_png_info(decode_image(image, "image"))
    raw = found.get("raw", "")
    return {"info": raw, "items": {"parameters": raw} if raw else {},
            "parameters": {name: value for name, value in found.items() if name != "raw"}}


class A1111Api:
    """The routes' work, over the app's services.

    Args:
        service: the JobService every request is submitted to.
        artifacts: the ArtifactCatalogue (what each user holds).
        caller: request -> User (raises AtelierError when the request names nobody).
    """

    def __init__(self, service, artifacts, caller):
        self.service = service
        self.artifacts = artifacts
        self.caller = caller

    def models(self) -> list:
        return [m for m in self.service.compiler.choices("model")]

    def _sampling(self, request: _Processing) -> dict:
        """The Sampling fields of Atelier's nodes from an A1111 request."""
        from pipelines.samplers import accepted_names

        sampler, schedule = accepted_names(request.sampler_name or request.sampler_index or "",
                                           request.scheduler or "")
        model = str((request.override_settings or {}).get("sd_model_checkpoint", "") or "")
        return {"prompt": request.prompt, "negative_prompt": request.negative_prompt, "model": model,
                "steps": request.steps, "cfg_scale": request.cfg_scale, "sampler": sampler, "schedule": schedule,
                "seed": request.seed, "batch_size": max(request.batch_size, 1) * max(request.n_iter, 1)}

    def txt2img_spec(self, request: Txt2ImgRequest):
        from pipelines.spec import Node, Txt2Img, WorkflowSpec

        params = Txt2Img(**self._sampling(request), width=request.width, height=request.height)
        return WorkflowSpec(nodes=(Node("1", params),)), ()

    def img2img_spec(self, request: Img2ImgRequest):
        from pipelines.spec import Img2Img, Inpaint
        from queueing.uploads import loading_spec

        if not request.init_images:
            raise AtelierError("init_images is empty: send the image to start from, base64-encoded.",
                               code="missing_image", field="init_images")
        uploads = [self.service.check_upload(decode_image(request.init_images[0], "init_images"), "init_images")]
        sampling = self._sampling(request)
        if request.mask:
            uploads.append(self.service.check_upload(decode_image(request.mask, "mask"), "mask"))
            blur = request.mask_blur if request.mask_blur is not None else max(request.mask_blur_x, request.mask_blur_y)
            params = Inpaint(**sampling, strength=request.denoising_strength,
                             mask_blur=blur, invert_mask=bool(request.inpainting_mask_invert),
                             full_res=bool(request.inpaint_full_res),
                             full_res_padding=request.inpaint_full_res_padding,
                             masked_content=MASKED_CONTENT.get(request.inpainting_fill, "original"))
        else:
            params = Img2Img(**sampling, strength=request.denoising_strength, width=request.width,
                             height=request.height)
        ids = dict(zip(("image", "mask"), (upload.artifact_id for upload in uploads)))
        return loading_spec(params, **ids), tuple(uploads)

    def generate(self, http: Request, request: _Processing, spec_and_uploads) -> dict:
        """Submit, wait, and answer as A1111 does: images, the request as `parameters`, `info` as JSON text."""
        user = self.caller(http)
        spec, uploads = spec_and_uploads
        job = self.service.submit(user, spec, uploads)
        job = self.service.wait(user, job.id)
        if job.status == "cancelled":
            raise AtelierError("The job was interrupted before it made an image.", code="cancelled")
        if job.status != "succeeded":
            raise AtelierError(job.error or "The job failed; the server log has details.", code="failed")
        images, seeds, infotexts = [], [], []
        for artifact_id in job.artifact_ids:
            holding = self.artifacts.holding(user, artifact_id)
            data = self.service.blobs.get(holding.artifact.blob_key)
            images.append(base64.b64encode(data).decode("ascii"))
            seeds.append(holding.seed)
            infotexts.append(infotext_of(data))
        first_seed = seeds[0] if seeds else request.seed
        info = {"prompt": request.prompt, "all_prompts": [request.prompt] * len(images),
                "negative_prompt": request.negative_prompt, "all_negative_prompts": [request.negative_prompt] * len(images),
                "seed": first_seed, "all_seeds": seeds, "subseed": first_seed, "all_subseeds": seeds,
                "subseed_strength": 0, "width": request.width, "height": request.height,
                "sampler_name": request.sampler_name, "cfg_scale": request.cfg_scale, "steps": request.steps,
                "batch_size": request.batch_size, "restore_faces": False, "sd_model_name": None,
                "seed_resize_from_w": -1, "seed_resize_from_h": -1, "denoising_strength": getattr(
                    request, "denoising_strength", None), "extra_generation_params": {}, "index_of_first_image": 0,
                "infotexts": infotexts, "styles": request.styles or [], "job_timestamp": time.strftime(
                    "%Y%m%d%H%M%S", time.gmtime(job.created_at or time.time())), "clip_skip": 1,
                "is_using_inpainting_conditioning": False, "version": "atelier",
                "job_id": job.id, "artifact_ids": list(job.artifact_ids)}
        return {"images": images if request.send_images else [], "parameters": request.model_dump(),
                "info": json.dumps(info)}

    def current_job(self, user):
        """The caller's running job, else their oldest queued one, else None."""
        unfinished = [j for j in self.service.recent(user, 20) if j["status"] not in FINISHED]
        running = [j for j in unfinished if j["status"] == "running"]
        chosen = running[0] if running else (unfinished[-1] if unfinished else None)
        return None if chosen is None else self.service.job(user, chosen["job_id"])

    def progress(self, http: Request) -> dict:
        from queueing.service import eta_of, progress_of

        user = self.caller(http)
        job = self.current_job(user)
        queued = sum(1 for j in self.service.recent(user, 20) if j["status"] not in FINISHED)
        if job is None:
            return {"progress": 0.0, "eta_relative": 0.0, "textinfo": None, "current_image": None,
                    "current_task": None, "state": {"skipped": False, "interrupted": False, "stopping_generation": False,
                                                    "job": "", "job_count": 0, "job_timestamp": "0",
                                                    "job_no": 0, "sampling_step": 0, "sampling_steps": 0}}
        shown = progress_of(job)
        preview = bytes(job.progress_preview) if job.progress_preview else None
        return {"progress": shown["fraction"], "eta_relative": eta_of(job) or 0.0, "textinfo": shown["text"],
                "current_image": base64.b64encode(preview).decode("ascii") if preview else None,
                "current_task": job.id,
                "state": {"skipped": False, "interrupted": False, "stopping_generation": False,
                          "job": job.id, "job_count": queued, "job_timestamp": time.strftime(
                              "%Y%m%d%H%M%S", time.gmtime(job.created_at or 0)), "job_no": 0,
                          "sampling_step": job.progress_step, "sampling_steps": job.progress_steps}}

    def interrupt(self, http: Request) -> dict:
        """Cancel the caller's current job (theirs only; another user's is never touched)."""
        user = self.caller(http)
        job = self.current_job(user)
        if job is not None:
            self.service.cancel(user, job.id)
        return {}


def _sd_models(api: A1111Api) -> list:
    return [{"title": m, "model_name": m, "hash": None, "sha256": None, "filename": m, "config": None}
            for m in api.models()]


def _samplers() -> list:
    from pipelines.samplers import FLOW_SAMPLERS, SAMPLERS

    seen, out = set(), []
    for s in (*SAMPLERS.values(), *FLOW_SAMPLERS.values()):
        if s.a1111 not in seen:
            seen.add(s.a1111)
            out.append({"name": s.a1111, "aliases": [s.name], "options": {}})
    return out


def _schedulers() -> list:
    from pipelines.samplers import SCHEDULES

    automatic = {"name": "automatic", "label": "Automatic", "aliases": None, "default_rho": -1,
                 "need_inner_model": False}
    return [automatic] + [{"name": s.name, "label": s.a1111, "aliases": None, "default_rho": -1,
                           "need_inner_model": False} for s in SCHEDULES.values()]


def install_a1111_routes(app, service, artifacts, caller, loras=list) -> None:
    """Mount `/sdapi/v1/...` on `app`. `caller`: request -> User (raises AtelierError); `loras`: () -> the
    LoRA names there are now."""
    api = A1111Api(service, artifacts, caller)
    router = APIRouter(prefix=PREFIX)

    async def answered(work, *args):
        """Run `work` in a thread (it waits on the database and the job); an AtelierError becomes a JSON
        answer with its message: 401 for a missing or bad key, 404 not found, else 422."""
        try:
            return await run_in_threadpool(work, *args)
        except AtelierError as e:
            status = 401 if e.code in ("bad_api_key", "not_logged_in", "auth") or type(e).__name__ == "AuthError" \
                else 404 if e.code == "not_found" else 422
            return JSONResponse({"error": type(e).__name__, "detail": e.message, "field": e.field, "code": e.code},
                                status_code=status)

    @router.post("/txt2img")
    async def txt2img(request: Txt2ImgRequest, http: Request):
        return await answered(lambda: api.generate(http, request, api.txt2img_spec(request)))

    @router.post("/img2img")
    async def img2img(request: Img2ImgRequest, http: Request):
        return await answered(lambda: api.generate(http, request, api.img2img_spec(request)))

    @router.get("/progress")
    async def progress(http: Request, skip_current_image: bool = False):
        return await answered(api.progress, http)

    @router.post("/interrupt")
    async def interrupt(http: Request):
        return await answered(api.interrupt, http)

    @router.post("/skip")
    async def skip(http: Request):
        return await answered(api.interrupt, http)

    def listing(make):
        async def route(http: Request):
            return await answered(lambda: (api.caller(http), make())[1])
        return route

    router.get("/sd-models")(listing(lambda: _sd_models(api)))
    router.get("/samplers")(listing(_samplers))
    router.get("/schedulers")(listing(_schedulers))
    router.get("/upscalers")(listing(lambda: [{"name": u, "model_name": u, "model_path": None, "model_url": None,
                                               "scale": 4} for u in service.compiler.choices("upscaler")]))
    router.get("/loras")(listing(lambda: [{"name": n, "alias": n, "path": n, "metadata": {}} for n in loras()]))
    router.get("/scripts")(listing(lambda: {"txt2img": [], "img2img": []}))
    router.get("/options")(listing(lambda: {"sd_model_checkpoint": (api.models() or [""])[0],
                                            "samples_format": "png"}))

    @router.post("/png-info")
    async def png_info(request: PngInfoRequest, http: Request):
        return await answered(lambda: (api.caller(http), read_parameters(request.image))[1])

    @router.post("/options")
    async def set_options(http: Request):
        # Accepted so clients that set options before generating carry on; a request picks its model with
        # override_settings.sd_model_checkpoint, and a per-user default is not kept yet.
        return await answered(lambda: (api.caller(http), None)[1])

    app.include_router(router)


def a1111_caller(web_auth, accounts_mode: bool, account=None):
    """request -> User for these routes: the local owner in local mode; in accounts mode the API key as a Bearer
    header, or as the password of basic auth (A1111's --api-auth). Counts the call against the caller's tier's
    API calls per minute."""
    from auth import api_keys, local_owner
    from auth.accounts import AuthError

    def caller(request):
        if not accounts_mode:
            return local_owner()
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        user = None
        if scheme.lower() == "bearer":
            user = api_keys.user_for_key(credential.strip())
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential.strip()).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
            user = api_keys.user_for_key(key) if key else None
        if user is None:
            raise AuthError("Send your API key as 'Authorization: Bearer <key>' (or as the password of basic "
                            "auth); create one in the Account tab.", code="bad_api_key", field="authorization")
        if account is not None:
            account.check_api_call(user)
        return user

    return caller
