"""What every generating tab shares: the results column, and the Generate and Cancel wiring
(submit, stream progress, show results)."""
from __future__ import annotations

import logging

import gradio as gr
import PIL.Image

from pipelines.errors import AtelierError
from queueing.service import eta_of, progress_of, queue_position
from ui.common import KEEPALIVE_SECONDS, UIContext, as_draft, preview_image, shown_result, user_errors

logger = logging.getLogger(__name__)

# Stands in for a blank prompt when pricing: the price never depends on the words, only on <lora:...>
# tags, and a blank prompt has none, so "type a prompt first" need not hide the price.
PRICING_PROMPT = "a picture"
RESULT_HEIGHT = 470         # px: the result gallery; ui.style.CSS keeps each picture within it, whole


def info_markdown(info: dict) -> str:
    s = info.get("settings", {})
    seeds = ", ".join(str(x) for x in info.get("seeds", []) if x is not None) or "—"
    if s.get("frames"):
        made = video_line(s)
    elif "model" in s:
        made = (f"**Model:** {s.get('model')} · {s.get('width')}×{s.get('height')} · {s.get('steps')} steps · "
                f"CFG {s.get('cfg_scale')} · {s.get('sampler')} / {s.get('schedule')}")
    else:
        made = f"**{s.get('kind', '').title()}:** {s.get('upscaler')} ×{s.get('scale')} → {s.get('width')}×{s.get('height')}"
    notes = "".join(f"  \n**Note:** {note}" for note in info.get("notes", []))
    if info.get("reused_from"):
        notes += (f"  \n**Served from your earlier job** `{info['reused_from'][:12]}` with the same plan: no worker "
                  "ran it, these are that job's files. Replay in the Gallery makes them again.")
    seeds_line = "" if s.get("kind") == "interpolate" else f"**Seeds:** {seeds}  \n"     # no noise involved
    return (f"{seeds_line}{made}  \n"
            f"**Job:** `{info.get('job_id')}` · {info.get('seconds')} s · plan `{info.get('plan_hash', '')[:12]}`"
            f"{notes}")


def video_line(s: dict) -> str:
    """One line saying how a video was made, from `ExecutionPlan.summary`."""
    kind = {"img2vid": "Image to video", "txt2vid": "Text to video", "video": "Video",
            "interpolate": "Interpolated"}.get(s.get("kind"), s.get("kind", ""))
    parts = [f"{s.get('width')}×{s.get('height')}", f"{s.get('frames')} frames at {s.get('fps'):g} fps"]
    if s.get("model") and not s.get("factor"):        # an interpolator model is named as the method
        parts.insert(0, s["model"] + (f" + {s['motion_adapter']}" if s.get("motion_adapter") else ""))
    if s.get("steps"):
        parts.append(f"{s['steps']} steps · CFG {s.get('cfg_scale'):g}")
    if s.get("motion_bucket_id") is not None:
        parts.append(f"motion {s['motion_bucket_id']} · noise {s.get('noise_aug_strength'):g}")
    if s.get("factor"):
        parts.append(f"×{s['factor']} by {s.get('method', 'flow')}")
    return f"**{kind}:** " + " · ".join(parts)


def action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """The `label` button (elem_id PREFIX-generate) and Cancel beside it."""
    with gr.Row():
        generate = gr.Button(label, variant="primary", elem_id=f"{prefix}-generate")
        cancel = gr.Button("Cancel", variant="stop", elem_id=f"{prefix}-cancel")
    return generate, cancel


def priced_action_buttons(label: str, prefix: str) -> tuple[gr.Button, gr.Button, gr.Markdown]:
    """`action_buttons` with the price of the next run just under them (elem_id PREFIX-price; `wire_price`
    fills it in)."""
    generate, cancel = action_buttons(label, prefix)
    price = gr.Markdown("", elem_id=f"{prefix}-price")
    return generate, cancel, price


def credits_text(amount: float) -> str:
    return f"{amount:g} credit" + ("" if amount == 1 else "s")


def price_text(ctx: UIContext, user, spec) -> str:
    """"Costs N credits · you have M" for `spec()` (a WorkflowSpec or a ui.common.Draft; or "Free: local
    mode"), or what is wrong with the request; never raises, since it runs on every change of the form.
    Pricing stores nothing, not even the images the request would upload."""
    try:
        plan = as_draft(spec()).quote(ctx.service, user)
    except (AtelierError, gr.Error) as e:
        return f"⚠ {e.message}"
    except Exception:
        logger.exception("pricing failed")
        return "The price is not available right now; the server log has details."
    if ctx.account is None or not ctx.account.accounts_mode:
        return "Free: local mode"
    have = ctx.account.summary(user)["balance"]
    text = f"Costs **{credits_text(plan.credits)}** · you have {have:g}"
    if have < plan.credits:
        text += " (not enough: buy credits in the Account tab, or make it smaller)"
    return text


def wire_price(ctx: UIContext, price: gr.Markdown, inputs: list, make_spec, triggers: list, after: tuple = (),
               first_missing: str = "") -> None:
    """Show the price of `make_spec(user, *inputs)` in `price` whenever one of `triggers` fires (a form
    change, the page load, the tab's select), and again once each event in `after` (a job) is done.

    `inputs` and `make_spec` are the ones given to `wire`, so the price is that of exactly what Generate
    would submit. The first input is the prompt, priced as a stand-in when blank; or, with
    `first_missing`, an input that can't be stood in for (an image), and the text shown while it is empty.
    """
    def show(request: gr.Request, *values) -> str:
        prompt, rest = values[0], values[1:]
        if not prompt or (isinstance(prompt, str) and not prompt.strip()):
            if first_missing:
                return first_missing
            prompt = PRICING_PROMPT
        try:
            user = ctx.current_user(request)
        except AtelierError as e:
            return f"⚠ {e.message}"
        return price_text(ctx, user, lambda: make_spec(user, prompt, *rest))

    quiet = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
    gr.on(triggers, show, inputs, price, trigger_mode="always_last", **quiet)
    for event in after:
        event.then(show, inputs, price, **quiet)


def results_column(prefix: str) -> tuple[gr.Gallery, gr.Markdown, gr.JSON]:
    """The gallery, summary and details shown beside a generating tab's controls. The gallery shows each
    picture whole at its own aspect ratio (ui.style.CSS, class "atelier-result"); a click zooms it."""
    gallery = gr.Gallery(label="Result", columns=2, height=RESULT_HEIGHT, format="png", object_fit="contain",
                         elem_id=f"{prefix}-gallery", elem_classes=["atelier-result"])
    summary = gr.Markdown(elem_id=f"{prefix}-summary")
    with gr.Accordion("Details", open=False):
        info = gr.JSON(label="Info")
    return gallery, summary, info


def preview_of(job) -> list[tuple[PIL.Image.Image, str]] | None:
    """The running job's live preview, captioned with its step, for a result gallery; None when it has none."""
    image = preview_image(job)
    return None if image is None else [(image, f"preview · step {job.progress_step} of {job.progress_steps}")]


def progress_line(job) -> str:
    """Where a job is, as the summary line under the gallery says it while it runs: /job_status's words
    ("queued: 2nd in line", "denoising: step 12 of 30 · about 8 s left") and its id."""
    text = progress_of(job, queue_position(job), eta_of(job))["text"]
    return f"**{text[0].upper()}{text[1:]}**  \n**Job:** `{job.id}`"


def wire(ctx: UIContext, generate: gr.Button, cancel: gr.Button | list[gr.Button], inputs: list, make_spec,
         gallery: gr.Component, summary: gr.Markdown, info: gr.JSON, result=shown_result,
         preview: gr.Image | None = None) -> gr.events.Dependency:
    """Run `make_spec(user, *inputs)` (a WorkflowSpec, or a ui.common.Draft when it sends images) as a job
    when `generate` is clicked; `cancel` (one button or several) stops it at its next step.

    While the job runs, the summary line says where it is (`progress_line`) and its live preview shows in
    the result gallery, or in `preview` (an image shown only while there is one) where the result is a player.
    Then `result(ctx, user, job)` gives what `gallery` shows and the info: the final pictures for a gallery
    (the default, `ui.common.shown_result`), one video for a player (`ui.common.video_result`).

    Nothing here is an error but the unexpected: a refused request (empty prompt, bad size) and a failed
    job show their message as a warning and leave the previous result in place, and a cancelled job says
    where it stopped, as information, keeping its last preview. Returns the click event, so callers can
    chain on it (`.then`)."""
    service = ctx.service
    job_id = gr.State("")
    keep = gr.update()
    in_gallery = preview is None and isinstance(gallery, gr.Gallery)
    outputs = [job_id, gallery, summary, info] + ([preview] if preview is not None else [])

    def shown(job: str, result_value, summary_text, details, previewed=keep) -> tuple:
        return (job, result_value, summary_text, details) + ((previewed,) if preview is not None else ())

    # Gradio fills in a gr.Request only in the parameters before *values.
    @user_errors
    def run(request: gr.Request, *values):
        user = ctx.current_user(request)
        try:
            job = as_draft(make_spec(user, *values)).submit(service, user)
        except (AtelierError, gr.Error) as e:
            gr.Warning(e.message)
            yield shown(keep, keep, keep, keep)
            return
        yield shown(job.id, keep, f"Queued job `{job.id}`…", keep, gr.update(value=None, visible=False))
        # Where the job is goes in the summary line, not over the gallery, which shows the preview.
        last_preview = None
        for job in service.watch(user, job.id, keepalive=KEEPALIVE_SECONDS):
            latest = preview_of(job) if job.progress_preview != last_preview else None
            if latest is None:
                yield shown(keep, keep, progress_line(job), keep)
                continue
            last_preview = job.progress_preview
            if in_gallery:
                yield shown(keep, latest, progress_line(job), keep)
            else:
                yield shown(keep, keep, progress_line(job), keep, gr.update(value=latest[0][0], visible=True))
        if job.status == "cancelled":
            stopped = (job.error or "Cancelled.").rstrip(".")
            gr.Info(f"{stopped}.")
            yield shown("", keep, f"**{stopped}.** Nothing was charged for it.  \n**Job:** `{job.id}`", keep)
        elif job.status != "succeeded":
            problem = job.error or "The job failed; the server log has details."
            gr.Warning(problem)
            yield shown("", keep, f"⚠ {problem}  \n**Job:** `{job.id}`", keep)
        else:
            made, details = result(ctx, user, job)
            yield shown("", made, info_markdown(details), details, gr.update(visible=False))

    @user_errors
    def stop(current: str, request: gr.Request = None):
        if current:
            service.cancel(ctx.current_user(request), current)
            gr.Info("Cancelling: the job stops at its next step.")

    event = generate.click(run, inputs, outputs, api_visibility="private",
                           concurrency_limit=None, show_progress="minimal", show_progress_on=[gallery])
    for button in cancel if isinstance(cancel, list) else [cancel]:
        button.click(stop, [job_id], None, api_visibility="private", concurrency_limit=None)
    return event


def wire_image_tab(ctx: UIContext, generate: gr.Button, cancel: gr.Button, price: gr.Markdown, inputs: list,
                   make_spec, gallery: gr.Gallery, summary: gr.Markdown, info: gr.JSON,
                   price_on: tuple = ()) -> gr.events.Dependency:
    """`wire` and `wire_price` for a tab that works on an image (`inputs[0]`): the price is that of what
    Generate would submit, shown again on every change of the form, when `price_on` fires (the tab's select)
    and after each run, and says an image is needed until one is given. Returns `wire`'s click event."""
    ran = wire(ctx, generate, cancel, inputs, make_spec, gallery, summary, info)
    wire_price(ctx, price, inputs, make_spec, [c.change for c in inputs] + list(price_on), after=(ran,),
               first_missing="Add an image to see the price.")
    return ran
