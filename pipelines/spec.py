"""What a person asked for: a WorkflowSpec, a small typed graph of nodes, as frozen dataclasses.

A spec is plain data that round-trips through JSON:

    {"version": 1, "nodes": [
        {"id": "src", "kind": "load_image", "params": {"artifact_id": "<sha256>"}},
        {"id": "1", "kind": "img2img", "params": {"prompt": "a red fox", "strength": 0.6},
         "inputs": {"image": ["src", "image"]}}]}

Each node kind declares its parameters (the dataclass fields), the typed edges it takes
(`inputs`, name -> IMAGE, MASK or VIDEO) and the typed values it produces (`outputs`). An edge names the
node and the output it comes from. Unset optional parameters (None, "" or -1) mean "the model's
default" or "random"; the compiler fills them in. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipelines import json_guard
from pipelines.checks import MAX_SEED
from pipelines.errors import InvalidRequest, Problem

SPEC_VERSION = 1
# Said when a workflow's JSON is too large or too deep: a spec nests 6 levels (spec, nodes, a node, its
# params, its loras, one LoRA), and a node takes about 400 bytes.
WORKFLOW_ADVICE = ("Check the JSON your script sends: a workflow nests 6 levels at most, and a thousand nodes "
                   "take about 400 kB.")
MaskedContent = Literal["original", "noise", "fill"]
RESAMPLERS = ("lanczos",)          # upscalers that resize without a model (and without noise)
INTERPOLATORS = ("flow",)          # interpolation methods that need no model


def param(default, description: str, *, low=None, high=None, choices=None, hint: str = ""):
    """A node parameter, declared once: its default, the line a person reads about it in the UI and the API
    docs, and what it may be. `low` and `high` are numbers or the name of a [limits] setting ("max_steps");
    `choices` are values or the name of a list the catalogue gives ("model", "sampler", "schedule", "style",
    "upscaler", "interpolator", "controlnet", "svd", "animatediff"); `hint` is added to an out-of-range
    message. The compiler checks against these (`Compiler.checked`) and the API and forms are built from
    them (`pipelines.node.inputs_of`)."""
    return field(default=default, metadata={"description": description, "low": low, "high": high,
                                            "choices": choices, "hint": hint})


@dataclass(frozen=True)
class Sampling:
    """Parameters every diffusion node shares. Unset ones (None, "") take the model's defaults."""

    prompt: str = param("", "What to draw.", high="max_prompt_chars")
    negative_prompt: str = param("", "What to avoid.", high="max_prompt_chars")
    model: str = param("", "Catalogue id of the model; empty: the default model.", choices="model")
    steps: int | None = param(None, "Denoising steps; empty: the model's default.", low=1, high="max_steps")
    cfg_scale: float | None = param(None, "Classifier-free guidance scale: how closely to follow the prompt; "
                                    "empty: the model's default.", low=0.0, high="max_cfg_scale")
    sampler: str = param("", "Sampler, as A1111 and ComfyUI name it (euler_a, dpmpp_2m, ...); empty: the model's.",
                         choices="sampler")
    schedule: str = param("", "Noise schedule (normal, karras, exponential, ...); empty: the model's.",
                          choices="schedule")
    seed: int = param(-1, "Seed of the first image; image k uses seed + k. -1: random.", low=-1, high=MAX_SEED,
                      hint=" Use -1 for a random seed.")
    batch_size: int = param(1, "Images made per input image (or in all, for txt2img).", low=1,
                            high="max_batch_size")
    style: str = param("", "Style preset applied to the prompts; empty: none.", choices="style")
    loras: tuple[tuple[str, float], ...] = param((), "(name, weight) pairs of LoRA files to apply, besides "
                                                 "<lora:name:weight> in the prompt.")


@dataclass(frozen=True)
class Control:
    """ControlNet guidance, used when the node's optional `control` input (an IMAGE) is connected."""

    control_model: str = param("", "Catalogue id of a ControlNet for the model's family.", choices="controlnet")
    control_scale: float = param(1.0, "How strongly the ControlNet steers (0: not at all).", low=0.0, high=2.0)
    control_start: float = param(0.0, "Fraction of the denoising steps where the ControlNet starts acting.",
                                 low=0.0, high=1.0)
    control_end: float = param(1.0, "Fraction of the denoising steps where the ControlNet stops acting.",
                               low=0.0, high=1.0)


@dataclass(frozen=True)
class Txt2Img(Control, Sampling):
    """Text to image."""

    kind: ClassVar[str] = "txt2img"
    inputs: ClassVar[dict[str, str]] = {"control": "IMAGE"}
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"control"})
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    width: int | None = param(None, "Width in pixels, a multiple of 8; empty: the model's.", low="min_side",
                              high="max_side")
    height: int | None = param(None, "Height in pixels, a multiple of 8; empty: the model's.", low="min_side",
                               high="max_side")


@dataclass(frozen=True)
class Img2Img(Control, Sampling):
    """Image to image."""

    kind: ClassVar[str] = "img2img"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE", "control": "IMAGE"}
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"control"})
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    strength: float = param(0.75, "How much to change: 0 keeps the image, 1 repaints it entirely.", low=0.0,
                            high=1.0)
    width: int | None = param(None, "Width in pixels, a multiple of 8; empty: the input's (rounded down).",
                              low="min_side", high="max_side")
    height: int | None = param(None, "Height in pixels, a multiple of 8; empty: the input's (rounded down).",
                               low="min_side", high="max_side")


@dataclass(frozen=True)
class Edit(Sampling):
    """An image edited as the prompt says ("make the sky stormy"), by a model trained to edit: FLUX.1 Kontext,
    Qwen-Image-Edit. The prompt is the instruction; the picture keeps what it does not mention."""

    kind: ClassVar[str] = "edit"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    model: str = param("", "Catalogue id of an editing model (flux1 Kontext, Qwen-Image-Edit); empty: the first "
                           "one that edits.", choices="edit")
    width: int | None = param(None, "Width in pixels; empty: the input's (rounded down to what the model takes).",
                              low="min_side", high="max_side")
    height: int | None = param(None, "Height in pixels; empty: the input's (rounded down).", low="min_side",
                               high="max_side")


@dataclass(frozen=True)
class Canny:
    """Edges of an image (OpenCV's Canny), white on black: a control image."""

    kind: ClassVar[str] = "canny"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    low: int = param(100, "Lower edge threshold: weaker edges below it are dropped.", low=0, high=255)
    high: int = param(200, "Upper edge threshold: edges above it are kept.", low=0, high=255)


@dataclass(frozen=True)
class Inpaint(Sampling):
    """Repaint where the mask is white (AUTOMATIC1111's inpaint)."""

    kind: ClassVar[str] = "inpaint"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE", "mask": "MASK"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    model: str = param("", "Catalogue id of a model that inpaints (FLUX.1 Fill and the inpainting models among "
                           "them); empty: the default model.", choices="inpaint")
    strength: float = param(0.75, "How much the masked area changes (1: entirely).", low=0.0, high=1.0)
    mask_blur: int = param(4, "Feather the mask edge inward by this many pixels.", low=0, high=256)
    invert_mask: bool = param(False, "Repaint where the mask is black instead.")
    full_res: bool = param(False, "Inpaint only masked: work on a crop around the mask at the model's size, "
                                  "then paste it back.")
    full_res_padding: int = param(32, "Pixels of context around the mask for the crop.", low=0, high=1024)
    masked_content: MaskedContent = param("original", "What the masked area starts from.",
                                          choices=("original", "noise", "fill"))


@dataclass(frozen=True)
class Outpaint(Sampling):
    """Extend the canvas and paint the new area."""

    kind: ClassVar[str] = "outpaint"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    model: str = param("", "Catalogue id of a model that inpaints (FLUX.1 Fill and the inpainting models among "
                           "them); empty: the default model.", choices="inpaint")
    left: int = param(0, "Pixels to add on the left.", low=0, high="max_side")
    right: int = param(0, "Pixels to add on the right.", low=0, high="max_side")
    top: int = param(0, "Pixels to add at the top.", low=0, high="max_side")
    bottom: int = param(0, "Pixels to add at the bottom.", low=0, high="max_side")
    feather: int = param(16, "Pixels over which the new area blends into the old.", low=0, high=256)
    strength: float = param(1.0, "How much the new area is repainted (1: entirely).", low=0.0, high=1.0)
    masked_content: MaskedContent = param("fill", "What the new area starts from.",
                                          choices=("original", "noise", "fill"))


@dataclass(frozen=True)
class Upscale:
    """Enlarge an image with Lanczos, or with an upscaler model from the catalogue that works in tiles (so
    large images fit in memory) and is then resized to the exact scale with Lanczos."""

    kind: ClassVar[str] = "upscale"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    scale: float = param(2.0, "How many times larger.", low=1.0, high=8.0)
    upscaler: str = param("lanczos", "lanczos, or the catalogue id of an upscaler model.", choices="upscaler")
    steps: int | None = param(None, "Denoising steps of an upscaler model; empty: the model's.", low=1,
                              high="max_steps")
    seed: int = param(-1, "Seed of an upscaler model's noise; -1: random.", low=-1, high=MAX_SEED,
                      hint=" Use -1 for a random seed.")
    tile_size: int = param(128, "Tile size in pixels for an upscaler model.", low=32, high=1024)

    @property
    def draws_noise(self) -> bool:
        """Whether its seed matters: resizing with Lanczos involves no noise."""
        return self.upscaler not in RESAMPLERS


@dataclass(frozen=True)
class LoadImage:
    """A stored image (an upload or an earlier result), by artifact id."""

    kind: ClassVar[str] = "load_image"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}

    artifact_id: str = param("", "Artifact id of one of your images (an upload or a result).")


@dataclass(frozen=True)
class LoadMask:
    """A stored black-and-white image used as a mask (white = repaint), by artifact id."""

    kind: ClassVar[str] = "load_mask"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"mask": "MASK"}

    artifact_id: str = param("", "Artifact id of one of your black-and-white images (white: repaint).")


@dataclass(frozen=True)
class Img2Vid:
    """Image to video: one video per input image. With a Stable Video Diffusion model guidance rises from
    min_cfg_scale on the first frame to cfg_scale on the last (SVD's min/max guidance); a Wan or LTX-2 model
    animates the image as the prompt says (motion_bucket_id, noise_aug_strength and min_cfg_scale are SVD's)."""

    kind: ClassVar[str] = "img2vid"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    model: str = param("", "Catalogue id of an image-to-video model (svd, wan22, ltx2); empty: the first svd one.",
                       choices="img2vid")
    width: int | None = param(None, "Frame width, a multiple of 8; empty: the model's. The image is resized to it.",
                              low="min_side", high="max_side")
    height: int | None = param(None, "Frame height, a multiple of 8; empty: the model's.", low="min_side",
                               high="max_side")
    frames: int | None = param(None, "Frames to make; empty: the model's default.", low=2, high="max_frames",
                               hint=" Make a shorter video, then interpolate it for more frames.")
    fps: int | None = param(None, "Frames per second (SVD is conditioned on it too); empty: the model's.", low=1,
                            high="max_fps")
    motion_bucket_id: int = param(127, "How much motion, 1 (little) to 255 (a lot); SVD was trained around 127.",
                                  low=1, high=255, hint=" Around 127 is SVD's usual motion; higher moves more.")
    noise_aug_strength: float = param(0.02, "Noise added to the image before conditioning: more looks less like "
                                            "the image and moves more.", low=0.0, high=1.0)
    decode_chunk_size: int | None = param(None, "Frames the VAE decodes at once: fewer use less memory; empty: all.",
                                          low=1, high="frames", hint=" Fewer frames at a time use less memory.")
    steps: int | None = param(None, "Denoising steps; empty: the model's default.", low=1, high="max_steps")
    min_cfg_scale: float = param(1.0, "Guidance on the first frame.", low=0.0, high="max_cfg_scale")
    cfg_scale: float | None = param(None, "Guidance on the last frame; empty: the model's.", low=0.0,
                                    high="max_cfg_scale")
    seed: int = param(-1, "Seed of the first video; video k uses seed + k. -1: random.", low=-1, high=MAX_SEED,
                      hint=" Use -1 for a random seed.")
    prompt: str = param("", "What happens in the video (Wan and LTX-2 models read it; SVD reads none).",
                        high="max_prompt_chars")
    negative_prompt: str = param("", "What to avoid (Wan and LTX-2).", high="max_prompt_chars")


@dataclass(frozen=True)
class Txt2Vid(Sampling):
    """Text to video: a text-to-video model (Wan, LTX-2) makes it, or an AnimateDiff motion adapter animates an
    SD1.5-family `model`; batch_size is the number of videos (video k uses seed + k)."""

    kind: ClassVar[str] = "txt2vid"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    model: str = param("", "Catalogue id of a text-to-video model (wan22, ltx2), or of an SD1.5-family model the "
                           "motion adapter animates; empty: the default model.", choices="txt2vid")
    motion_adapter: str = param("", "Catalogue id of an animatediff motion adapter; empty: the first one (not "
                                    "used by text-to-video models).", choices="animatediff")
    width: int | None = param(None, "Frame width, a multiple of 8; empty: the adapter's.", low="min_side",
                              high="max_side")
    height: int | None = param(None, "Frame height, a multiple of 8; empty: the adapter's.", low="min_side",
                               high="max_side")
    frames: int | None = param(None, "Frames to make; empty: the adapter's default.", low=2, high="max_frames",
                               hint=" Make a shorter video, then interpolate it for more frames.")
    fps: int | None = param(None, "Frames per second; empty: the adapter's default.", low=1, high="max_fps")
    decode_chunk_size: int | None = param(None, "Frames the VAE decodes at once: fewer use less memory; empty: all.",
                                          low=1, high="frames", hint=" Fewer frames at a time use less memory.")


@dataclass(frozen=True)
class Interpolate:
    """Raise a video's frame rate by making frames between each pair; the original frames are kept, n frames
    become (n - 1) * factor + 1 and the fps is multiplied by `factor`, so the video lasts as long."""

    kind: ClassVar[str] = "interpolate"
    inputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    factor: int = param(2, "How many times the frame rate: 2 or 4.", choices=(2, 4))
    method: str = param("flow", "flow (dense optical flow, no weights), or the catalogue id of an interpolator "
                                "model (RIFE family).", choices="interpolator")


@dataclass(frozen=True)
class LoadVideo:
    """A stored video (an upload or an earlier result), by artifact id."""

    kind: ClassVar[str] = "load_video"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    artifact_id: str = param("", "Artifact id of one of your videos (an upload or a result).")


NodeParams = (Txt2Img | Img2Img | Inpaint | Outpaint | Upscale | Canny | LoadImage | LoadMask | Img2Vid | Txt2Vid
              | Interpolate | LoadVideo)


@dataclass(frozen=True)
class Link:
    """An edge: output `output` of node `node`."""

    node: str
    output: str


@dataclass(frozen=True)
class Node:
    """One node of the graph: an `id` unique in the spec, its typed parameters and its input edges."""

    id: str
    params: NodeParams
    inputs: tuple[tuple[str, Link], ...] = ()

    @property
    def kind(self) -> str:
        return self.params.kind

    def link(self, name: str) -> Link | None:
        return dict(self.inputs).get(name)


@dataclass(frozen=True)
class WorkflowSpec:
    """A graph of nodes. The Simple and Advanced tabs build one-node specs."""

    nodes: tuple[Node, ...] = field(default_factory=tuple)
    version: int = SPEC_VERSION

    @classmethod
    def single(cls, params: NodeParams, node_id: str = "1") -> "WorkflowSpec":
        return cls(nodes=(Node(node_id, params),))

    def to_dict(self) -> dict:
        return {"version": self.version,
                "nodes": [{"id": n.id, "kind": n.kind, "params": dataclasses.asdict(n.params),
                           **({"inputs": {name: [link.node, link.output] for name, link in n.inputs}}
                              if n.inputs else {})}
                          for n in self.nodes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, kinds: dict[str, type] | None = None) -> "WorkflowSpec":
        """Build a spec from parsed JSON; raises InvalidRequest naming each malformed part. `kinds`: node kind ->
        the dataclass of its parameters; None = the kinds of `pipelines.nodes.REGISTRY`."""
        if kinds is None:
            from pipelines.nodes import REGISTRY     # here, because the node declarations import this module
            kinds = REGISTRY.params_types
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise InvalidRequest([Problem("bad_spec", "nodes",
                                          'A workflow must be an object with a "nodes" list.')])
        if data.get("version", SPEC_VERSION) != SPEC_VERSION:
            raise InvalidRequest([Problem("bad_spec", "version",
                                          f"Workflow version {data.get('version')!r} is not supported; use {SPEC_VERSION}.")])
        nodes, problems = [], []
        for index, raw in enumerate(data["nodes"]):
            node = _node_from_dict(index, raw, kinds, problems)
            if node is not None:
                nodes.append(node)
        if problems:
            raise InvalidRequest(problems)
        return cls(nodes=tuple(nodes))

    @classmethod
    def from_json(cls, text: str, kinds: dict[str, type] | None = None) -> "WorkflowSpec":
        """Build a spec from JSON text sent by a caller; raises InvalidRequest for text that is not JSON,
        larger than `json_guard.MAX_BYTES` or nested deeper than `json_guard.MAX_DEPTH`, checked before
        it is parsed, or for a malformed spec."""
        return cls.from_dict(json_guard.loads(text, what="The workflow", field="spec", advice=WORKFLOW_ADVICE), kinds)


def _node_from_dict(index: int, raw, kinds: dict[str, type], problems: list[Problem]) -> Node | None:
    where = f"nodes[{index}]"
    if not isinstance(raw, dict):
        problems.append(Problem("bad_spec", where, f"{where} must be an object."))
        return None
    kind = raw.get("kind")
    node_type = kinds.get(kind) if isinstance(kind, str) else None
    if node_type is None:
        problems.append(Problem("unknown_node", f"{where}.kind",
                                f"Unknown node kind {kind!r}; expected one of {sorted(kinds)}."))
        return None
    params = raw.get("params", {})
    if not isinstance(params, dict):
        problems.append(Problem("bad_spec", f"{where}.params", f"{where}.params must be an object."))
        return None
    known = {f.name for f in dataclasses.fields(node_type)}
    unknown = sorted(set(params) - known)
    if unknown:
        problems.append(Problem("unknown_parameter", f"{where}.params",
                                f"Unknown parameter(s) {unknown} for {kind}; expected some of {sorted(known)}."))
        return None
    inputs = raw.get("inputs", {})
    links = []
    if not isinstance(inputs, dict):
        problems.append(Problem("bad_spec", f"{where}.inputs", f"{where}.inputs must be an object."))
        return None
    for name, value in inputs.items():
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            problems.append(Problem("bad_link", f"{where}.inputs.{name}",
                                    f'{where}.inputs.{name} must be ["node id", "output name"], got {value!r}.'))
            continue
        links.append((name, Link(*value)))
    if isinstance(params.get("loras"), list):          # JSON lists -> the tuples the dataclass holds
        params = {**params, "loras": tuple(tuple(p) if isinstance(p, list) else p for p in params["loras"])}
    return Node(str(raw.get("id", index + 1)), node_type(**params), tuple(links))
