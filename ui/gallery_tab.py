"""The Gallery tab: past artifacts newest first (a video shows as its poster). Select one to see its
recipe and lineage (and walk to its parents and children), replay it, copy its settings into the
Advanced tab, or send it to an editing tab or the Video tab."""
from __future__ import annotations

import gradio as gr

from ui.common import UIContext, is_video, replay_and_wait, user_errors
from ui.generate import video_line


def build(ctx: UIContext, advanced: dict, tabs: gr.Tabs, advanced_tab_id: str, send_to: dict,
          video: tuple[str, dict] | None = None) -> dict:
    """`send_to`: button label -> (tab id, image component) for the "Send to" buttons; `video`: (tab id,
    the Video tab's handles) for "Send to video"."""
    service = ctx.service
    shown = gr.State([])            # artifact ids in gallery order
    selected = gr.State("")
    with gr.Row():
        with gr.Column(scale=3):
            refresh = gr.Button("Refresh", size="sm", elem_id="gallery-refresh")
            gallery = gr.Gallery(label="Your images and videos", columns=4, height=520, format="png",
                                 allow_preview=False, elem_id="gallery-grid")
        with gr.Column(scale=2):
            heading = gr.Markdown("Select an image or a video to see how it was made.", elem_id="gallery-heading")
            related = gr.Dropdown([], label="Made from / used by (walk the lineage)", elem_id="gallery-related")
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
        holdings = service.recent_artifacts(user)
        return [thumbnail(h) for h in holdings], [h.artifact_id for h in holdings]

    def thumbnail(holding) -> tuple[str, str]:
        """(file, caption) for the grid, as the user holds the artifact: a seed only for what their own
        job made; a video shows as its poster (its first frame) where they made one."""
        artifact = holding.artifact
        if not is_video(artifact):
            caption = f"seed {holding.seed}" if holding.seed is not None else holding.kind
            return service.artifact_path(artifact), caption
        poster = service.poster(holding)
        return service.artifact_path(poster or artifact), f"video · {artifact.frames} frames"

    def show(artifact_id: str, request: gr.Request):
        info = service.artifact_info(ctx.current_user(request), artifact_id)
        text = (f"**{info['kind']}** `{artifact_id[:16]}…` · {info['width']}×{info['height']} · "
                f"{info['size']:,} bytes" + (f" · seed {info['seed']}" if info["seed"] is not None else ""))
        plan = info["recipe"].get("plan")
        step = next((s for s in plan["steps"] if s["id"] == info["recipe"].get("step")), {}) if plan else {}
        if "prompt" in step:
            text += f"  \n**Prompt:** {step['prompt']}"
        if "frames" in step:            # a video step: one line for its model(s), size, length and settings
            text += "  \n" + video_line({**step, **{k: step[k]["id"] for k in ("model", "motion_adapter")
                                                    if isinstance(step.get(k), dict)}})
        elif "prompt" in step:
            text += (f"  \n**Model:** {step['model']['id']} · {step['steps']} steps"
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
        return show(artifact_id, request)

    @user_errors
    def run_replay(artifact_id: str, request: gr.Request = None, progress=gr.Progress()):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        path, outcome = replay_and_wait(service, ctx.current_user(request), artifact_id, progress)
        verdict = ("**Identical:** the replay made the same bytes." if outcome["identical"] else
                   f"**Different:** the replay made `{outcome['artifact_id'][:16]}…` (another device or library "
                   "version changes the bytes).")
        return verdict, gr.update(value=path, visible=True)

    @user_errors
    def use_settings(artifact_id: str, request: gr.Request = None):
        if not artifact_id:
            raise gr.Error("Select an image first.")
        info = service.artifact_info(ctx.current_user(request), artifact_id)
        plan = info["recipe"].get("plan")
        if not plan:
            raise gr.Error("This artifact has no recipe of yours: you uploaded it; none of your jobs made it.")
        step = next(s for s in plan["steps"] if s["id"] == info["recipe"]["step"])
        if step["kind"] != "txt2img":
            raise gr.Error(f"This image came from {step['kind']}; Use these settings fills the txt2img form. "
                           "Replay it instead, or send it to an editing tab.")
        a = advanced
        return {a["model"]: step["model"]["id"], a["prompt"]: step["prompt"],
                a["negative_prompt"]: step["negative_prompt"], a["width"]: step["width"],
                a["height"]: step["height"], a["steps"]: step["steps"], a["cfg_scale"]: step["cfg_scale"],
                a["sampler"]: step["sampler"], a["schedule"]: step["schedule"], a["seed"]: info["seed"],
                a["batch_size"]: 1, a["style"]: "None",   # the plan's prompt already has the style applied
                tabs: gr.Tabs(selected=advanced_tab_id)}

    def sender(tab_id: str):
        @user_errors
        def send(artifact_id: str, request: gr.Request = None):
            if not artifact_id:
                raise gr.Error("Select an image first.")
            artifact = service.artifact(ctx.current_user(request), artifact_id)
            if is_video(artifact):
                raise gr.Error("That is a video; the editing tabs take an image. Send it to video to interpolate "
                               "it or download it as a GIF.")
            return service.artifact_path(artifact), gr.Tabs(selected=tab_id)
        return send

    @user_errors
    def to_video(artifact_id: str, request: gr.Request = None):
        """An image goes to Image to video; a video (img2vid takes an image) goes to the player, ready to
        interpolate or download."""
        if not artifact_id:
            raise gr.Error("Select an image or a video first.")
        artifact = service.artifact(ctx.current_user(request), artifact_id)
        path, switch = service.artifact_path(artifact), gr.Tabs(selected=video[0])
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
