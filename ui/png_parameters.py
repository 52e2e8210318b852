"""Reading the parameters a PNG carries back into a tab's form: AUTOMATIC1111's PNG Info habit.

A PNG made by A1111, Forge, ComfyUI, Fooocus, InvokeAI or Atelier carries its settings (read in one place,
`pipelines.png_info`: A1111's `parameters` text, ComfyUI's graph, Atelier's recipe, ...). Dropped on an
image input, such a PNG brings a small notice with a "Read parameters" button (`ParametersOffer`) that
fills the tab's prompt, negative prompt, steps, CFG, sampler, schedule, seed and size; the Simple and
Advanced tabs, which take no image, get a "Read a PNG's parameters" file drop (`png_info_drop`).

The PNG Info panel (`ui.png_info_tab`) shows all a PNG carries and sends it to a tab's form with `fill`.
The reading is plain text work on the server (nothing here imports torch), and the mapping from the text
to the form's names (`form_values`) is a pure function the tests pin.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import gradio as gr
import PIL.Image

from pipelines.png_info import FORM_NAMES, image_info, infotext_values

QUIET = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
# The style that leaves a prompt as it is (configs/styles.toml): a PNG's prompt already has its style applied.
UNSTYLED = "None"


def form_values(text: str) -> dict:
    """The form's values (keyed by FORM_NAMES) that an A1111 `parameters` text gives (`infotext_values`)."""
    return {name: value for name, value in infotext_values(text).items() if name in FORM_NAMES}


def png_info(value) -> dict:
    """What the image in an image input's `value` carries (`pipelines.png_info.image_info`: source, the form's
    values, model, raw): `value` is a file path (gr.Image, gr.File) or an ImageEditor's {"background": PIL
    image, ...}; {} for anything that is not an image with parameters."""
    if isinstance(value, dict):
        value = value.get("background")
    if isinstance(value, PIL.Image.Image):
        return image_info(value)
    if not (isinstance(value, str) and value):
        return {}
    try:
        with PIL.Image.open(value) as image:
            return image_info(image)
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        return {}


def png_parameters(value) -> dict:
    """The form's values the image in `value` carries (`png_info`), whichever tool wrote them; {} when it
    carries none."""
    return {name: v for name, v in png_info(value).items() if name in FORM_NAMES}


def describe(values: Mapping) -> str:
    """One line on what a PNG carries: its prompt (shortened), steps, seed and size."""
    prompt = values.get("prompt", "")
    parts = [f"“{prompt[:60]}{'…' if len(prompt) > 60 else ''}”" if prompt else "no prompt"]
    if "steps" in values:
        parts.append(f"{values['steps']} steps")
    if "seed" in values:
        parts.append(f"seed {values['seed']}")
    if "width" in values and "height" in values:
        parts.append(f"{values['width']}×{values['height']}")
    return ", ".join(parts)


def fill(values: Mapping, form: Mapping[str, gr.components.Component], offered: Mapping[str, tuple] | None = None
         ) -> dict:
    """Updates of `form`'s controls (by name) to `values`, for a handler to return. A sampler or schedule
    that `offered` (name -> the choices the chosen model offers) does not list is left as it is, with a
    warning, rather than set to a choice the dropdown cannot show. A form with a style gets UNSTYLED with the
    prompt, since the prompt a PNG carries has its style applied already."""
    updates = {}
    style = form.get("style")
    if "prompt" in values and style is not None and UNSTYLED in (value for _, value in style.choices):
        updates[style] = UNSTYLED
    for name, value in values.items():
        if name not in form:
            continue
        if offered and name in offered and value not in offered[name]:
            gr.Warning(f"The PNG's {name} {value!r} is not offered for the chosen model; the form keeps its own.")
            continue
        updates[form[name]] = value
    return updates


def nearest_aspect(width: int, height: int, aspects: Mapping[str, tuple[int, int]]) -> str:
    """The name in `aspects` (name -> (w, h)) whose ratio is closest to width:height (on a log scale, so
    2:1 and 1:2 are as far from 1:1)."""
    ratio = math.log(width / height)
    return min(aspects, key=lambda name: abs(math.log(aspects[name][0] / aspects[name][1]) - ratio))


@dataclass(frozen=True)
class ParametersOffer:
    """The notice under an image input that says the dropped PNG carries parameters, and its "Read
    parameters" button (elem_ids PREFIX-png-notice, PREFIX-png-read); both hidden until such a PNG comes."""

    notice: gr.Markdown
    read: gr.Button

    def wire(self, image: gr.components.Component, form: Mapping[str, gr.components.Component],
             offered=None) -> None:
        """Show the offer when a PNG with parameters is uploaded to `image`, hide it when the image is
        cleared, and fill `form` (controls by the spec's names; the names it lacks are skipped) on "Read
        parameters". `offered(form values) -> {name: choices}` gives the sampler and schedule choices of the
        model the form has chosen, if it has a model."""
        names = list(form)

        def check(value):
            values = png_parameters(value)
            if not values:
                return gr.update(visible=False), gr.update(visible=False)
            return (gr.update(value=f"This PNG carries its parameters: {describe(values)}.", visible=True),
                    gr.update(visible=True))

        def read(value, *current):
            values = png_parameters(value)
            if not values:
                raise gr.Error("This image carries no parameters (A1111, ComfyUI, Fooocus, InvokeAI or Atelier "
                               "metadata).")
            choices = offered(dict(zip(names, current))) if offered else {}
            return {**fill(values, form, choices), self.notice: gr.update(visible=False),
                    self.read: gr.update(visible=False)}

        image.upload(check, image, [self.notice, self.read], **QUIET)
        image.clear(lambda: (gr.update(visible=False), gr.update(visible=False)), None, [self.notice, self.read],
                    **QUIET)
        self.read.click(read, [image, *form.values()], [*form.values(), self.notice, self.read], **QUIET)


def parameters_offer(prefix: str) -> ParametersOffer:
    """A hidden ParametersOffer, placed where it is called (under the image input); `.wire` it once the
    form exists."""
    with gr.Row(equal_height=True):
        notice = gr.Markdown(visible=False, elem_id=f"{prefix}-png-notice")
        read = gr.Button("Read parameters", size="sm", scale=0, min_width=140, visible=False,
                         elem_id=f"{prefix}-png-read")
    return ParametersOffer(notice, read)


def png_info_drop(prefix: str) -> gr.File:
    """A small "Read a PNG's parameters" file drop (elem_id PREFIX-png-info), folded, for a tab that takes
    no image; `wire_drop` fills the form from it."""
    with gr.Accordion("Read a PNG's parameters", open=False, elem_id=f"{prefix}-png-info-box"):
        return gr.File(label="Drop a PNG made by Atelier, A1111, Forge, ComfyUI, Fooocus or InvokeAI",
                       file_types=["image"], height=90, elem_id=f"{prefix}-png-info")


def wire_drop(drop: gr.File, form: Mapping[str, gr.components.Component], offered=None, derive=None) -> None:
    """Fill `form` (controls by the spec's names, and by the names `derive` adds) from a PNG uploaded to
    `drop` (`png_info_drop`), as `ParametersOffer.wire` does on "Read parameters". `derive(values) -> values`
    adds what a tab works out itself (the Simple tab's aspect ratio from the size)."""
    names = list(form)

    def read(path, *current):
        values = png_parameters(path)
        if not values:
            gr.Warning("This file carries no parameters (A1111, ComfyUI, Fooocus, InvokeAI or Atelier metadata).")
            return {}
        gr.Info(f"Read from the PNG: {describe(values)}.")
        choices = offered(dict(zip(names, current))) if offered else None
        return fill(derive(values) if derive else values, form, choices)

    drop.upload(read, [drop, *form.values()], list(form.values()), **QUIET)


def wire_paste(button: gr.Button, prompt: gr.Textbox, form: Mapping[str, gr.components.Component],
               offered=None) -> None:
    """A1111's ↙ button: an infotext pasted into `prompt` (a prompt, "Negative prompt: ...", then "Steps: 20,
    Sampler: ...") fills `form` on a click of `button`, the prompt box keeping only the prompt. A prompt that
    holds no settings is left as it is, with a warning."""
    names = list(form)

    def read(text, *current):
        values = form_values(text or "")
        if set(values) <= {"prompt"}:
            gr.Warning("The prompt holds no parameters to read: paste an A1111 infotext (the prompt, then "
                       "\"Negative prompt: ...\" and \"Steps: ..., Sampler: ..., Seed: ...\") and press ↙ again.")
            return {}
        gr.Info(f"Read from the prompt: {describe(values)}.")
        choices = offered(dict(zip(names, current))) if offered else None
        return fill(values, form, choices)

    button.click(read, [prompt, *form.values()], list(form.values()), **QUIET)
