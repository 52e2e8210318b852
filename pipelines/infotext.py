"""AUTOMATIC1111's `parameters` text ("infotext"), written into every PNG so A1111's PNG Info,
Civitai and ComfyUI loaders read our images:

    a photo of a cat
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, ...

A value holding ",", ":" or a newline is written as a JSON string, as A1111's `infotext_utils.quote`
does; `parse_infotext` reads the same format back. What each node kind writes is in its declaration
(`pipelines/nodes/`); `NodeRegistry.infotext(step, index)` gives a step's text. Nothing here imports torch.
"""
from __future__ import annotations

import json
import re

from pipelines.families import FAMILIES
from pipelines.plan import DiffusionStep
from pipelines.samplers import a1111_labels

VERSION = "Atelier 0.1"

# A1111's `re_param_code`: key, then a quoted or a plain value, up to the next comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _quote(value) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",\n:") else text


def line(params: dict) -> str:
    """`Key: value, Key: value` for the params that are not None, in their order."""
    return ", ".join(f"{k}: {_quote(v)}" for k, v in params.items() if v is not None)


def diffusion_infotext(step: DiffusionStep, index: int, specific: dict) -> str:
    """The infotext of image (or video) `index` of a denoising step, in A1111's order: the prompt, the negative
    prompt, then the sampling keys, the node kind's `specific` keys (None = left out), ControlNet, LoRA and
    embedding hashes, style and version."""
    sampler, schedule = a1111_labels(step.sampler, step.schedule)
    family = FAMILIES.get(step.model.family)
    # Forge writes FLUX's distilled guidance beside a CFG scale of 1 (one pass per step, no negative prompt).
    distilled = family is not None and family.guidance == "distilled"
    params = {
        "Steps": step.steps,
        "Sampler": sampler,
        "Schedule type": schedule,
        "CFG scale": "1" if distilled else f"{step.cfg_scale:g}",
        "Distilled CFG Scale": f"{step.cfg_scale:g}" if distilled else None,
        "Seed": step.seeds[index],
        "Size": f"{step.width}x{step.height}",
        "Model hash": step.model.short_hash,
        "Model": step.model.id,
        **specific,
    }
    if getattr(step, "control_model", None) is not None:    # as sd-webui-controlnet writes it
        net = step.control_model
        params["ControlNet 0"] = (f"Model: {net.id} [{net.short_hash[:8]}], Weight: {step.control_scale:g}, "
                                  f"Guidance Start: {step.control_start:g}, Guidance End: {step.control_end:g}")
    if step.loras:       # A1111 drops ":" and "," from names here, so the list stays parseable
        params["Lora hashes"] = ", ".join(f"{_plain(name)}: {short}" for name, _, _, short in step.loras)
    if step.embeddings:
        params["TI hashes"] = ", ".join(f"{_plain(name)}: {sha256[:12]}" for name, sha256 in step.embeddings)
    params.update({"Style": step.style or None, "Version": VERSION})
    prompt = ", ".join([step.prompt] * bool(step.prompt) + [f"<lora:{n}:{w:g}>" for n, _, w, _ in step.loras])
    negative = f"\nNegative prompt: {step.negative_prompt}" if step.negative_prompt else ""
    return f"{prompt}{negative}\n{line(params)}".strip()


def _plain(name: str) -> str:
    return name.replace(":", "").replace(",", "")


def parse_infotext(text: str) -> dict:
    """Read an infotext into {"prompt", "negative_prompt", and each "Key": "value"} (values as text)."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    result = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    for key, value in _PARAM.findall(last):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value)
        result[key.strip()] = value
    return result
