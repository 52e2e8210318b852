"""The Gallery tab: past artifacts newest first (a video shows as its poster). Select one to see its
recipe and lineage (and walk to its parents and children), replay it, copy its settings into the
Advanced tab, or send it to an editing tab or the Video tab.

"Use these settings" fills the Advanced tab so that Generate makes the same plan again (issue 18): the
txt2img step's settings, its LoRAs, its ControlNet with the stored control image, and a hires fix's
upscale and repaint. `form_values` reads the plan back as the request that makes it (`recipes.spec_of`), maps
that onto the form, and checks, as the compiler would read the form, that it gives back the same prompts
and LoRAs."""
from __future__ import annotations

import gradio as gr

from configs import Style
from pipelines.errors import NotFound
from pipelines.plan import ExecutionPlan
from pipelines.prompt_syntax import extract_loras
from pipelines.recipes import spec_of
from pipelines.spec import Node, Txt2Img, WorkflowSpec
from ui.common import UIContext, is_video, replay_and_wait, user_errors
from ui.generate import video_line

HIRES_STEPS = ("hires_up", "hires")    # the node ids ui.common.with_hires_fix gives its upscale and repaint


def _source(spec: WorkflowSpec, node: Node, name: str) -> Node | None:
    """The node whose output `node`'s input `name` takes, or None."""
    link = node.link(name)
    return next((n for n in spec.nodes if n.id == link.node), None) if link else None


def _unstyled(style: Style, prompt: str, negative: str) -> tuple[str, str] | None:
    """The prompts a person typed that `style` turned into `prompt` and `negative`, or None where the
    style's template does not fit them."""
    if style.prompt.count("{prompt}") != 1:
        return None
    before, after = style.prompt.split("{prompt}")
    if len(prompt) < len(before) + len(after) or not (prompt.startswith(before) and prompt.endswith(after)):
        return None
    typed = prompt[len(before):len(prompt) - len(after)]
    if not style.negative:
        return typed, negative
    if negative == style.negative:
        return typed, ""
    suffix = ", " + style.negative
    return (typed, negative[:-len(suffix)]) if negative.endswith(suffix) else None


def _lora_tags(prompt: str, loras: list[tuple[str, float]]) -> str:
    """`prompt` with `<lora:name:weight>` tags after it; repr() writes each weight so it parses back exactly."""
    tags = ", ".join(f"<lora:{name}:{weight!r}>" for name, weight in loras)
    return f"{prompt}, {tags}" if prompt else tags


def form_prompts(params: Txt2Img, style_name: str, styles: tuple[Style, ...],
                 slider: gr.Slider) -> tuple[dict, list[str]]:
    """The Advanced tab's prompt, negative prompt, style, LoRAs and LoRA weight that give back the prompts and
    LoRAs of `params` (a txt2img step read back) and its style `style_name` (the step's label), and notes on
    what could not be given back.

    The plan holds the prompt with the style applied and the `<lora:...>` tags taken out, and its LoRAs as
    (name, weight) pairs once read back. LoRAs that share one weight the `slider` can hold go in the LoRA
    list, leaving the prompt as it was; otherwise they go back into the prompt as tags. Each way is tried
    as the compiler reads the form (style, then the tags out), and the first that gives back exactly the
    plan's prompts and LoRAs, in order, is taken: the style's own name where the prompt still fits its
    template, else "None" with the styled prompt."""
    prompt, negative = params.prompt, params.negative_prompt
    loras = [(name, float(weight)) for name, weight in params.loras]
    style = next((s for s in styles if s.name == style_name), None) if style_name else None
    weights = {weight for _, weight in loras}
    weight = next(iter(weights)) if len(weights) == 1 else None
    listed = weight is not None and slider.minimum <= weight <= slider.maximum and (
        abs(weight / slider.step - round(weight / slider.step)) < 1e-6)

    def gives_back(typed: str, typed_negative: str, styled_by: Style | None, chosen: list) -> bool:
        p, n = styled_by.apply(typed, typed_negative) if styled_by else (typed, typed_negative)
        try:
            text, uses = extract_loras(p)
        except ValueError:
            return False
        return text == prompt and n == negative and [(u.name, u.weight) for u in uses] + chosen == loras

    starts = [(style, *unstyled)] if style and (unstyled := _unstyled(style, prompt, negative)) else []
    starts.append((None, prompt, negative))
    for styled_by, typed, typed_negative in starts:
        ways = ([(typed, [name for name, _ in loras])] if listed or not loras else []) + (
            [(_lora_tags(typed, loras), [])] if loras else [])
        for text, names in ways:
            if gives_back(text, typed_negative, styled_by, [(name, weight) for name in names]):
                values = {"prompt": text, "negative_prompt": typed_negative, "loras": names,
                          "style": styled_by.name if styled_by else "None"}
                notes = [] if styled_by or not style else [
                    f"The prompt is shown with the style {style.name!r} already applied, so Style is None."]
                return ({**values, "lora_weight": weight} if names else values), notes
    return ({"prompt": _lora_tags(prompt, loras), "negative_prompt": negative, "loras": [], "style": "None"},
            ["The prompt and its LoRAs could not be written so that they read back exactly as they were "
             "(a LoRA name with ':' in it, or spaces or commas at the prompt's ends); check them before Generate."])


def _step_summary(recipe: dict) -> dict:
    """The summary of the step that made an artifact (`ExecutionPlan.summary`), from the artifact's recipe; {}
    when it holds no plan this version reads (an upload, or a file made elsewhere)."""
    try:
        return ExecutionPlan.from_dict(recipe["plan"]).summary(recipe.get("step"))
    except (KeyError, TypeError, ValueError, StopIteration):
        return {}


def form_values(plan: ExecutionPlan, step_id: str, styles: tuple[Style, ...],
                slider: gr.Slider) -> tuple[dict, str, list]:
    """The Advanced tab's values (keyed as advanced_tab.build's dict) that make `step_id` of `plan` again,
    the artifact id of the stored control image to fill in ("" for none), and notes on what the form
    cannot carry. `step_id` is a txt2img step, or the repaint of a hires fix (its txt2img settings and the
    hires fix's); anything else raises gr.Error. The plan is read back as the request that makes it
    (`recipes.spec_of`), and that request is mapped onto the form."""
    spec = spec_of(plan)
    node, hires = next(n for n in spec.nodes if n.id == step_id), None
    if node.kind == "img2img" and step_id == HIRES_STEPS[1]:
        up = _source(spec, node, "image")
        base = _source(spec, up, "image") if up else None
        if up and up.id == HIRES_STEPS[0] and up.kind == "upscale" and base and base.kind == "txt2img":
            node, hires = base, (up.params, node.params)
    if node.kind != "txt2img":
        raise gr.Error(f"This image came from {node.kind}; Use these settings fills the txt2img form. "
                       "Replay it instead, or send it to an editing tab.")
    p = node.params
    prompts, notes = form_prompts(p, plan.step(node.id).style, styles, slider)
    values = {"model": p.model, "width": p.width, "height": p.height, "steps": p.steps, "cfg_scale": p.cfg_scale,
              "sampler": p.sampler, "schedule": p.schedule, "batch_size": 1, **prompts, "hires": hires is not None,
              "control_model": "None", "control_image": None, "control_scale": p.control_scale,
              "control_start": p.control_start, "control_end": p.control_end}
    control_id = ""
    source = _source(spec, node, "control") if p.control_model else None
    if source is not None:
        canny = source if source.kind == "canny" else None
        if canny:
            source = _source(spec, canny, "image")
        if source is not None and source.kind == "load_image":
            control_id = source.params.artifact_id
            values.update(control_model=p.control_model, preprocess="canny" if canny else "none")
            if canny:
                values.update(canny_low=canny.params.low, canny_high=canny.params.high)
        else:
            notes.append(f"The control image was made by the step {source.id if source else None!r}, not loaded "
                         "from a file, so ControlNet is left at None.")
    if hires:
        up, repaint = hires
        values.update(hires_scale=up.scale, hires_upscaler=up.upscaler, hires_strength=repaint.strength)
        if repaint.steps != p.steps:
            notes.append(f"The hires pass repainted in {repaint.steps} steps; the form repaints in as many "
                         f"steps as the image ({p.steps}).")
    return values, control_id, notes


def build(ctx: UIContext, advanced: dict, tabs: gr.Tabs, advanced_tab_id: str, send_to: dict,
          video: tuple[str, dict] | None = None) -> dict:
    """`send_to`: button label -> (tab id, image component) for the "Send to" buttons; `video`: (tab id,
    the Video tab's handles) for "Send to video"."""
    artifacts = ctx.artifacts
    shown = gr.State([])            # artifact ids in gallery order
    selected = gr.State("")
    with gr.Row():
        with gr.Column(scale=3):
            refresh = gr.Button("Refresh", size="sm", elem_id="gallery-refresh")
            gallery = gr.Gallery(label="Your images and videos", columns=4, height=520, format="png",
                                 allow_preview=False, elem_id="gallery-grid")
        with gr.Column(scale=2):
            heading = gr.Markdown("Select an image or a video to see how it was made.", elem_id="gallery-heading")
            # Each show() replaces the choices while an .input with the old ones may be in flight; Gradio would
            # refuse that value as "not in the list of choices". walk() checks it instead: artifact_info
            # takes only ids the caller holds.
            related = gr.Dropdown([], label="Made from / used by (walk the lineage)", allow_custom_value=True,
                                  elem_id="gallery-related")
            with gr.Row():
                replay = gr.Button("Replay", elem_id="gallery-replay")
                reuse = gr.Button("Use these settings", elem_id="gallery-reuse")
            with gr.Row():
                send_buttons = {label: gr.Button(f"Send to {label}", size="sm",
                                                 elem_id=f"gallery-send-{label.lower()}") for label in send_to}
                send_video = gr.Button("Send to video", size="sm", elem_id="gallery-send-video") if video else None
            replay_result = gr.Markdown(elem_id="gallery-replay-result")
            replay_file = gr.File(label="Replayed file", visible=False)
            recipe = gr.JSON(label="Recipe and lineage", elem_id="gallery-recipe")

    @user_errors
    def load(request: gr.Request = None):
        user = ctx.current_user(request)
        holdings = artifacts.recent_artifacts(user)
        return [thumbnail(h) for h in holdings], [h.artifact_id for h in holdings]

    def thumbnail(holding) -> tuple[str, str]:
        """(file, caption) for the grid, as the user holds the artifact: a seed only for what their own
        job made; a video shows as its poster (its first frame) where they made one."""
        artifact = holding.artifact
        if not is_video(artifact):
            caption = f"seed {holding.seed}" if holding.seed is not None else holding.kind
            return artifacts.artifact_path(artifact), caption
        poster = artifacts.poster(holding)
        return artifacts.artifact_path(poster or artifact), f"video · {artifact.frames} frames"

    def show(artifact_id: str, request: gr.Request):
        info = artifacts.artifact_info(ctx.current_user(request), artifact_id)
        text = (f"**{info['kind']}** `{artifact_id[:16]}…` · {info['width']}×{info['height']} · "
                f"{info['size']:,} bytes" + (f" · seed {info['seed']}" if info["seed"] is not None else ""))
        step = _step_summary(info["recipe"])
        if "prompt" in step:
            text += f"  \n**Prompt:** {step['prompt']}"
        if "frames" in step:            # a video step: one line for its model(s), size, length and settings
            text += "  \n" + video_line(step)
        elif "prompt" in step:
            text += (f"  \n**Model:** {step['model']} · {step['steps']} steps"
                     f" · CFG {step['cfg_scale']:g} · {step['sampler']} / {step['schedule']}")
        elif info.get("video"):
            text += f"  \n**Video:** {info['video'].get('frames')} frames at {info['video'].get('fps'):g} fps"
        links = [(f"{e['relation']} ← {e['artifact_id'][:12]}…", e["artifact_id"]) for e in info["parents"]]
        links += [(f"{e['relation']} → {e['artifact_id'][:12]}…", e["artifact_id"]) for e in info["children"]]
        return (artifact_id, text, info, "", gr.update(visible=False),
                gr.Dropdown(choices=links, value=None, interactive=bool(links)))

    @user_errors
    def select(ids: list, event: gr.SelectData, request: gr.Request = None):
        return show(ids[event.index], request)

    @user_errors
    def walk(artifact_id: str | None, request: gr.Request = None):
        if not artifact_id:
            return (gr.update(),) * 6
        try:
            return show(artifact_id.strip(), request)
        except NotFound:
            gr.Warning(f"{artifact_id[:40]!r} is not one of your images or videos; pick a parent or a child "
                       "from the list.")
            return (*(gr.update(),) * 5, gr.Dropdown(value=None))

    @user_errors
    def run_replay(artifact_id: str, request: gr.Request = None, progress=gr.Progress()):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        path, outcome = replay_and_wait(ctx, ctx.current_user(request), artifact_id, progress)
        verdict = outcome.get("verdict") or (
            "**Identical:** the replay made the same bytes." if outcome["identical"] else
            f"**Different:** the replay made `{outcome['artifact_id'][:16]}…` (another device or library "
            "version changes the bytes).")
        return verdict, gr.update(value=path, visible=True)

    @user_errors
    def use_settings(artifact_id: str, request: gr.Request = None):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        user = ctx.current_user(request)
        info = artifacts.artifact_info(user, artifact_id)
        plan = info["recipe"].get("plan")
        if not plan:
            raise gr.Error("This artifact has no recipe of yours: you uploaded it; none of your jobs made it.")
        values, control_id, notes = form_values(ExecutionPlan.from_dict(plan), info["recipe"]["step"], ctx.styles,
                                                advanced["lora_weight"])
        if control_id:
            values["control_image"] = artifacts.artifact_path(artifacts.artifact(user, control_id))
        # A LoRA file added since the page was built is not among the list's choices yet.
        values["loras"] = gr.Dropdown(choices=sorted({*ctx.loras(), *values["loras"]}), value=values["loras"])
        for note in notes:
            gr.Warning(note)
        return {**{advanced[name]: value for name, value in values.items()}, advanced["seed"]: info["seed"],
                tabs: gr.Tabs(selected=advanced_tab_id)}

    def sender(tab_id: str):
        @user_errors
        def send(artifact_id: str, request: gr.Request = None):
            if not artifact_id:
                raise gr.Error("Select an image first.")
            artifact = artifacts.artifact(ctx.current_user(request), artifact_id)
            if is_video(artifact):
                raise gr.Error("That is a video; the editing tabs take an image. Send it to video to interpolate "
                               "it or download it as a GIF.")
            return artifacts.artifact_path(artifact), gr.Tabs(selected=tab_id)
        return send

    @user_errors
    def to_video(artifact_id: str, request: gr.Request = None):
        """An image goes to Image to video; a video (img2vid takes an image) goes to the player, ready to
        interpolate or download."""
        if not artifact_id:
            raise gr.Error("Select an image or a video first.")
        artifact = artifacts.artifact(ctx.current_user(request), artifact_id)
        path, switch = artifacts.artifact_path(artifact), gr.Tabs(selected=video[0])
        if not is_video(artifact):
            return path, gr.update(), gr.update(), gr.update(), gr.Tabs(selected=video[1]["image_section"]), switch
        gr.Info("Image to video takes an image, so the video went to the player: interpolate it or download it.")
        details = {"artifact_id": artifact.id, "frames": artifact.frames, "fps": artifact.fps,
                   "width": artifact.width, "height": artifact.height}
        summary = (f"**Video** `{artifact.id[:16]}…` from the Gallery · {artifact.width}×{artifact.height} · "
                   f"{artifact.frames} frames at {artifact.fps:g} fps")
        return gr.update(), path, summary, details, gr.update(), switch

    shown_outputs = [selected, heading, recipe, replay_result, replay_file, related]
    refresh.click(load, None, [gallery, shown], api_visibility="private")
    gallery.select(select, [shown], shown_outputs, api_visibility="private")
    related.input(walk, [related], shown_outputs, api_visibility="private")
    replay.click(run_replay, [selected], [replay_result, replay_file], api_visibility="private",
                 concurrency_limit=None)
    reuse.click(use_settings, [selected], [*advanced.values(), tabs], api_visibility="private")
    for label, (tab_id, target) in send_to.items():
        send_buttons[label].click(sender(tab_id), [selected], [target, tabs], api_visibility="private")
    if video:
        v = video[1]
        send_video.click(to_video, [selected], [v["image"], v["player"], v["summary"], v["info"], v["sections"], tabs],
                         api_visibility="private")
    return {"gallery": gallery, "load": load, "outputs": [gallery, shown]}
