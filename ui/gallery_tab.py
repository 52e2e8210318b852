"""The Gallery tab: past artifacts newest first (a video shows as its poster), filtered (my outputs, uploads,
videos, all) and searched by prompt and model, a page of 48 at a time (the database pages:
`ArtifactCatalogue.browse`). Select one to see its recipe and its lineage as thumbnails captioned in words
("upscaled from"; select one to go to it), replay it (with progress), download the stored file, share it by
link, delete it from the Gallery, copy its settings into the Advanced tab, or send it to an editing tab with
its prompt and settings (`carried_values`) or to the Video tab.

"Use these settings" fills the Advanced tab so that Generate makes the same plan again (issue 18): the
txt2img step's settings, its LoRAs, its ControlNet with the stored control image, and a hires fix's
upscale and repaint. `form_values` reads the plan back as the request that makes it (`recipes.spec_of`), maps
that onto the form, and checks, as the compiler would read the form, that it gives back the same prompts
and LoRAs."""
from __future__ import annotations

import pathlib
import tempfile

import gradio as gr

from auth.sharing import create_share
from configs import Style
from pipelines.errors import NotFound
from pipelines.plan import ExecutionPlan
from pipelines.prompt_syntax import extract_loras
from pipelines.recipes import spec_of
from pipelines.spec import Node, Txt2Img, WorkflowSpec
from queueing.catalogue import PAGE_SIZE
from storage.blobs import write_whole
from ui.account_tab import page_address, share_url
from ui.common import UIContext, is_video, replay_and_wait, user_errors
from ui.generate import video_line

HIRES_STEPS = ("hires_up", "hires")    # the node ids ui.common.with_hires_fix gives its upscale and repaint
FILTERS = {"My outputs": "outputs", "Uploads": "uploads", "Videos": "videos", "All": "all"}
# A lineage thumbnail's caption, in words: how the selected artifact stands to a parent ("upscaled from" it) and
# to a child ("upscaled into" it). "repainted" becomes "animated" where the one made is a video.
PARENT_WORDS = {"source": "repainted from", "mask": "its mask", "control": "guided by", "upscale_of": "upscaled from",
                "frames_of": "interpolated from", "poster_of": "poster of", "replay_of": "replay of"}
CHILD_WORDS = {"source": "repainted into", "mask": "mask of", "control": "guide of", "upscale_of": "upscaled into",
               "frames_of": "interpolated into", "poster_of": "its poster", "replay_of": "replayed as"}


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
                 slider: gr.Slider | None) -> tuple[dict, list[str]]:
    """The Advanced tab's prompt, negative prompt, style, LoRAs and LoRA weight that give back the prompts and
    LoRAs of `params` (a txt2img step read back) and its style `style_name` (the step's label), and notes on
    what could not be given back. `slider`: the form's LoRA weight slider; None for a form without a LoRA
    list (an editing tab's), where LoRAs go back into the prompt as tags.

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
    listed = slider is not None and weight is not None and slider.minimum <= weight <= slider.maximum and (
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
        raise gr.Error(f"This came from {node.kind}; Use these settings fills the Advanced tab's text-to-image "
                       "form. Replay it, or use a Send to button: it carries the picture (a video's first frame) "
                       "with its prompt and settings.")
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


def carried_values(plan: ExecutionPlan, step_id: str, seed: int | None, names, styles: tuple[Style, ...]) -> dict:
    """What "Send to" carries into an editing tab along with the picture: of the settings the tab has (`names`,
    keyed as the spec names them), those the step `step_id` of `plan` that made it was run with, and its
    `seed`. The prompts are read back as `form_prompts` reads them (the style taken off where the prompt still
    fits its template, LoRAs as `<lora:...>` tags, since the editing tabs have no LoRA list)."""
    spec = spec_of(plan)
    node = next((n for n in spec.nodes if n.id == step_id), None)
    if node is None:
        return {}
    params = node.params
    values = {name: getattr(params, name) for name in names if getattr(params, name, None) is not None}
    if isinstance(getattr(params, "prompt", None), str) and hasattr(params, "loras"):
        prompts, _ = form_prompts(params, getattr(plan.step(node.id), "style", ""), styles, None)
        values.update({name: value for name, value in prompts.items() if name in names})
    if "seed" in names and seed is not None:
        values["seed"] = seed
    return values


def _fits(component, value) -> bool:
    """Whether a dropdown or radio offers `value` (a model another tab does not offer, say); other
    components take any value."""
    choices = getattr(component, "choices", None)
    if not choices or getattr(component, "allow_custom_value", False):
        return True
    return value in [c[1] if isinstance(c, (tuple, list)) else c for c in choices]


def build(ctx: UIContext, advanced: dict, tabs: gr.Tabs, advanced_tab_id: str, send_to: dict,
          video: tuple[str, dict] | None = None) -> dict:
    """`send_to`: button label -> (tab id, its image component, its settings: spec name -> component) for the
    "Send to" buttons; `video`: (tab id, the Video tab's handles) for "Send to video". Returns the handles
    app.py wires to the tab's select: "load" with its "inputs" and "outputs"."""
    artifacts = ctx.artifacts
    shown = gr.State([])            # artifact ids in gallery order
    page = gr.State(1)
    selected = gr.State("")
    lineage_ids = gr.State([])
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                filter_by = gr.Radio(list(FILTERS.items()), value="outputs", show_label=False, scale=3,
                                     elem_id="gallery-filter")
                search = gr.Textbox(placeholder="Search prompts and models", show_label=False, scale=2,
                                    max_length=200, elem_id="gallery-search")
                refresh = gr.Button("Refresh", size="sm", scale=0, min_width=80, elem_id="gallery-refresh")
            gallery = gr.Gallery(label="Your images and videos", columns=4, height=520, format="png",
                                 allow_preview=False, elem_id="gallery-grid", elem_classes=["atelier-thumbs"])
            with gr.Row(equal_height=True):
                previous = gr.Button("← Previous", size="sm", scale=1, elem_id="gallery-previous")
                count = gr.Markdown("", elem_id="gallery-count")
                following = gr.Button("Next →", size="sm", scale=1, elem_id="gallery-next")
        with gr.Column(scale=2):
            heading = gr.Markdown("Select an image or a video to see how it was made.", elem_id="gallery-heading")
            lineage = gr.Gallery(label="Made from and used for (select one to go to it)", columns=4, height=170,
                                 format="png", allow_preview=False, elem_id="gallery-lineage",
                                 elem_classes=["atelier-thumbs", "atelier-lineage"])
            with gr.Row():
                replay = gr.Button("Replay", elem_id="gallery-replay")
                reuse = gr.Button("Use these settings", elem_id="gallery-reuse")
            with gr.Row():
                send_buttons = {label: gr.Button(f"Send to {label}", size="sm",
                                                 elem_id=f"gallery-send-{label.lower()}") for label in send_to}
                send_video = gr.Button("Send to video", size="sm", elem_id="gallery-send-video") if video else None
            with gr.Row():
                download = gr.DownloadButton("Download", size="sm", value=None, elem_id="gallery-download")
                share = gr.Button("Share", size="sm", elem_id="gallery-share")
                delete = gr.Button("Delete", size="sm", variant="stop", elem_id="gallery-delete")
            with gr.Row(visible=False) as confirm_row:      # a second click, so one slip deletes nothing
                gr.Markdown("Delete it from your Gallery?")
                confirm = gr.Button("Yes, delete", size="sm", variant="stop", scale=0, elem_id="gallery-delete-yes")
                keep = gr.Button("Keep it", size="sm", scale=0, elem_id="gallery-delete-no")
            share_link = gr.Textbox(label="Share link (anyone with it may see this picture)", visible=False,
                                    interactive=False, buttons=["copy"], elem_id="gallery-share-link")
            replay_result = gr.Markdown(elem_id="gallery-replay-result")
            replay_file = gr.File(label="Replayed file", visible=False)
            recipe = gr.JSON(label="Recipe and lineage", elem_id="gallery-recipe")

    @user_errors
    def load(filter_value: str, words: str, number: int, request: gr.Request = None):
        """The grid at page `number` of what the filter and the search words pick, and the count under it."""
        user = ctx.current_user(request)
        holdings, total, number = artifacts.browse(user, filter_value or "outputs", (words or "").strip(),
                                                   int(number or 1))
        first = (number - 1) * PAGE_SIZE + 1
        text = (f"items {first:,}–{first + len(holdings) - 1:,} of {total:,}".replace(",", " ") if holdings else
                "Nothing here yet." if not (words or "").strip() else "Nothing matches the search.")
        return ([thumbnail(h) for h in holdings], [h.artifact_id for h in holdings], number, text,
                gr.Button(interactive=number > 1), gr.Button(interactive=first + len(holdings) - 1 < total))

    def thumbnail(holding) -> tuple[str, str]:
        """(file, caption) for the grid, as the user holds the artifact: a seed only for what their own
        job made; a video shows as its poster (its first frame) where they made one."""
        artifact = holding.artifact
        if not is_video(artifact):
            caption = f"seed {holding.seed}" if holding.seed is not None else holding.kind
            return artifacts.artifact_path(artifact), caption
        poster = artifacts.poster(holding)
        return artifacts.artifact_path(poster or artifact), f"video · {artifact.frames} frames"

    def related(user, artifact, info: dict) -> tuple[list, list[str]]:
        """The lineage as thumbnails captioned in words ("upscaled from"), parents first; a video's poster is
        left out (the video shows as it)."""
        items, ids = [], []
        edges = [(e, PARENT_WORDS, artifact) for e in info["parents"]]
        edges += [(e, CHILD_WORDS, None) for e in info["children"] if e["relation"] != "poster_of"]
        for edge, words, child in edges:
            holding = artifacts.holding(user, edge["artifact_id"])
            picture, _ = thumbnail(holding)
            made_video = is_video(child if child is not None else holding.artifact)
            word = "animated" if edge["relation"] == "source" and made_video else None
            caption = words.get(edge["relation"], edge["relation"].replace("_", " "))
            items.append((picture, caption.replace("repainted", word) if word else caption))
            ids.append(edge["artifact_id"])
        return items, ids

    def show(artifact_id: str, request: gr.Request):
        user = ctx.current_user(request)
        info = artifacts.artifact_info(user, artifact_id)
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
        items, ids = related(user, artifacts.artifact(user, artifact_id), info)
        return (artifact_id, text, info, "", gr.update(visible=False), items, ids,
                download_file(user, artifact_id), gr.update(value="", visible=False), gr.Row(visible=False))

    def download_file(user, artifact_id: str) -> str:
        """The stored file, byte for byte, under a name a person can read (`ArtifactCatalogue.download`), in a
        folder of its own per artifact, so choosing it again rewrites the same file."""
        data, name = artifacts.download(user, artifact_id)
        path = pathlib.Path(tempfile.gettempdir(), "atelier-downloads", artifact_id[:16], name)
        write_whole(path, data)      # a concurrent download of the same file never reads half of it
        return str(path)

    @user_errors
    def select(ids: list, event: gr.SelectData, request: gr.Request = None):
        return show(ids[event.index], request)

    @user_errors
    def walk(ids: list, event: gr.SelectData, request: gr.Request = None):
        if event.index >= len(ids):
            return (gr.update(),) * 10
        try:
            return show(ids[event.index], request)
        except NotFound:
            gr.Warning("That one is no longer among your images and videos; press Refresh.")
            return (gr.update(),) * 10

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

    def sender(label: str, tab_id: str, image, settings: dict):
        @user_errors
        def send(artifact_id: str, request: gr.Request = None):
            if not artifact_id:
                raise gr.Error("Select an image first.")
            user = ctx.current_user(request)
            holding = artifacts.holding(user, artifact_id)
            picture = holding.artifact
            if is_video(picture):
                poster = artifacts.poster(holding)
                if poster is None:
                    raise gr.Error("That is a video you uploaded, and the editing tabs take an image. Send it to "
                                   "video to interpolate it or download it as a GIF.")
                gr.Info(f"That is a video: its first frame went to {label}, with its prompt and settings.")
                picture = poster
            recipe = artifacts.artifact_info(user, artifact_id)["recipe"]
            values = carried_values(ExecutionPlan.from_dict(recipe["plan"]), recipe.get("step", ""), holding.seed,
                                    list(settings), ctx.styles) if recipe.get("plan") else {}
            left_out = [name for name, value in values.items() if not _fits(settings[name], value)]
            if left_out:
                gr.Warning(f"{label} does not offer this picture's {', '.join(left_out)} "
                           f"({', '.join(str(values[n]) for n in left_out)}); the tab keeps its own.")
            return {image: artifacts.artifact_path(picture), tabs: gr.Tabs(selected=tab_id),
                    **{settings[name]: value for name, value in values.items() if name not in left_out}}
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

    @user_errors
    def make_share(artifact_id: str, request: gr.Request = None):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        link = create_share(ctx.current_user(request), [artifact_id])
        return gr.update(value=share_url(page_address(request, ctx.public_url), link.token), visible=True)

    @user_errors
    def remove(artifact_id: str, filter_value: str, words: str, number: int, request: gr.Request = None):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        artifacts.delete(ctx.current_user(request), artifact_id)
        gr.Info("Deleted from your Gallery.")
        return (*load(filter_value, words, number, request), "", "Select an image or a video to see how it was made.",
                None, "", gr.update(visible=False), [], [], None, gr.update(value="", visible=False),
                gr.Row(visible=False))

    @user_errors
    def ask(artifact_id: str):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        return gr.Row(visible=True)

    def first_page(filter_value: str, words: str, request: gr.Request = None):
        return load(filter_value, words, 1, request)

    def page_before(filter_value: str, words: str, number: int, request: gr.Request = None):
        return load(filter_value, words, number - 1, request)

    def page_after(filter_value: str, words: str, number: int, request: gr.Request = None):
        return load(filter_value, words, number + 1, request)

    listing = [filter_by, search, page]
    listed = [gallery, shown, page, count, previous, following]
    shown_outputs = [selected, heading, recipe, replay_result, replay_file, lineage, lineage_ids, download,
                     share_link, confirm_row]
    quiet = {"api_visibility": "private"}
    refresh.click(load, listing, listed, **quiet)
    filter_by.input(first_page, [filter_by, search], listed, **quiet)
    search.submit(first_page, [filter_by, search], listed, **quiet)
    previous.click(page_before, listing, listed, **quiet)
    following.click(page_after, listing, listed, **quiet)
    gallery.select(select, [shown], shown_outputs, **quiet)
    lineage.select(walk, [lineage_ids], shown_outputs, **quiet)
    # The result Markdown is empty until the verdict, so the progress (step i of n) shows on the recipe.
    replay.click(run_replay, [selected], [replay_result, replay_file], show_progress_on=[recipe],
                 concurrency_limit=None, **quiet)
    reuse.click(use_settings, [selected], [*advanced.values(), tabs], **quiet)
    for label, (tab_id, target, settings) in send_to.items():
        send_buttons[label].click(sender(label, tab_id, target, settings), [selected],
                                  [target, tabs, *settings.values()], **quiet)
    if video:
        v = video[1]
        send_video.click(to_video, [selected], [v["image"], v["player"], v["summary"], v["info"], v["sections"], tabs],
                         **quiet)
    share.click(make_share, [selected], [share_link], **quiet)
    delete.click(ask, [selected], [confirm_row], **quiet)
    keep.click(lambda: gr.Row(visible=False), None, [confirm_row], **quiet)
    confirm.click(remove, [selected, *listing], [*listed, *shown_outputs], **quiet)
    return {"gallery": gallery, "load": load, "inputs": listing, "outputs": listed}
