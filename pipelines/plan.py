"""An ExecutionPlan: fully resolved, topologically ordered steps, ready for the runner.

Everything that decides the output is in the plan: model content hashes, input artifacts by
content hash, final prompts (styles applied), sampler, schedule, sizes, steps, guidance and one
concrete seed per image or video. Each step makes one list of images or of videos; `inputs` name the
earlier steps whose outputs it takes. The plan's canonical JSON is its identity: `plan_hash` is the sha256 of it.
Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

PLAN_VERSION = 1
# The settings `ExecutionPlan.summary` shows, where the last step has them.
SUMMARY_FIELDS = ("prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "sampler", "schedule",
                  "style", "strength", "scale", "upscaler", "frames", "fps", "motion_bucket_id", "noise_aug_strength",
                  "factor", "method")


def canonical_json(data) -> str:
    """JSON with sorted keys and no spaces, so equal data always gives equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ModelRef:
    """A model resolved from the catalogue: `hash` identifies its weights."""

    id: str
    family: str
    source: str
    hash: str

    @property
    def short_hash(self) -> str:
        """The first 10 hex digits, as AUTOMATIC1111 prints `Model hash`."""
        return self.hash.split(":")[-1][:10]


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step: `id` (the spec node's), and `inputs`: (input name, id of the step whose images it takes)."""

    kind: ClassVar[str] = ""
    lineage: ClassVar[dict[str, str]] = {}     # input name -> relation recorded from outputs to it
    # Whether the same step (same seeds) always makes the same outputs, so an identical plan may be served
    # from stored ones instead of run again. Every kind so far is: noise comes only from the seeds.
    deterministic: ClassVar[bool] = True
    # Whether it only reads a stored file (by `artifact_id`): its output is that file, not a new artifact, and
    # it is not a node of "node k of m".
    reads_stored: ClassVar[bool] = False

    id: str
    inputs: tuple[tuple[str, str], ...] = ()
    width: int = 0                             # size of every image this step makes
    height: int = 0

    def input(self, name: str) -> str:
        return dict(self.inputs)[name]

    def source_index(self, index: int) -> int:
        """Which image of each input output `index` was made from."""
        return index

    @property
    def noise_seeds(self) -> tuple[int, ...]:
        """The seed each output was made from; () when no noise is involved."""
        return ()

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind
        return json.loads(json.dumps(data))    # tuples -> lists, as they come back from JSON

    @classmethod
    def from_dict(cls, data: dict) -> "Step":
        values = {k: v for k, v in data.items() if k != "kind"}
        values["inputs"] = tuple(tuple(pair) for pair in values.get("inputs", ()))
        for name in ("seeds", "loras", "embeddings"):
            if name in values:
                values[name] = tuple(tuple(v) if isinstance(v, list) else v for v in values[name])
        for name in ("model", "control_model", "motion_adapter"):
            if isinstance(values.get(name), dict):
                values[name] = ModelRef(**values[name])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class LoadImageStep(Step):
    """A stored image (or mask) by artifact id, which is the sha256 of its bytes."""

    kind: ClassVar[str] = "load_image"
    reads_stored: ClassVar[bool] = True

    artifact_id: str
    as_mask: bool = False


@dataclass(frozen=True, kw_only=True)
class DiffusionStep(Step):
    """What every denoising step shares. `seeds[k]` makes image k; `per_input` images come from each
    input image (the batch size)."""

    model: ModelRef
    prompt: str
    negative_prompt: str
    steps: int
    cfg_scale: float
    sampler: str
    schedule: str
    seeds: tuple[int, ...]
    style: str = ""
    per_input: int = 1
    loras: tuple[tuple[str, str, float, str], ...] = ()  # (name, sha256 of the file, weight, A1111 shorthash)
    embeddings: tuple[tuple[str, str], ...] = ()        # (name = the token in the prompt, sha256)

    @property
    def image_count(self) -> int:
        return len(self.seeds)

    def source_index(self, index: int) -> int:
        return index // self.per_input

    @property
    def noise_seeds(self) -> tuple[int, ...]:
        return self.seeds


@dataclass(frozen=True, kw_only=True)
class Controlled:
    """ControlNet guidance from the step's `control` input, when `control_model` is set."""

    control_model: ModelRef | None = None
    control_scale: float = 1.0
    control_start: float = 0.0
    control_end: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Txt2ImgStep(Controlled, DiffusionStep):
    kind: ClassVar[str] = "txt2img"
    lineage: ClassVar[dict[str, str]] = {"control": "control"}


@dataclass(frozen=True, kw_only=True)
class Img2ImgStep(Controlled, DiffusionStep):
    kind: ClassVar[str] = "img2img"
    lineage: ClassVar[dict[str, str]] = {"image": "source", "control": "control"}

    strength: float


@dataclass(frozen=True, kw_only=True)
class EditStep(DiffusionStep):
    """Input image k // per_input edited as the prompt (an instruction) says, by a model trained to edit."""

    kind: ClassVar[str] = "edit"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}


@dataclass(frozen=True, kw_only=True)
class CannyStep(Step):
    """Edge maps of the input images."""

    kind: ClassVar[str] = "canny"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}

    low: int
    high: int
    seeds: tuple[int, ...] = ()         # one entry per image made, for counting (no noise is involved)


@dataclass(frozen=True, kw_only=True)
class InpaintStep(DiffusionStep):
    """Repaint the white area of `mask` (already inverted if asked) in `image`."""

    kind: ClassVar[str] = "inpaint"
    lineage: ClassVar[dict[str, str]] = {"image": "source", "mask": "mask"}

    strength: float
    mask_blur: int
    invert_mask: bool
    full_res: bool
    full_res_padding: int
    masked_content: str
    work_width: int            # the size the model works at (the crop's, with full_res)
    work_height: int


@dataclass(frozen=True, kw_only=True)
class OutpaintStep(DiffusionStep):
    kind: ClassVar[str] = "outpaint"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}

    left: int
    right: int
    top: int
    bottom: int
    feather: int
    strength: float
    masked_content: str


@dataclass(frozen=True, kw_only=True)
class UpscaleStep(Step):
    kind: ClassVar[str] = "upscale"
    lineage: ClassVar[dict[str, str]] = {"image": "upscale_of"}

    scale: float
    upscaler: str
    model: ModelRef | None = None        # the upscaler model; None for Lanczos
    seeds: tuple[int, ...] = ()          # one per image made
    steps: int = 0
    tile_size: int = 128

    @property
    def noise_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.model else ()       # Lanczos involves no noise


@dataclass(frozen=True, kw_only=True)
class LoadVideoStep(Step):
    """A stored video by artifact id (the sha256 of its bytes); `frames` and `fps` as it was stored."""

    kind: ClassVar[str] = "load_video"
    reads_stored: ClassVar[bool] = True

    artifact_id: str
    frames: int
    fps: float


@dataclass(frozen=True, kw_only=True)
class VideoStep(Step):
    """What every step that makes videos shares: `frames` frames of `width` x `height` at `fps`, one video
    per entry of `seeds`."""

    frames: int
    fps: float
    seeds: tuple[int, ...]

    @property
    def video_count(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True, kw_only=True)
class Img2VidStep(VideoStep):
    """Stable Video Diffusion: video k animates input image k from seed k; `decode_chunk_size` frames are
    decoded at a time."""

    kind: ClassVar[str] = "img2vid"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}

    model: ModelRef
    steps: int
    motion_bucket_id: int
    noise_aug_strength: float
    min_cfg_scale: float
    cfg_scale: float
    decode_chunk_size: int

    @property
    def noise_seeds(self) -> tuple[int, ...]:
        return self.seeds


@dataclass(frozen=True, kw_only=True)
class Txt2VidStep(VideoStep, DiffusionStep):
    """AnimateDiff: `motion_adapter` animates `model`; video k comes from seed k."""

    kind: ClassVar[str] = "txt2vid"

    motion_adapter: ModelRef
    decode_chunk_size: int


@dataclass(frozen=True, kw_only=True)
class VideoDiffusionStep(VideoStep, DiffusionStep):
    """A video family's own pipeline (Wan, LTX-2; see `pipelines.families`): text to video, or, with an `image`
    input, image to video, video k animating input image k // per_input; video k comes from seed k."""

    kind: ClassVar[str] = "video"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}


@dataclass(frozen=True, kw_only=True)
class InterpolateStep(VideoStep):
    """Frames made between each pair of an input video's frames; `frames` and `fps` are the result's.
    No noise is involved: `seeds` only counts the videos."""

    kind: ClassVar[str] = "interpolate"
    lineage: ClassVar[dict[str, str]] = {"video": "frames_of"}

    factor: int
    method: str                          # "flow", or the id of `model`
    model: ModelRef | None = None        # a learned interpolator (RIFE family); None for optical flow


@dataclass(frozen=True)
class ExecutionPlan:
    """Steps in the order they run, and the price in credits quoted when the plan was compiled."""

    steps: tuple[Step, ...]
    credits: float = 0.0
    version: int = PLAN_VERSION
    notes: tuple[str, ...] = ()              # things the person should know (e.g. a mask was resized)

    def recipe(self) -> dict:
        """What decides the output; hashed for `plan_hash` (the price is not part of it)."""
        return {"version": self.version, "steps": [s.to_dict() for s in self.steps]}

    @property
    def plan_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.recipe()).encode()).hexdigest()

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def models(self) -> set[str]:
        """Catalogue ids of every model the plan runs (image models, ControlNets, motion adapters, upscalers,
        interpolators)."""
        return {value.id for step in self.steps for value in vars(step).values() if isinstance(value, ModelRef)}

    def final_step_ids(self) -> set[str]:
        """The steps whose outputs no other step takes: what a person asked for. A hires fix's first picture
        and its enlargement are intermediates (kept, and reachable through lineage)."""
        taken = {source for step in self.steps for _, source in step.inputs}
        return {step.id for step in self.steps if step.id not in taken and not step.reads_stored}

    def output_position(self, step_id: str, index: int) -> int | None:
        """Where output `index` of step `step_id` stands in the job's flat list of stored outputs (steps that
        read a stored file store nothing); None for a step the plan does not have."""
        position = 0
        for step in self.steps:
            if step.id == step_id:
                return position + index
            if not step.reads_stored:
                position += len(getattr(step, "seeds", ()))
        return None

    def summary(self, step_id: str | None = None) -> dict:
        """What a person reads of how a step's outputs were made (the last step's: the plan's final outputs):
        its kind and resolved settings (what was set, or the defaults it got), models by catalogue id."""
        step = self.steps[-1] if step_id is None else self.step(step_id)
        shown = {"kind": step.kind, **{name: getattr(step, name) for name in SUMMARY_FIELDS if hasattr(step, name)}}
        for name in ("model", "motion_adapter"):
            if isinstance(getattr(step, name, None), ModelRef):
                shown[name] = getattr(step, name).id
        return shown

    def to_dict(self) -> dict:
        return {**self.recipe(), "credits": self.credits, "notes": list(self.notes)}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, step_types: dict[str, type[Step]] | None = None) -> "ExecutionPlan":
        """The plan `to_dict` gave. `step_types`: step kind -> its dataclass; None = the step kinds of
        `pipelines.nodes.REGISTRY`. Raises KeyError for a step kind it does not know."""
        if step_types is None:
            from pipelines.nodes import REGISTRY     # here, because the node declarations import this module
            step_types = REGISTRY.step_types
        steps = tuple(step_types[s["kind"]].from_dict(s) for s in data["steps"])
        return cls(steps=steps, credits=data.get("credits", 0.0), version=data.get("version", PLAN_VERSION),
                   notes=tuple(data.get("notes", ())))

    @classmethod
    def from_json(cls, text: str, step_types: dict[str, type[Step]] | None = None) -> "ExecutionPlan":
        return cls.from_dict(json.loads(text), step_types)
