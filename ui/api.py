"""The named API endpoints for `gradio_client`, on hidden components so every parameter has a
default (None or "" = the model's default), whatever the visible tabs show.

Each generation endpoint returns (files, info): the stored files byte for byte and a dict with
job_id, artifact_ids, seeds, plan_hash and credits.
"""
from __future__ import annotations

import gradio as gr

from pipelines.spec import WorkflowSpec
from ui.common import UIContext, replay_and_wait, txt2img_spec, user_errors, wait_for_result


def build(ctx: UIContext) -> None:
    """Add the API endpoints to the enclosing Blocks."""
    service = ctx.service

    @user_errors
    def txt2img(prompt: str, negative_prompt: str = "", model: str = "", width: int | None = None,
                height: int | None = None, steps: int | None = None, cfg_scale: float | None = None,
                sampler: str = "", schedule: str = "", seed: int = -1, batch_size: int = 1, style: str = "",
                request: gr.Request = None, progress=gr.Progress()):
        """Text to image. Omitted parameters take the model's defaults; seed -1 is random."""
        user = ctx.current_user(request)
        spec = txt2img_spec(prompt, negative_prompt, model, width, height, steps, cfg_scale, sampler, schedule,
                            seed, batch_size, style)
        return wait_for_result(service, user, service.submit(user, spec).id, progress)

    @user_errors
    def submit(spec: str, request: gr.Request = None) -> dict:
        """Queue a WorkflowSpec (JSON text) and return {"job_id"} at once."""
        job = service.submit(ctx.current_user(request), WorkflowSpec.from_json(spec))
        return {"job_id": job.id, "plan_hash": job.plan_hash, "credits": job.credits}

    @user_errors
    def job_status(job_id: str, request: gr.Request = None) -> dict:
        """Status, progress, times (Unix seconds), error and artifact ids of one of your jobs."""
        return service.status(ctx.current_user(request), job_id)

    @user_errors
    def cancel_job(job_id: str, request: gr.Request = None) -> dict:
        """Cancel one of your jobs: a queued one at once, a running one at its next step."""
        return service.cancel(ctx.current_user(request), job_id)

    @user_errors
    def jobs(request: gr.Request = None) -> list:
        """Your recent jobs, newest first."""
        return service.recent(ctx.current_user(request))

    @user_errors
    def artifact_info(artifact_id: str, request: gr.Request = None):
        """An artifact's file and its recipe, kind, size, parents and children."""
        user = ctx.current_user(request)
        info = service.artifact_info(user, artifact_id)
        return service.artifact_path(service.artifact(user, artifact_id)), info

    @user_errors
    def replay(artifact_id: str, request: gr.Request = None, progress=gr.Progress()):
        """Make an artifact again from its recipe; says whether the bytes are identical."""
        return replay_and_wait(service, ctx.current_user(request), artifact_id, progress)

    with gr.Column(visible=False):
        # Hidden inputs: their initial values are the API defaults.
        t_prompt, t_negative = gr.Textbox(value=""), gr.Textbox(value="")
        t_model = gr.Textbox(value="")
        t_width, t_height, t_steps = gr.Number(value=None), gr.Number(value=None), gr.Number(value=None)
        t_cfg = gr.Number(value=None)
        t_sampler, t_schedule = gr.Textbox(value=""), gr.Textbox(value="")
        t_seed, t_batch = gr.Number(value=-1, precision=0), gr.Number(value=1, precision=0)
        t_style = gr.Textbox(value="")
        text = gr.Textbox(value="")
        files = gr.Gallery(label="files", format="png")
        file = gr.File(label="file")
        info = gr.JSON(label="info")
        # Never clicked: it only gives the API events a trigger (gr.on without one runs on load).
        never = gr.Button()

    def endpoint(fn, inputs, outputs):
        never.click(fn, inputs, outputs, api_name=fn.__name__, show_progress="hidden", concurrency_limit=None)

    endpoint(txt2img, [t_prompt, t_negative, t_model, t_width, t_height, t_steps, t_cfg, t_sampler, t_schedule,
                       t_seed, t_batch, t_style], [files, info])
    endpoint(submit, [text], [info])
    endpoint(job_status, [text], [info])
    endpoint(cancel_job, [text], [info])
    endpoint(jobs, [], [info])
    endpoint(artifact_info, [text], [file, info])
    endpoint(replay, [text], [file, info])
