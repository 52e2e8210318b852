"""What every generating tab shares: the results column, and the Generate and Cancel wiring
(submit, stream progress, show results)."""
from __future__ import annotations

import gradio as gr

from ui.common import UIContext, user_errors, wait_for_result


def info_markdown(info: dict) -> str:
    s = info.get("settings", {})
    seeds = ", ".join(str(x) for x in info.get("seeds", []) if x is not None) or "—"
    if "model" in s:
        made = (f"**Model:** {s.get('model')} · {s.get('width')}×{s.get('height')} · {s.get('steps')} steps · "
                f"CFG {s.get('cfg_scale')} · {s.get('sampler')} / {s.get('schedule')}")
    else:
        made = f"**{s.get('kind', '').title()}:** {s.get('upscaler')} ×{s.get('scale')} → {s.get('width')}×{s.get('height')}"
    notes = "".join(f"  \n**Note:** {note}" for note in info.get("notes", []))
    return (f"**Seeds:** {seeds}  \n{made}  \n"
            f"**Job:** `{info.get('job_id')}` · {info.get('seconds')} s · plan `{info.get('plan_hash', '')[:12]}`"
            f"{notes}")


def action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The `label` button (elem_id PREFIX-generate) and Cancel beside it."""
    with gr.Row():
        generate = gr.Button(label, variant="primary", elem_id=f"{prefix}-generate")
        cancel = gr.Button("Cancel", variant="stop", elem_id=f"{prefix}-cancel")
    return generate, cancel


def results_column(prefix: str) -> tuple[gr.Gallery, gr.Markdown, gr.JSON]:
    """The gallery, summary and details shown beside a generating tab's controls."""
    gallery = gr.Gallery(label="Result", columns=2, height=420, format="png", object_fit="contain",
                         elem_id=f"{prefix}-gallery")
    summary = gr.Markdown(elem_id=f"{prefix}-summary")
    with gr.Accordion("Details", open=False):
        info = gr.JSON(label="Info")
    return gallery, summary, info


def wire(ctx: UIContext, generate: gr.Button, cancel: gr.Button, inputs: list, make_spec, gallery: gr.Gallery,
         summary: gr.Markdown, info: gr.JSON) -> None:
    """Run `make_spec(user, *inputs)` as a job when `generate` is clicked; `cancel` stops it at its next step."""
    service = ctx.service
    job_id = gr.State("")

    @user_errors
    def run(*values, request: gr.Request = None, progress=gr.Progress()):
        user = ctx.current_user(request)
        job = service.submit(user, make_spec(user, *values))
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
