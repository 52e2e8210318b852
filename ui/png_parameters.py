"""Reading the parameters a PNG carries back into a tab's form: AUTOMATIC1111's PNG Info habit.

A PNG made by A1111, Forge, Fooocus or Atelier carries its `parameters` text ("infotext",
`pipelines.infotext`); one made by Atelier also carries its recipe (the `atelier` chunk). Dropped on an
image input, such a PNG brings a small notice with a "Read parameters" button (`ParametersOffer`) that
fills the tab's prompt, negative prompt, steps, CFG, sampler, schedule, seed and size; the Simple and
Advanced tabs, which take no image, get a "Read a PNG's parameters" file drop (`png_info_drop`).

The reading is plain text work on the server (PIL reads the chunks; nothing here imports torch), and
the mapping from the text to the form's names (`form_values`) is a pure function the tests pin.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import gradio as gr
import PIL.Image

from pipelines.infotext import parse_infotext
from pipelines.samplers import FLOW_SAMPLERS, SAMPLERS, SCHEDULES

# The form's names (as the spec spells them) that a PNG's parameters fill, in the order a person reads them.
FORM_NAMES = ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed", "width", "height")
QUIET = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}

# A1111 labels back to the names the spec takes ("DPM++ 2M" -> "dpmpp_2m"); "euler_a" is only an alias.
_SAMPLER_NAMES = {s.a1111.lower(): s.name for s in (*SAMPLERS.values(), *FLOW_SAMPLERS.values()) if s.name != "euler_a"}
_SCHEDULE_NAMES = {**{s.a1111.lower(): s.name for s in SCHEDULES.values()}, "beta": "beta"}
# The style that leaves a prompt as it is (configs/styles.toml): a PNG's prompt already has its style applied.
UNSTYLED = "None"


def sampler_names(sampler: str, schedule: str = "") -> tuple[str | None, str | None]:
    """The spec's sampler and schedule names for A1111's labels ("DPM++ 2M", "Karras"); also the older
    combined label ("DPM++ 2M Karras", from before A1111 wrote "Schedule type"). None for a label this
    server does not know, or for "Automatic" (the sampler's own default). ComfyUI names pass through."""
    sampler, schedule = sampler.strip(), schedule.strip()
    name = _SAMPLER_NAMES.get(sampler.lower()) or (sampler if sampler in SAMPLERS else None)
    if name is None and not schedule:
        for label, schedule_name in _SCHEDULE_NAMES.items():
            if sampler.lower().endswith(" " + label):
                base = _SAMPLER_NAMES.get(sampler[:-len(label) - 1].lower())
                if base is not None:
                    return base, schedule_name
    chosen = _SCHEDULE_NAMES.get(schedule.lower()) or (schedule if schedule in SCHEDULES else None)
    return name, chosen


def _number(text, kind: type):
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if kind is int and value == int(value) else (value if kind is float else None)


def form_values(text: str) -> dict:
    """The form's values (keyed by FORM_NAMES) that an A1111 `parameters` text gives; only those it holds
    in a form the form takes (a "Size: 512x768" gives width and height, an unknown sampler gives none)."""
    read = parse_infotext(text)
    values = {"prompt": read.get("prompt", ""), "negative_prompt": read.get("negative_prompt", "")}
    for name, key, kind in (("steps", "Steps", int), ("seed", "Seed", int)):
        values[name] = _number(read.get(key, ""), kind)
    # FLUX's guidance is its "Distilled CFG Scale" (Forge); its "CFG scale" is then 1.
    values["cfg_scale"] = _number(read.get("Distilled CFG Scale") or read.get("CFG scale", ""), float)
    values["sampler"], values["schedule"] = sampler_names(read.get("Sampler", ""), read.get("Schedule type", ""))
    width, _, height = read.get("Size", "").partition("x")
    values["width"], values["height"] = _number(width, int), _number(height, int)
    return {name: value for name, value in values.items() if value is not None and value != ""}


def recipe_values(recipe: Mapping) -> dict:
    """The form's values from Atelier's recipe (the `atelier` chunk: plan, step, index), for a PNG that has
    it but lost its `parameters` text; {} when the recipe names no step with a prompt."""
    steps = (recipe.get("plan") or {}).get("steps") or []
    step = next((s for s in steps if isinstance(s, dict) and s.get("id") == recipe.get("step")), None)
    if step is None or "prompt" not in step:
        return {}
    values = {name: step.get(name) for name in FORM_NAMES if name != "seed"}
    seeds, index = step.get("seeds") or [], recipe.get("index", 0)
    if isinstance(index, int) and 0 <= index < len(seeds):
        values["seed"] = seeds[index]
    return {name: value for name, value in values.items() if value is not None and value != ""}


def image_texts(value) -> dict[str, str]:
    """The text chunks of an image input's value: a file path (gr.Image, gr.File), or an ImageEditor's
    {"background": PIL image, ...}; {} for anything that is not an image with text chunks."""
    if isinstance(value, dict):
        value = value.get("background")
    if isinstance(value, PIL.Image.Image):
        info = value.info
    elif isinstance(value, str) and value:
        try:
            with PIL.Image.open(value) as image:
                info = dict(image.info)
        except (OSError, ValueError, PIL.Image.DecompressionBombError):
            return {}
    else:
        return {}
    return {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str)}


def png_parameters(value) -> dict:
    """The form's values the image in `value` carries (`image_texts`): from its `parameters` text, else
    from Atelier's recipe; {} when it carries neither."""
    texts = image_texts(value)
    if texts.get("parameters", "").strip():
        return form_values(texts["parameters"])
    try:
        recipe = json.loads(texts.get("atelier", ""))
    except (ValueError, RecursionError):
        return {}
    return recipe_values(recipe) if isinstance(recipe, dict) else {}


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
                raise gr.Error("This image carries no parameters (A1111 `parameters` text or Atelier's recipe).")
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
        return gr.File(label="Drop a PNG made by Atelier, A1111, Forge or Fooocus", file_types=["image"],
                       height=90, elem_id=f"{prefix}-png-info")


def wire_drop(drop: gr.File, form: Mapping[str, gr.components.Component], offered=None, derive=None) -> None:
    """Fill `form` (controls by the spec's names, and by the names `derive` adds) from a PNG uploaded to
    `drop` (`png_info_drop`), as `ParametersOffer.wire` does on "Read parameters". `derive(values) -> values`
    adds what a tab works out itself (the Simple tab's aspect ratio from the size)."""
    names = list(form)

    def read(path, *current):
        values = png_parameters(path)
        if not values:
            gr.Warning("This file carries no parameters (A1111 `parameters` text or Atelier's recipe).")
            return {}
        gr.Info(f"Read from the PNG: {describe(values)}.")
        choices = offered(dict(zip(names, current))) if offered else None
        return fill(derive(values) if derive else values, form, choices)

    drop.upload(read, [drop, *form.values()], list(form.values()), **QUIET)
