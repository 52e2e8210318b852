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
from pipelines.errors import InvalidRequest, Problem

SPEC_VERSION = 1
# Said when a workflow's JSON is too large or too deep: a spec nests 6 levels (spec, nodes, a node, its
# params, its loras, one LoRA), and a node takes about 400 bytes.
WORKFLOW_ADVICE = ("Check the JSON your script sends: a workflow nests 6 levels at most, and a thousand nodes "
                   "take about 400 kB.")
MaskedContent = Literal["original", "noise", "fill"]
RESAMPLERS = ("lanczos",)          # upscalers that resize without a model (and without noise)
INTERPOLATORS = ("flow",)          # interpolation methods that need no model


@dataclass(frozen=True)
class Sampling:
    """Parameters every diffusion node shares.

    prompt:           what to draw.
    negative_prompt:  what to avoid.
    model:            catalogue id; "" = the default model.
    steps:            denoising steps; None = the model's default.
    cfg_scale:        classifier-free guidance scale; None = the model's default.
    sampler:          A1111/ComfyUI sampler name (e.g. "euler_a", "dpmpp_2m"); "" = the model's default.
    schedule:         "normal", "karras", "exponential", "align_your_steps", ...; "" = the model's default.
    seed:             -1 = random; image k uses seed + k.
    batch_size:       images made per input image (or in all, for txt2img).
    style:            style preset name; "" = none.
    loras:            (name, weight) pairs of LoRA files to apply, besides <lora:name:weight> in the prompt.
    """

    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str = ""
    schedule: str = ""
    seed: int = -1
    batch_size: int = 1
    style: str = ""
    loras: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Control:
    """ControlNet guidance, used when the node's optional `control` input (an IMAGE) is connected.

    control_model:  catalogue id of a ControlNet for the model's family.
    control_scale:  how strongly it steers (0 = not at all).
    control_start, control_end:  the fraction of the denoising steps it acts on.
    """

    control_model: str = ""
    control_scale: float = 1.0
    control_start: float = 0.0
    control_end: float = 1.0


@dataclass(frozen=True)
class Txt2Img(Control, Sampling):
    """Text to image. width, height: pixels, multiples of 8; None = the model's default."""

    kind: ClassVar[str] = "txt2img"
    inputs: ClassVar[dict[str, str]] = {"control": "IMAGE"}
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"control"})
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Img2Img(Control, Sampling):
    """Image to image. strength: 0 keeps the image, 1 repaints it entirely. width, height: None = the
    input's size (rounded down to multiples of 8)."""

    kind: ClassVar[str] = "img2img"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE", "control": "IMAGE"}
    optional_inputs: ClassVar[frozenset[str]] = frozenset({"control"})
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    strength: float = 0.75
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Canny:
    """Edges of an image (OpenCV's Canny, thresholds `low` and `high`), white on black: a control image."""

    kind: ClassVar[str] = "canny"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    low: int = 100
    high: int = 200


@dataclass(frozen=True)
class Inpaint(Sampling):
    """Repaint where the mask is white (AUTOMATIC1111's inpaint).

    strength:          how much the masked area changes (1 = entirely).
    mask_blur:         feather the mask edge inward by this many pixels (outside the mask nothing changes).
    invert_mask:       repaint where the mask is black instead.
    full_res:          "inpaint only masked": work on a crop around the mask at the model's size, paste back.
    full_res_padding:  pixels of context around the mask for the crop.
    masked_content:    what the masked area starts from: "original", "noise" or "fill".
    """

    kind: ClassVar[str] = "inpaint"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE", "mask": "MASK"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    strength: float = 0.75
    mask_blur: int = 4
    invert_mask: bool = False
    full_res: bool = False
    full_res_padding: int = 32
    masked_content: MaskedContent = "original"


@dataclass(frozen=True)
class Outpaint(Sampling):
    """Extend the canvas by `left`, `right`, `top`, `bottom` pixels and paint the new area."""

    kind: ClassVar[str] = "outpaint"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    feather: int = 16
    strength: float = 1.0
    masked_content: MaskedContent = "fill"


@dataclass(frozen=True)
class Upscale:
    """Enlarge an image by `scale` with `upscaler`: "lanczos", or the catalogue id of an upscaler model,
    which works in tiles of `tile_size` px (so large images fit in memory) for `steps` steps from `seed`,
    then is resized to the exact scale with Lanczos."""

    kind: ClassVar[str] = "upscale"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    scale: float = 2.0
    upscaler: str = "lanczos"
    steps: int | None = None
    seed: int = -1
    tile_size: int = 128

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

    artifact_id: str = ""


@dataclass(frozen=True)
class LoadMask:
    """A stored black-and-white image used as a mask (white = repaint), by artifact id."""

    kind: ClassVar[str] = "load_mask"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"mask": "MASK"}

    artifact_id: str = ""


@dataclass(frozen=True)
class Img2Vid:
    """Image to video with a Stable Video Diffusion model: one video per input image.

    model:               catalogue id of an `svd` model; "" = the first one.
    width, height:       frame size in pixels, multiples of 8; None = the model's. The image is resized to
                         it (the plan notes when that changes its shape).
    frames:              frames to make; None = the model's default.
    fps:                 frames per second of the video; SVD is also conditioned on it. None = the model's.
    motion_bucket_id:    how much motion, 1 (little) to 255 (a lot); SVD was trained around 127.
    noise_aug_strength:  noise added to the image before conditioning: more looks less like the image
                         and moves more.
    decode_chunk_size:   frames the VAE decodes at once: fewer use less memory; None = all at once.
    steps:               denoising steps; None = the model's default.
    min_cfg_scale, cfg_scale:  guidance rises from min_cfg_scale on the first frame to cfg_scale on the
                         last (SVD's min/max guidance); cfg_scale None = the model's.
    seed:                -1 = random; video k uses seed + k.
    """

    kind: ClassVar[str] = "img2vid"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    model: str = ""
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: int | None = None
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    decode_chunk_size: int | None = None
    steps: int | None = None
    min_cfg_scale: float = 1.0
    cfg_scale: float | None = None
    seed: int = -1


@dataclass(frozen=True)
class Txt2Vid(Sampling):
    """Text to video with AnimateDiff: a motion adapter animates an SD1.5-family `model`.

    motion_adapter:     catalogue id of an `animatediff` motion adapter; "" = the first one.
    width, height:      frame size, multiples of 8; None = the model's.
    frames, fps:        length and speed of the video; None = the motion adapter's defaults.
    decode_chunk_size:  frames the VAE decodes at once; None = all at once.
    batch_size is the number of videos (video k uses seed + k).
    """

    kind: ClassVar[str] = "txt2vid"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    motion_adapter: str = ""
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: int | None = None
    decode_chunk_size: int | None = None


@dataclass(frozen=True)
class Interpolate:
    """Raise a video's frame rate `factor` times (2 or 4) by making frames between each pair: `method`
    "flow" uses dense optical flow (no weights needed); the id of an `interpolator` model from the
    catalogue uses that learned model (RIFE family). The original frames are kept; n frames become
    (n - 1) * factor + 1 and the fps is multiplied by `factor`, so the video lasts as long."""

    kind: ClassVar[str] = "interpolate"
    inputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    factor: int = 2
    method: str = "flow"


@dataclass(frozen=True)
class LoadVideo:
    """A stored video (an upload or an earlier result), by artifact id."""

    kind: ClassVar[str] = "load_video"
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {"video": "VIDEO"}

    artifact_id: str = ""


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
