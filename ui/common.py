"""What every tab shares: the UI context, error translation, and running a job to its result."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import json
import logging
import pathlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import gradio as gr
import PIL.Image

from auth import AccountService
from configs import ModelEntry, Style
from pipelines.checks import whole
from pipelines.errors import AtelierError
from pipelines.plan import ExecutionPlan
from pipelines.spec import Canny, Img2Img, Link, LoadVideo, Node, Sampling, Upscale, WorkflowSpec
from queueing.catalogue import ArtifactCatalogue
from queueing.service import JobService, eta_of, progress_of, queue_position
from queueing.uploads import Upload, loading_spec
from storage.blobs import write_whole
from storage.models import Job, User
from ui.fields import node_params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UIContext:
    """What the tabs need, built once by app.py.

    service:       jobs, per user; its compiler gives the choices and bounds the forms show.
    artifacts:     what each user holds, lineage, exports and replays.
    models:        the catalogue; the first entry is the default.
    styles:        style presets.
    current_user:  the User making a request.
    account:       the caller's account: balance, keys, share links, buying credits, admin actions.
    public_url:    the site's address for links that leave the page ("" = the request's own).
    lease_seconds: the job lease; the Admin tab shows a worker silent for longer as gone.
    """

    service: JobService
    artifacts: ArtifactCatalogue
    models: tuple[ModelEntry, ...]
    styles: tuple[Style, ...]
    current_user: Callable[[gr.Request | None], User]
    account: AccountService | None = None
    public_url: str = ""
    loras: Callable[[], list[str]] = list          # names of the LoRA files there are now
    lease_seconds: float = 60.0                    # a worker silent for longer is shown as gone

    @property
    def default_model(self) -> ModelEntry:
        return self.models[0]

    def api_caller(self, request: gr.Request | None) -> User:
        """The user making an API call, counted against their tier's API calls per minute."""
        user = self.current_user(request)
        if self.account is not None:
            self.account.check_api_call(user)
        return user

    def family(self, *families: str) -> list[ModelEntry]:
        """The catalogue's models of these families, in catalogue order."""
        return [m for m in self.models if m.family in families]

    def model(self, model_id: str) -> ModelEntry:
        return next((m for m in self.models if m.id == model_id), self.default_model)

    @property
    def catalogue(self):
        """The compiler: what the declared parameters' named choices and bounds resolve against
        (`ui.fields.fields_of`)."""
        return self.service.compiler


def user_errors(fn):
    """Show AtelierErrors as the message they carry, and anything else as a short apology (the
    traceback goes to the log only). A person's mistake (an AtelierError, or a gr.Error a handler
    raised about its input) is logged as one line with its code: it is not the server's fault, and a
    traceback would bury the ones that are."""

    def translate(e: Exception) -> gr.Error:
        # print_exception=False: otherwise Gradio's queue prints the traceback of every gr.Error to stderr.
        if isinstance(e, gr.Error):
            logger.info("handler %s: refused (user_input): %s", fn.__name__, e.message)
            e.print_exception = False
            return e
        if isinstance(e, AtelierError):
            logger.info("handler %s: refused (%s): %s", fn.__name__, e.code, e.message)
            return gr.Error(e.message, print_exception=False)
        logger.exception("handler %s failed", fn.__name__)
        return gr.Error(f"Something went wrong on the server ({type(e).__name__}); the server log has details.",
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise translate(e) from None
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise translate(e) from None
    return wrapper


@dataclass(frozen=True)
class Draft:
    """A request as a form or an API call builds it: the spec, and the uploads it loads, checked but not
    stored yet (queueing.uploads). The service stores the uploads only if it accepts the spec, so a
    refused request (or a price shown while the form is filled in) leaves nothing behind."""

    spec: WorkflowSpec
    uploads: tuple[Upload, ...] = ()

    def submit(self, service: JobService, user: User) -> Job:
        return service.submit(user, self.spec, self.uploads)

    def quote(self, service: JobService, user: User) -> ExecutionPlan:
        return service.quote(user, self.spec, self.uploads)


def as_draft(request: WorkflowSpec | Draft) -> Draft:
    """A tab's request as a Draft: specs that send no images come as plain WorkflowSpecs."""
    return request if isinstance(request, Draft) else Draft(request)


def node_request(service: JobService, user: User, params: type, values: Mapping, *, image: bytes | None = None,
                 mask: bytes | None = None, control: bytes | None = None, canny: Mapping | None = None,
                 hires: Mapping | None = None) -> Draft:
    """The request for one node of kind `params` (a node dataclass) from form or API values by name
    (`ui.fields.node_params`), loading `image`, `mask` and `control` (those given; see `editing_spec`). The
    control image goes through a canny node when `canny` gives its values (`low`, `high`); `hires` (the values
    hires_scale, hires_upscaler, hires_strength and, if given, hires_steps) adds a hires fix after it. Every tab
    and every generation endpoint builds its request here."""
    draft = editing_spec(service, user, node_params(params, values), image, mask, control,
                         None if canny is None else node_params(Canny, canny))
    if hires is not None:
        draft = dataclasses.replace(draft, spec=with_hires_fix(draft.spec, hires))
    return draft


def editing_spec(service: JobService, user: User, params, image: bytes | None = None, mask: bytes | None = None,
                 control: bytes | None = None, canny: Canny | None = None) -> Draft:
    """The request that loads `image`, `mask` and `control` (those given) into one `params` node; the control
    image goes through `canny` (an edge map node) when one is given. Each image is checked here (raises
    AtelierError naming the one that is not usable) and stored only when the request is submitted and
    accepted (`Draft.submit`)."""
    checked = {name: service.check_upload(data, words) for name, data, words in (
        ("image", image, "The image"), ("mask", mask, "The mask"), ("control", control, "The control image"))
        if data is not None}
    spec = loading_spec(params, canny=canny, **{name: upload.artifact_id for name, upload in checked.items()})
    return Draft(spec, tuple(checked.values()))


def is_video(artifact) -> bool:
    return artifact.mime.startswith("video/")


def video_spec(ctx: UIContext, user: User, params, video: bytes | None = None, artifact_id: str = "") -> Draft:
    """The request that loads a video into one `params` node (an Interpolate): `video` bytes, checked here
    and stored as an upload when the request is accepted, or else `artifact_id`, one of the user's videos.
    Another user's id, or an unknown one, is "not found"; an image's id gets a message saying a video is
    needed."""
    uploads = ()
    if video is not None:
        uploads = (ctx.service.check_video_upload(video, "The video"),)
        artifact_id = uploads[0].artifact_id
    elif not artifact_id:
        raise gr.Error("Give a video first: upload an MP4, or pass the artifact_id of one of your videos.")
    else:
        artifact = ctx.artifacts.artifact(user, artifact_id)
        if not is_video(artifact):
            raise gr.Error(f"Artifact {artifact_id[:16]}… is an image ({artifact.mime}), not a video; "
                           "interpolation takes a video.")
    nodes = (Node("video", LoadVideo(artifact_id=artifact_id)), Node("1", params, (("video", Link("video", "video")),)))
    return Draft(WorkflowSpec(nodes=nodes), uploads)


def with_hires_fix(spec: WorkflowSpec, values: Mapping) -> WorkflowSpec:
    """AUTOMATIC1111's hires fix: the spec's last (txt2img) node, upscaled by `values["hires_scale"]` with
    `values["hires_upscaler"]`, then repainted by img2img at `values["hires_strength"]` with the same prompt,
    seed and sampler, in `values["hires_steps"]` steps (absent or empty: the txt2img node's)."""
    first = spec.nodes[-1]
    shared = {f.name: getattr(first.params, f.name) for f in dataclasses.fields(Sampling)}
    steps = values.get("hires_steps")
    shared.update(batch_size=1, steps=whole(steps) if steps else first.params.steps)
    upscale = node_params(Upscale, {"scale": values["hires_scale"], "upscaler": values["hires_upscaler"]})
    repaint = node_params(Img2Img, {**shared, "strength": values["hires_strength"]})
    nodes = (Node("hires_up", upscale, (("image", Link(first.id, "images")),)),
             Node("hires", repaint, (("image", Link("hires_up", "images")),)))
    return WorkflowSpec(nodes=spec.nodes + nodes)


KEEPALIVE_SECONDS = 2.0     # the longest a waiting call goes without sending a progress event


def report_progress(progress: gr.Progress, name_job: bool = False) -> Callable[[Job], None]:
    """Show the job row's progress on Gradio's progress bar as /job_status words it: "queued: 3rd in line"
    while it waits, then "denoising: step 12 of 30 · about 8 s left", "decoding: frame 4 of 16", "saving".

    Args:
        progress (`gr.Progress`): the handler's progress tracker.
        name_job (`bool`, defaults to False): lead each description with "job <id>: ", for API callers:
            one whose connection breaks then knows which job to fetch (/job_status, then /artifact_info
            for each artifact id). The browser shows the result itself.
    """
    def on_progress(job: Job) -> None:
        shown = progress_of(job, queue_position(job), eta_of(job))
        text = shown["text"]
        progress((shown["step"], shown["steps"]) if shown["steps"] else 0,
                 desc=f"job {job.id}: {text}" if name_job else text)
    return on_progress


def follow(service: JobService, user: User, job_id: str, progress: gr.Progress, name_job: bool = False) -> Job:
    """`service.wait` for one of `user`'s jobs, showing its progress (`report_progress`, which `name_job`
    is passed to) at least every KEEPALIVE_SECONDS; returns the finished job.

    A job that sits in the queue behind others, or in one long step (a model loading), changes nothing
    for minutes, and clients, proxies and load balancers drop a connection that stays silent: the
    caller would lose a result it paid for. So its progress is shown again, read afresh (a queued job's
    place moves as others finish), however little changed.
    """
    return service.wait(user, job_id, on_progress=report_progress(progress, name_job), keepalive=KEEPALIVE_SECONDS)


def finished_or_raise(job: Job) -> Job:
    """`job` if it succeeded; otherwise the error a person sees."""
    if job.status == "cancelled":
        raise gr.Error("The job was cancelled.")
    if job.status != "succeeded":
        raise gr.Error(job.error or "The job failed; the server log has details.")
    return job


def job_result(ctx: UIContext, user: User, job: Job, finals_only: bool = False) -> tuple[list[tuple[str, str]], dict]:
    """The finished job's files (the stored files themselves) with captions, and its info dict.

    With `finals_only` (what a tab shows) only the outputs of the plan's final steps: a hires fix's first
    picture and its enlargement are listed by id in the info's `intermediate_ids`, and reachable through
    lineage, but not shown. The API returns every file."""
    files, seeds, shown, intermediates = [], [], [], []
    plan = ExecutionPlan.from_json(job.plan)
    finals = plan.final_step_ids() if finals_only else None
    for artifact_id in job.artifact_ids:
        holding = ctx.artifacts.holding(user, artifact_id)
        if finals is not None and holding.step_id not in finals:
            intermediates.append(artifact_id)
            continue
        caption = f"seed {holding.seed}" if holding.seed is not None else f"{holding.step_id} (no seed)"
        files.append((ctx.artifacts.artifact_path(holding.artifact), caption))
        seeds.append(holding.seed)
        shown.append(artifact_id)
    info = {"job_id": job.id, "artifact_ids": shown, "seeds": seeds, "plan_hash": job.plan_hash,
            "credits": job.credits, "status": job.status,
            "seconds": round((job.finished_at or 0) - (job.started_at or 0), 3), "settings": plan.summary(),
            "notes": list(plan.notes),
            "reused_from": json.loads(job.result).get("reused_from", "")}
    if intermediates:
        info["intermediate_ids"] = intermediates
    return files, info


def shown_result(ctx: UIContext, user: User, job: Job) -> tuple[list[tuple[str, str]], dict]:
    """What a generating tab shows of a finished job: `job_result` of its final outputs only."""
    return job_result(ctx, user, job, finals_only=True)


def preview_image(job: Job) -> PIL.Image.Image | None:
    """The running job's live preview (a small picture of its current latents), or None when the row holds
    none or it can't be read: a preview is only ever a nicety, never a reason to fail."""
    if job.status != "running" or not job.progress_preview:
        return None
    try:
        image = PIL.Image.open(io.BytesIO(bytes(job.progress_preview)))
        image.load()
    except (OSError, ValueError):
        return None
    return image


def stream_result(ctx: UIContext, user: User, job_id: str, progress: gr.Progress):
    """Wait for a job, for API callers, streaming what it does: the progress events of `follow` (led by the
    job id) at least every KEEPALIVE_SECONDS and, while it runs, each new live preview as ([preview],
    {"job_id", "status": "running", "preview": True, "progress": the words of /job_status}), which
    `gradio_client` lists in `Job.outputs()`. The last thing yielded is the result, every file and the info
    (`job_result`), or the job's error is raised."""
    show, last_preview = report_progress(progress, name_job=True), None
    for job in ctx.service.watch(user, job_id, keepalive=KEEPALIVE_SECONDS):
        show(job)
        preview = preview_image(job) if job.progress_preview != last_preview else None
        if preview is not None:
            last_preview = job.progress_preview
            words = progress_of(job, queue_position(job), eta_of(job))["text"]
            yield [(preview, "preview")], {"job_id": job.id, "status": "running", "preview": True, "progress": words}
    yield job_result(ctx, user, finished_or_raise(job))


def video_result(ctx: UIContext, user: User, job: Job) -> tuple[str, dict]:
    """The finished job's video (the stored MP4 itself) and its info: `job_result`'s, plus the video's
    `artifact_id`, `frames`, `fps`, `width` and `height`."""
    _, info = job_result(ctx, user, job)
    videos = [a for a in (ctx.artifacts.artifact(user, i) for i in job.artifact_ids) if is_video(a)]
    if not videos:
        raise gr.Error("The job finished without a video; the server log has details.")
    video = videos[-1]
    info.update(artifact_id=video.id, frames=video.frames, fps=video.fps, width=video.width, height=video.height)
    return ctx.artifacts.artifact_path(video), info


def wait_for_video(ctx: UIContext, user: User, job_id: str, progress: gr.Progress,
                   name_job: bool = False) -> tuple[str, dict]:
    """Wait for a video job, showing its progress (denoising steps, then decoded frames) at least every
    KEEPALIVE_SECONDS (`follow`; `name_job` for API callers), and return the video and its info (or raise
    its error)."""
    job = finished_or_raise(follow(ctx.service, user, job_id, progress, name_job))
    return video_result(ctx, user, job)


def export_animation(ctx: UIContext, user: User, artifact_id: str, fmt: str) -> str:
    """A looping GIF or WebP of one of the user's videos, written to a temporary file; its path.
    `ArtifactCatalogue.animation` checks the format, the owner and that it is a video.

    The file is named by the video's id (content hash) and format, so exporting the same video again
    rewrites the same file rather than leaving another one behind."""
    fmt = (fmt or "").lower().lstrip(".")
    if not artifact_id:
        raise gr.Error("Give the artifact_id of one of your videos (the info of /img2vid, /txt2vid or "
                       "/interpolate has it).")
    data = ctx.artifacts.animation(user, artifact_id, fmt)
    path = pathlib.Path(tempfile.gettempdir(), "atelier-animations", f"{artifact_id[:16]}.{fmt}")
    write_whole(path, data)       # a concurrent export of the same video never reads half a file
    return str(path)


def replay_and_wait(ctx: UIContext, user: User, artifact_id: str, progress: gr.Progress,
                    name_job: bool = False, file: bytes | None = None) -> tuple[str, dict]:
    """Make `artifact_id` again (or the file `file`, from the recipe it carries); returns the new file
    and {"artifact_id", "original_id", "identical", "differences", "verdict", "job_id"}. The progress is
    `follow`'s (`name_job` for API callers)."""
    if file is None and not artifact_id:
        raise gr.Error("Give the artifact_id of one of your artifacts (the Gallery and /jobs list them), or a "
                       "file: a PNG or MP4 Atelier made.")
    artifacts, service = ctx.artifacts, ctx.service
    if file is None:
        job = artifacts.replay(user, artifact_id)
    elif file[4:8] == b"ftyp":                       # an MP4 names its type there
        job = artifacts.replay_file(user, service.check_video_upload(file, "The file"))
    else:
        job = artifacts.replay_file(user, service.check_upload(file, "The file"))
    job = finished_or_raise(follow(service, user, job.id, progress, name_job))
    outcome = artifacts.replay_outcome(user, job)
    if not outcome["artifact_id"]:
        raise gr.Error("The replay finished but made nothing where the original stood; the server log has details.")
    return artifacts.artifact_path(artifacts.artifact(user, outcome["artifact_id"])), {**outcome, "job_id": job.id}

