"""The Generate and Cancel wiring both generation tabs share: submit, stream progress, show results."""
from __future__ import annotations

import gradio as gr

from ui.common import UIContext, user_errors, wait_for_result


def info_markdown(info: dict) -> str:
    s = info.get("settings", {})
    seeds = ", ".join(str(x) for x in info.get("seeds", []))
    return (f"**Seeds:** {seeds}  \n"
            f"**Model:** {s.get('model')} · {s.get('width')}×{s.get('height')} · {s.get('steps')} steps · "
            f"CFG {s.get('cfg_scale')} · {s.get('sampler')} / {s.get('schedule')}  \n"
            f"**Job:** `{info.get('job_id')}` · {info.get('seconds')} s · plan `{info.get('plan_hash', '')[:12]}`")


def wire(ctx: UIContext, generate: gr.Button, cancel: gr.Button, inputs: list, make_spec, gallery: gr.Gallery,
         summary: gr.Markdown, info: gr.JSON) -> None:
    """Run `make_spec(*inputs)` as a job when `generate` is clicked; `cancel` stops it at its next step."""
    service = ctx.service
    job_id = gr.State("")

    @user_errors
    def run(*values, request: gr.Request = None, progress=gr.Progress()):
        user = ctx.current_user(request)
        job = service.submit(user, make_spec(*values))
        yield job.id, gr.update(), f"Queued job `{job.id}`…", gr.update()
        files, details = wait_for_result(service, user, job.id, progress)
        yield "", files, info_markdown(details), details

    @user_errors
    def stop(current: str, request: gr.Request = None):
        if current:
            service.cancel(ctx.current_user(request), current)
            gr.Info("Cancelling: the job stops at its next step.")

    generate.click(run, inputs, [job_id, gallery, summary, info], api_visibility="private",
                   concurrency_limit=None)
    cancel.click(stop, [job_id], None, api_visibility="private", concurrency_limit=None)
