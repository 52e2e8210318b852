"""AUTOMATIC1111 prompt extras that are not text for the encoder: `<lora:name:weight>`.

A1111 writes a LoRA into the positive prompt as `<lora:NAME>` or `<lora:NAME:WEIGHT>`; further
`:`-separated parts (its separate text-encoder/UNet/dyn multipliers) are accepted and ignored, so the
first number is the one weight applied. Only `lora` tags are taken out; any other `<...>` stays text.
Pure Python, so the web process can validate prompts without importing torch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A1111's extra-network pattern is `<(\w+):([^>]+)>`; here only the `lora` kind.
_LORA_TAG = re.compile(r"<lora:([^<>]*)>")


@dataclass(frozen=True)
class LoraUse:
    """One `<lora:...>` tag: the file stem it names and its weight (1.0 when the tag gives none)."""

    name: str
    weight: float = 1.0


def _parse_tag(tag: str, inner: str) -> LoraUse:
    parts = [p.strip() for p in inner.split(":")]
    name = parts[0]
    if not name:
        raise ValueError(f"{tag} names no LoRA; write <lora:NAME> or <lora:NAME:WEIGHT>, e.g. <lora:myStyle:0.8>")
    if len(parts) == 1 or parts[1] == "":
        return LoraUse(name)
    try:
        weight = float(parts[1])
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight):
        raise ValueError(f"{tag} has weight {parts[1]!r}, which is not a number; "
                         f"write <lora:{name}:WEIGHT> with a number such as 0.8 (or leave it out for 1.0)")
    return LoraUse(name, weight)


def _join(left: str, right: str) -> str:
    """Join the text either side of a removed tag with one space and no doubled or dangling comma."""
    left, right = left.rstrip(), right.lstrip()
    while right.startswith(",") and (not left or left.endswith(",")):
        right = right[1:].lstrip()
    if not left or not right:
        return left + right
    return f"{left} {right}"


def extract_loras(prompt: str) -> tuple[str, tuple[LoraUse, ...]]:
    """Take every `<lora:NAME>` / `<lora:NAME:WEIGHT>` tag out of `prompt`.

    Args:
        prompt (`str`): an A1111-style positive prompt.

    Returns:
        `(text, loras)`: the prompt without the tags, tidied where a tag was removed (one space, no
        doubled, leading or trailing comma: `"a cat, <lora:x:0.5>"` gives `"a cat"`), and the LoRAs in
        the order they appear. A prompt without tags comes back unchanged.

    Raises:
        ValueError: a tag with no name or a weight that is not a finite number (`<lora:x:abc>`), or
            the same name twice (weights are not summed).
    """
    matches = list(_LORA_TAG.finditer(prompt))
    if not matches:
        return prompt, ()
    loras: list[LoraUse] = []
    for m in matches:
        use = _parse_tag(m.group(0), m.group(1))
        if any(u.name == use.name for u in loras):
            raise ValueError(f"LoRA {use.name!r} appears twice in the prompt; use it once")
        loras.append(use)
    text = ""
    for piece in _LORA_TAG.split(prompt)[::2]:      # split() interleaves the captured tag bodies
        text = _join(text, piece)
    return text.strip(" \t\r\n,"), tuple(loras)
