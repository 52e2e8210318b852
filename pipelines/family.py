"""What a model family is: one declaration, as data, that the catalogue, compiler, loaders, backend, pricing,
infotext and UI read.

A `Family` says which diffusers pipeline class runs each task (the tasks it lacks are simply absent), what
denoises (a UNet or a transformer) and how it is scheduled (discrete epsilon / v-prediction steps, or flow
matching: which decides the samplers that apply), the defaults a request on it takes, how guidance works on
it (real CFG, distilled guidance, or "true CFG"; the infotext names the scale after it), whether it reads a
negative prompt, the multiple its sizes must be, how long a prompt it reads, where its weights may come from,
how its demo models are built, how it runs on a GPU, and how a live preview draws its latents. `pipelines.families.FAMILIES` holds the families a
server knows; adding one is a module in `pipelines/families/` and a line there. Pure: no torch (pipeline
classes and demo builders are named, and imported by the loaders).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from configs.catalogue import ModelEntry
from pipelines.latent_rgb import LatentRGB

# Every task a family may declare, and what a request on it gives. A node kind asks for one of these.
TASKS = ("txt2img", "img2img", "inpaint", "edit", "control", "img2vid", "txt2vid")
GUIDANCE = ("cfg", "distilled", "true_cfg")
SCHEDULING = ("discrete", "flow", "edm")
SOURCES = ("demo", "folder", "file", "hub", "gguf")


@dataclass(frozen=True)
class Defaults:
    """What a request on a model of the family takes when neither it nor the catalogue entry says.
    `frames` and `fps` are 0 on image families."""

    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    schedule: str
    frames: int = 0
    fps: int = 0


# What the entries of helper kinds (ControlNets, upscalers, interpolators) take: their steps are read (an
# upscaler model's), the rest is never used.
HELPER_DEFAULTS = Defaults(width=512, height=512, steps=20, cfg_scale=7.0, sampler="euler", schedule="normal",
                           frames=16, fps=8)


@dataclass(frozen=True)
class Family:
    """One model family.

    Args:
        name: the catalogue's `family = "..."`.
        label: what people call it ("FLUX.1").
        media: "image" or "video": what its tasks make.
        tasks: task (see `TASKS`) -> the diffusers pipeline class (by name) that runs it.
        control_tasks: task -> the ControlNet pipeline class, where a ControlNet can steer the family.
        controlnet_class: the diffusers class its ControlNets load as.
        control_demos: demo ControlNet id -> "module:function" building one for its demo model.
        denoiser: "unet" or "transformer".
        scheduling: "discrete" (epsilon or v-prediction steps: every sampler applies), "flow" (flow matching:
            the flow samplers apply) or "edm" (SVD's own scheduler: no sampler choice).
        defaults: see `Defaults`.
        guidance: "cfg" (classifier-free guidance with the negative prompt), "distilled" (the scale is an
            input of the model: one pass per step, no negative prompt) or "true_cfg" (the pipeline's
            `true_cfg_scale`, with the negative prompt).
        negative_prompt: whether a negative prompt means anything on it.
        size_multiple: width and height must be multiples of it (VAE factor x patch size).
        prompt_tokens: how many prompt tokens its text encoder reads (passed as max_sequence_length where
            the pipeline takes one).
        sources: the catalogue sources its weights may come from ("gguf": a GGUF file for the transformer).
        demos: demo model id -> "module:function" building its pipeline with random weights, offline.
        price_factor: credits per image relative to SD1.5 at the same size: a number, or the name of a
            `[credits]` setting in tiers.toml.
        frames_rule: (step, offset): a video's frame count must be step * k + offset.
        adapts: for a family of adapters (AnimateDiff's motion modules), the family of models it animates.
        uses_max_sequence_length: the pipeline call takes `max_sequence_length`.
        samplers: where its pipelines run fewer samplers than its scheduling allows, the ones they run.
        textual_inversion: its text encoders take textual-inversion embeddings (CLIP's, in SD1.5 and SDXL): an
            embedding's name in a prompt is applied.
        cuda_dtype: the precision its models run in on a GPU ("bfloat16" for the flow transformers, whose
            activations overflow float16).
        tile_vae: decode large outputs in tiles (`pipelines.placement.tile_vae`; decided by the output's size,
            so the bytes do not depend on the machine).
        fps_argument: the pipeline call's argument for the frame rate, where the model is conditioned on it.
        transformer_class: the diffusers class of its transformer, where one is read from a GGUF file.
        gguf_architectures: the `general.architecture` names its GGUF files declare (city96's converter
            writes "flux", "qwen_image", "lumina2" for Z-Image, "wan"); empty: no GGUF source.
        latent_rgb: the cheap latent-to-RGB projections of the latent spaces its models denoise in
            (`pipelines.latent_rgb`), for live previews; the one whose channel count matches the latents is used.
        latent_layout: how its pipelines hand their video latents to a step callback: "channels_first"
            (batch, channels, frames, h, w), or "frames_first" (batch, frames, channels, h, w: SVD's). Image latents
            are (batch, channels, h, w), or packed (batch, tokens, channels x 2 x 2) where a transformer reads
            patches (`pipelines.preview` undoes that).
    """

    name: str
    label: str
    media: str
    tasks: Mapping[str, str]
    denoiser: str
    scheduling: str
    defaults: Defaults
    guidance: str = "cfg"
    negative_prompt: bool = True
    size_multiple: int = 8
    prompt_tokens: int = 77
    sources: tuple[str, ...] = ("demo", "folder", "file", "hub")
    demos: Mapping[str, str] = field(default_factory=dict)
    control_tasks: Mapping[str, str] = field(default_factory=dict)
    controlnet_class: str = "ControlNetModel"
    control_demos: Mapping[str, str] = field(default_factory=dict)
    price_factor: float | str = 1.0
    frames_rule: tuple[int, int] = (1, 0)
    adapts: str = ""
    uses_max_sequence_length: bool = False
    samplers: tuple[str, ...] = ()
    fps_argument: str = ""
    cuda_dtype: str = "float16"
    textual_inversion: bool = False
    tile_vae: bool = False
    transformer_class: str = ""
    gguf_architectures: tuple[str, ...] = ()
    latent_rgb: tuple[LatentRGB, ...] = ()
    latent_layout: str = "channels_first"

    def pipeline_class(self, task: str) -> str | None:
        """The diffusers class that runs `task` on this family, or None where it has none."""
        return self.tasks.get(task)

    def frames_error(self, frames: int) -> str | None:
        """None when a video of `frames` frames fits the family's rule, else what to ask for instead."""
        step, offset = self.frames_rule
        if frames >= offset and (frames - offset) % step == 0:
            return None
        below = max(offset, (frames - offset) // step * step + offset)
        return (f"{self.label} makes videos of {step}k+{offset} frames (for example {below} or {below + step}); "
                f"got {frames}.")


class FamilyRegistry:
    """The families a server knows, by name. `helpers` are catalogue kinds that are not families of their own
    (ControlNets, upscalers, interpolators): they steer or follow a family's model."""

    def __init__(self, families: tuple[Family, ...], helpers: tuple[str, ...] = ()):
        self.families = {f.name: f for f in families}
        self.helpers = helpers

    def __getitem__(self, name: str) -> Family:
        return self.families[name]

    def __contains__(self, name: str) -> bool:
        return name in self.families

    def __iter__(self):
        return iter(self.families.values())

    def get(self, name: str) -> Family | None:
        return self.families.get(name)

    def with_families(self, *families: Family) -> FamilyRegistry:
        """This registry and `families` (for a test or a plugin)."""
        return FamilyRegistry(tuple(self.families.values()) + families, self.helpers)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every `family = "..."` a catalogue entry may give."""
        return tuple(self.families) + self.helpers

    def generators(self, media: str = "image") -> tuple[str, ...]:
        """The families whose models make `media` from a prompt alone (adapters excluded): images by txt2img,
        videos by txt2vid or img2vid."""
        makes = ("txt2img",) if media == "image" else ("txt2vid", "img2vid")
        return tuple(f.name for f in self if f.media == media and not f.adapts and any(t in f.tasks for t in makes))

    def demo_builders(self) -> dict[str, tuple[str, str]]:
        """demo model id -> (family name, "module:function"): the families' demo models and demo ControlNets."""
        return {model_id: (f.name, builder) for f in self
                for model_id, builder in {**f.demos, **f.control_demos}.items()}

    def catalogue(self, entries: tuple[ModelEntry, ...]) -> tuple[ModelEntry, ...]:
        """The catalogue's entries checked against the families and with their family's defaults filled in,
        the models that draw first (the first is the default model). Raises ValueError saying what to change
        in configs/models.toml. Entries already filled in come back unchanged."""
        for entry in entries:
            self._check(entry)
        filled = tuple(self._filled(entry) for entry in entries)
        drawing = self.generators("image")
        ordered = tuple(sorted(filled, key=lambda e: e.family not in drawing))
        if not ordered or ordered[0].family not in drawing:
            raise ValueError(f"The model catalogue names no model that draws; add a [[model]] of family "
                             f"{' or '.join(repr(f) for f in drawing)} to configs/models.toml.")
        return ordered

    def _check(self, entry: ModelEntry) -> None:
        where = f"configs/models.toml: model {entry.id!r}"
        if entry.family not in self.kinds:
            raise ValueError(f"{where} has family {entry.family!r}; expected one of {', '.join(self.kinds)}.")
        family = self.families.get(entry.family)
        if family is not None and entry.source_kind not in family.sources:
            raise ValueError(f"{where} has a {entry.source_kind} source, which {family.label} models do not load "
                             f"from; give one of {', '.join(family.sources)}.")
        steerable = tuple(f.name for f in self if f.control_tasks)
        if entry.family == "controlnet" and entry.base_family not in steerable:
            raise ValueError(f"{where} is a ControlNet; give it base_family = one of {', '.join(steerable)} (the "
                             "families Atelier runs ControlNets on).")
        if family is not None and family.adapts and entry.base_family != family.adapts:
            raise ValueError(f"{where} is a {family.label} model; it animates {family.adapts} models, so give it "
                             f"base_family = {family.adapts!r}.")
        if entry.source_kind == "gguf" and not entry.config:
            raise ValueError(f"{where} gives a GGUF transformer; give it `config = <diffusers folder>` holding the "
                             "rest of the pipeline (text encoders, VAE, scheduler and the transformer's config).")

    def _filled(self, entry: ModelEntry) -> ModelEntry:
        family = self.families.get(entry.family)
        given = family.defaults if family is not None else HELPER_DEFAULTS
        defaults = {f.name: getattr(given, f.name) for f in fields(Defaults)}
        missing = {name: value for name, value in defaults.items() if getattr(entry, name) is None}
        return replace(entry, **missing) if missing else entry
