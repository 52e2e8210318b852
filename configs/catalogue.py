"""The model catalogue (`configs/models.toml`) and style presets (`configs/styles.toml`)."""
from __future__ import annotations

import os
import pathlib
import tomllib
from dataclasses import dataclass
from typing import Literal

CONFIG_DIR = pathlib.Path(__file__).resolve().parent
FAMILIES = ("sd15", "sdxl", "controlnet", "upscaler", "svd", "animatediff", "interpolator")
GENERATORS = ("sd15", "sdxl")        # families that make pictures; a ControlNet steers one of them
SOURCE_KINDS = ("demo", "folder", "file", "hub")


@dataclass(frozen=True)
class ModelEntry:
    """One checkpoint: where its weights come from and the defaults requests on it take."""

    id: str
    family: Literal["sd15", "sdxl", "controlnet", "upscaler", "svd", "animatediff", "interpolator"]
    source: str                 # "demo", "folder:PATH", "file:PATH" or "hub:ORG/NAME"
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str = "euler"
    schedule: str = "normal"
    config: str = ""            # diffusers config folder for "file:" sources
    description: str = ""
    base_family: str = ""       # for ControlNets and motion adapters: the family of models it fits
    frames: int = 16            # video models: default number of frames
    fps: int = 8                # video models: default frames per second
    motion_bucket_id: int = 127  # svd: default amount of motion (1-255)
    noise_aug_strength: float = 0.02  # svd: default noise added to the input image

    @property
    def source_kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def source_location(self) -> str:
        return self.source.split(":", 1)[1] if ":" in self.source else ""

    @property
    def is_demo(self) -> bool:
        return self.source_kind == "demo"


@dataclass(frozen=True)
class Style:
    """A prompt template (`{prompt}` marks where the user's prompt goes) and a negative prompt."""

    name: str
    prompt: str = "{prompt}"
    negative: str = ""

    def apply(self, prompt: str, negative_prompt: str) -> tuple[str, str]:
        styled = self.prompt.replace("{prompt}", prompt)
        negative = ", ".join(p for p in (negative_prompt, self.negative) if p)
        return styled, negative


def load_models(path: str | os.PathLike = CONFIG_DIR / "models.toml") -> tuple[ModelEntry, ...]:
    """Read the catalogue; the first entry is the default model. Raises ValueError on a bad entry."""
    with open(path, "rb") as f:
        rows = tomllib.load(f).get("model", [])
    entries = []
    for row in rows:
        try:
            entry = ModelEntry(**row)
        except TypeError as e:
            raise ValueError(f"{path}: bad [[model]] entry {row.get('id', '?')!r}: {e}") from None
        if entry.family not in FAMILIES:
            raise ValueError(f"{path}: model {entry.id!r} has family {entry.family!r}; expected one of {FAMILIES}")
        if entry.source_kind not in SOURCE_KINDS:
            raise ValueError(f"{path}: model {entry.id!r} has source {entry.source!r}; "
                             "expected demo, folder:PATH, file:PATH or hub:ORG/NAME")
        entries.append(entry)
    for entry in entries:
        if entry.family == "controlnet" and entry.base_family not in GENERATORS:
            raise ValueError(f"{path}: ControlNet {entry.id!r} needs base_family = \"sd15\" or \"sdxl\"")
        if entry.family == "animatediff" and entry.base_family != "sd15":
            raise ValueError(f"{path}: motion adapter {entry.id!r} needs base_family = \"sd15\" (AnimateDiff "
                             "animates SD1.5-family models)")
    entries.sort(key=lambda e: e.family not in GENERATORS)       # the default model is a generator
    if not entries or entries[0].family not in GENERATORS:
        raise ValueError(f"{path}: the catalogue names no sd15 or sdxl [[model]]")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: model ids must be unique, got {ids}")
    return tuple(entries)


def needs_hub(models: tuple[ModelEntry, ...]) -> bool:
    """Whether any catalogue entry loads from the Hugging Face hub (otherwise run hub-offline)."""
    return any(m.source_kind == "hub" for m in models)


def load_styles(path: str | os.PathLike = CONFIG_DIR / "styles.toml") -> tuple[Style, ...]:
    """Read the style presets, in file order."""
    with open(path, "rb") as f:
        rows = tomllib.load(f).get("style", [])
    styles = tuple(Style(**row) for row in rows)
    for style in styles:
        if "{prompt}" not in style.prompt:
            raise ValueError(f"{path}: style {style.name!r} has no {{prompt}} in its template")
    return styles
