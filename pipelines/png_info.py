"""PNG Info: the generation parameters an image carries, whichever tool made it, in one shape.

    read_png_info(data) -> {"source": "a1111", "prompt": ..., "negative_prompt": ..., "steps": 20,
                            "cfg_scale": 7.0, "sampler": "dpmpp_2m", "schedule": "karras", "seed": 1234,
                            "width": 512, "height": 768, "model": "sd15", "raw": <the text found>}

Sources, in the order they are tried:
- Atelier's own PNGs: the A1111 `parameters` text we write (`pipelines.infotext`), or, when that is lost,
  the recipe in the `atelier` chunk;
- AUTOMATIC1111, Forge and SD.Next: the `parameters` text, read with `parse_infotext` (which the infotext
  tests pin to A1111's own format rules, Forge's "Distilled CFG Scale" included);
- ComfyUI (the `prompt` API graph), Fooocus (JSON `parameters`) and InvokeAI (`invokeai_metadata`), and
  EXIF comments of JPEG/WebP files: the `sd-parsers` library, which knows each tool's layout.

Samplers and schedules come back as the spec's names (`sampler_names`); a value the form could not take
(an unknown sampler, a size that is not a number) is left out rather than guessed. Nothing here imports
torch or gradio.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping

import PIL.Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators, PromptInfo

from pipelines.errors import AtelierError
from pipelines.infotext import parse_infotext
from pipelines.samplers import FLOW_SAMPLERS, FLOW_SCHEDULES, SAMPLERS, SCHEDULES, accepted_names

# The settings a PNG's parameters give a form, by the spec's names, in the order a person reads them.
FORM_NAMES = ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed", "width", "height")
# What `read_png_info` returns besides them.
INFO_NAMES = ("source", *FORM_NAMES, "model", "raw")
SOURCES = {Generators.AUTOMATIC1111: "a1111", Generators.COMFYUI: "comfyui", Generators.FOOOCUS: "fooocus",
           Generators.INVOKEAI: "invokeai", Generators.NOVELAI: "novelai"}

# A1111 labels back to the names the spec takes ("DPM++ 2M" -> "dpmpp_2m"); "euler_a" is only an alias.


class NoParameters(AtelierError):
    """The image carries no generation parameters any known tool writes."""

    code = "no_parameters"


class NotAnImage(AtelierError):
    """The file is not an image PIL can open."""

    code = "not_an_image"


def sampler_names(sampler: str, schedule: str = "") -> tuple[str | None, str | None]:
    """The spec's sampler and schedule names for what a file wrote: A1111's labels ("DPM++ 2M", "Karras", the
    older combined "DPM++ 2M Karras") and ComfyUI's names, read by `pipelines.samplers.accepted_names` as
    everywhere else; ComfyUI's and Fooocus's "_gpu" variants ("dpmpp_2m_sde_gpu": the same sampler, noise made
    on the GPU) as the sampler they are. None for a name this server does not know, or for "Automatic" (the
    sampler's own default)."""
    sampler, schedule = str(sampler or "").strip(), str(schedule or "").strip()
    if sampler.endswith("_gpu") and sampler.removesuffix("_gpu") in SAMPLERS:
        sampler = sampler.removesuffix("_gpu")
    name, chosen = accepted_names(sampler, schedule)
    return (name if name in SAMPLERS or name in FLOW_SAMPLERS else None,
            chosen if chosen in SCHEDULES or chosen in FLOW_SCHEDULES else None)


def _number(text, kind: type):
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if kind is int and value == int(value) else (value if kind is float else None)


def _kept(values: Mapping) -> dict:
    return {name: value for name, value in values.items() if value is not None and value != ""}


def infotext_values(text: str) -> dict:
    """The form's values (keyed by FORM_NAMES, plus "model") that an A1111 `parameters` text gives; only those
    it holds in a form the form takes (a "Size: 512x768" gives width and height, an unknown sampler gives none)."""
    read = parse_infotext(text)
    values = {"prompt": read.get("prompt", ""), "negative_prompt": read.get("negative_prompt", "")}
    for name, key, kind in (("steps", "Steps", int), ("seed", "Seed", int)):
        values[name] = _number(read.get(key, ""), kind)
    # FLUX's guidance is its "Distilled CFG Scale" (Forge); its "CFG scale" is then 1.
    values["cfg_scale"] = _number(read.get("Distilled CFG Scale") or read.get("CFG scale", ""), float)
    values["sampler"], values["schedule"] = sampler_names(read.get("Sampler", ""), read.get("Schedule type", ""))
    width, _, height = read.get("Size", "").partition("x")
    values["width"], values["height"] = _number(width, int), _number(height, int)
    values["model"] = read.get("Model", "").strip()
    return _kept(values)


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
    model = step.get("model")
    values["model"] = model.get("id") if isinstance(model, dict) else None
    return _kept(values)


def text_chunks(image: PIL.Image.Image) -> dict[str, str]:
    """The text chunks (PNG tEXt/iTXt/zTXt) of an open image."""
    return {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}


def _tool_values(found: PromptInfo) -> dict:
    """The form's values from what sd-parsers read (ComfyUI, Fooocus, InvokeAI): the first sampler's settings
    (a ComfyUI graph with a second, hires pass lists the first pass first), its prompts and model, and the
    size wherever the tool keeps it."""
    sampler = found.samplers[0] if found.samplers else None
    params = dict(sampler.parameters) if sampler else {}
    values = {"prompt": found.full_prompt, "negative_prompt": found.full_negative_prompt,
              "steps": _number(params.get("steps", ""), int), "seed": _number(params.get("seed", ""), int),
              "cfg_scale": _number(params.get("cfg_scale", ""), float)}
    name, schedule = (sampler.name if sampler else ""), params.get("scheduler", "")
    if name.endswith("_k") and not schedule:      # InvokeAI's "dpmpp_2m_k": the sampler on Karras sigmas
        name, schedule = name[:-2], "karras"
    values["sampler"], values["schedule"] = sampler_names(name, schedule)
    width, height = params.get("width", found.metadata.get("width")), params.get("height", found.metadata.get("height"))
    latent = found.metadata.get("EmptyLatentImage")          # ComfyUI: the size is its empty latent's
    if width is None and isinstance(latent, list) and latent and isinstance(latent[0], dict):
        width, height = latent[0].get("width"), latent[0].get("height")
    size = found.metadata.get("Size") or found.metadata.get("resolution")
    if width is None and isinstance(size, str):
        width, _, height = size.strip("()[] ").replace(",", "x").replace(" ", "").partition("x")
    values["width"], values["height"] = _number(width or "", int), _number(height or "", int)
    values["model"] = str(sampler.model) if sampler and sampler.model else None
    return _kept(values)


def _shaped(source: str, values: Mapping, raw: str) -> dict:
    """`values` with the source and raw text, in INFO_NAMES' order (the order the PNG Info panel shows)."""
    found = {"source": source, **values, "raw": raw}
    return {name: found[name] for name in INFO_NAMES if name in found}


def image_info(image: PIL.Image.Image) -> dict:
    """The parameters an open image carries (see the module's docstring), or {} when it carries none."""
    texts = text_chunks(image)
    parameters = texts.get("parameters", "").strip()
    if parameters and not parameters.startswith("{"):          # Fooocus's own scheme is JSON
        source = "atelier" if "atelier" in texts else "fooocus" if "fooocus_scheme" in texts else "a1111"
        values = infotext_values(parameters)
        if values:
            return _shaped(source, values, parameters)
    if "atelier" in texts:
        try:
            recipe = json.loads(texts["atelier"])
        except (ValueError, RecursionError):
            recipe = None
        values = recipe_values(recipe) if isinstance(recipe, dict) else {}
        if values:
            return _shaped("atelier", values, texts["atelier"])
    try:
        found = ParserManager().parse(image)
    except Exception:                # a malformed chunk is no parameters, whatever sd-parsers makes of it
        found = None
    if found is None:
        return {}
    values = _tool_values(found)
    if not values:
        return {}
    raw = "\n".join(f"{key}: {text}" for key, text in texts.items()) or json.dumps(found.raw_parameters, default=str)
    return _shaped(SOURCES.get(found.generator, "unknown"), values, raw)


def read_png_info(data: bytes) -> dict:
    """The parameters the image file `data` carries, in INFO_NAMES' shape (missing values left out). Raises
    NotAnImage for bytes that are not an image, NoParameters for an image that carries none."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.load()
            info = image_info(image)
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        raise NotAnImage("This file is not an image (PNG, JPEG or WebP): send the PNG whose parameters you want "
                         "to read.", field="image") from None
    if not info:
        raise NoParameters("This image carries no generation parameters (no A1111 `parameters` text, ComfyUI "
                           "graph, Fooocus, InvokeAI or Atelier metadata): it may have been saved again by a tool "
                           "that drops them.", field="image")
    return info
