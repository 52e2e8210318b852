"""The PNG Info tab, as AUTOMATIC1111's: drop an image, see the parameters it carries, whichever tool made
it (A1111, Forge, ComfyUI, Fooocus, InvokeAI or Atelier: `pipelines.png_info`), and "Send to" a tab, which
fills that tab's form (`ui.png_parameters.fill`) and, for a tab that works on a picture, puts the image in.

The drop is a gr.File, not a gr.Image, so the handler reads the bytes as they came (a gr.Image may
re-encode an upload, and its text chunks with it); the picture beside it is only a preview.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import gradio as gr

from pipelines.errors import AtelierError
from pipelines.png_info import NotAnImage, read_png_info
from ui.common import UIContext
from ui.png_parameters import FORM_NAMES, QUIET, describe, fill

WELCOME = "Drop a PNG made by Atelier, AUTOMATIC1111, Forge, ComfyUI, Fooocus or InvokeAI to see its parameters."
SOURCE_NAMES = {"a1111": "AUTOMATIC1111 (or Forge, SD.Next)", "comfyui": "ComfyUI", "fooocus": "Fooocus",
                "invokeai": "InvokeAI", "atelier": "Atelier", "novelai": "NovelAI"}


@dataclass(frozen=True)
class Target:
    """A tab the panel sends parameters to: its tab id, its form (spec name -> control), its picture input
    (None for a tab that takes none) and `offered(form values) -> {name: choices}` (see `fill`)."""

    tab_id: str
    form: Mapping[str, gr.components.Component]
    image: gr.components.Component | None = None
    offered: Callable[[dict], dict] | None = None


def _read(path: str | None) -> dict:
    """What the file at `path` carries (`read_png_info`); raises AtelierError when it is no image or carries
    nothing."""
    if not path:
        return {}
    with open(path, "rb") as f:
        return read_png_info(f.read())


def build(ctx: UIContext, tabs: gr.Tabs, targets: Mapping[str, Target]) -> None:
    """The panel, with a "Send to LABEL" button (elem_id pnginfo-send-TAB_ID) for each of `targets` (button
    label -> Target); sending switches `tabs` to the target's tab."""
    with gr.Row():
        with gr.Column(scale=2):
            drop = gr.File(label="PNG", file_types=["image"], height=110, elem_id="pnginfo-file")
            preview = gr.Image(label="Image", type="filepath", interactive=False, height=300,
                               elem_id="pnginfo-preview")
        with gr.Column(scale=3):
            summary = gr.Markdown(WELCOME, elem_id="pnginfo-summary")
            table = gr.JSON(label="Parameters", visible=False, elem_id="pnginfo-parameters")
            raw = gr.Textbox(label="Text found in the image", lines=5, max_lines=12, interactive=False,
                             visible=False, buttons=["copy"], elem_id="pnginfo-raw")
            with gr.Row():
                buttons = {label: gr.Button(f"Send to {label}", size="sm", interactive=False,
                                            elem_id=f"pnginfo-send-{target.tab_id}")
                           for label, target in targets.items()}

    def show(path):
        try:
            info = _read(path)
        except AtelierError as e:
            return (None if isinstance(e, NotAnImage) else path, e.message,
                    gr.update(visible=False), gr.update(visible=False),
                    *(gr.update(interactive=False) for _ in buttons))
        if not info:
            return (None, WELCOME, gr.update(visible=False), gr.update(visible=False),
                    *(gr.update(interactive=False) for _ in buttons))
        source = SOURCE_NAMES.get(info["source"], info["source"])
        table_values = {name: value for name, value in info.items() if name not in ("source", "raw")}
        return (path, f"Made with **{source}**: {describe(info)}.", gr.update(value=table_values, visible=True),
                gr.update(value=info["raw"], visible=True), *(gr.update(interactive=True) for _ in buttons))

    outputs = [preview, summary, table, raw, *buttons.values()]
    drop.upload(show, drop, outputs, **QUIET)
    drop.clear(lambda: show(None), None, outputs, **QUIET)

    def sender(label: str, target: Target):
        names = list(target.form)

        def send(path, *current):
            try:
                info = _read(path)
            except AtelierError as e:
                raise gr.Error(e.message, print_exception=False) from None
            if not info:
                raise gr.Error("Drop a PNG first.", print_exception=False)
            values = {name: value for name, value in info.items() if name in FORM_NAMES}
            choices = target.offered(dict(zip(names, current))) if target.offered else None
            updates = fill(values, target.form, choices)
            if target.image is not None:
                updates[target.image] = path
            gr.Info(f"Sent to {label}: {describe(values)}.")
            return {**updates, tabs: gr.Tabs(selected=target.tab_id)}
        return send

    for label, target in targets.items():
        outputs = [*target.form.values(), tabs] + ([target.image] if target.image is not None else [])
        buttons[label].click(sender(label, target), [drop, *target.form.values()], outputs, **QUIET)
