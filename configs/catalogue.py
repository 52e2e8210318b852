"""The model catalogue (`configs/models.toml`) and style presets (`configs/styles.toml`)."""
from __future__ import annotations

import os
import pathlib
import tomllib
from dataclasses import dataclass

CONFIG_DIR = pathlib.Path(__file__).resolve().parent
SOURCE_KINDS = ("demo", "folder", "file", "hub", "gguf")
PREVIEW_VAE_KINDS = ("demo", "folder", "hub")


@dataclass(frozen=True)
class ModelEntry:
    """One checkpoint: where its weights come from and the defaults requests on it take. The defaults left
    out (None) are its family's: `pipelines.families.FAMILIES.catalogue` fills them in and checks the
    family (this room reads the file; what a family is, the engine declares)."""

    id: str
    family: str                 # a family of pipelines.families ("sd15", "flux1", ...) or a helper kind
    source: str                 # "demo", "folder:PATH", "file:PATH", "hub:ORG/NAME" or "gguf:PATH"
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    schedule: str | None = None
    config: str = ""            # diffusers config folder for "file:" and "gguf:" sources
    description: str = ""
    base_family: str = ""       # for ControlNets and motion adapters: the family of models it fits
    frames: int | None = None   # video models: default number of frames
    fps: int | None = None      # video models: default frames per second
    motion_bucket_id: int = 127  # svd: default amount of motion (1-255)
    noise_aug_strength: float = 0.02  # svd: default noise added to the input image
    offload: bool = False       # on a GPU, keep the weights in CPU memory and move each part in as it runs
    # a tiny decoder (TAESD: diffusers' AutoencoderTiny) that draws its live previews: "demo" (a tiny random one,
    # built offline), "folder:PATH" or "hub:ORG/NAME" (madebyollin/taesd, taesdxl, taesd3, taef1); "" draws them
    # with the family's cheap latent-to-RGB projection
    preview_vae: str = ""

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
    """Read the catalogue, in file order. Raises ValueError on an entry that is not one (its family and
    defaults are checked by `pipelines.families.FAMILIES.catalogue`)."""
    with open(path, "rb") as f:
        rows = tomllib.load(f).get("model", [])
    entries = []
    for row in rows:
        try:
            entry = ModelEntry(**row)
        except TypeError as e:
            raise ValueError(f"{path}: bad [[model]] entry {row.get('id', '?')!r}: {e}") from None
        if entry.source_kind not in SOURCE_KINDS:
            raise ValueError(f"{path}: model {entry.id!r} has source {entry.source!r}; "
                             "expected demo, folder:PATH, file:PATH, gguf:PATH or hub:ORG/NAME")
        if entry.preview_vae and entry.preview_vae.split(":", 1)[0] not in PREVIEW_VAE_KINDS:
            raise ValueError(f"{path}: model {entry.id!r} has preview_vae {entry.preview_vae!r}; expected demo, "
                             "folder:PATH (an AutoencoderTiny folder) or hub:ORG/NAME (madebyollin/taesd, ...)")
        entries.append(entry)
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
