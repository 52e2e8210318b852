"""What a person asked for: a WorkflowSpec, a small typed graph of nodes, as frozen dataclasses.

A spec is plain data that round-trips through JSON:

    {"version": 1, "nodes": [{"id": "1", "kind": "txt2img", "params": {"prompt": "a red fox"}}]}

Unset optional parameters (None, "" or -1) mean "the model's default" or "random"; the compiler
fills them in. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import ClassVar

from pipelines.errors import InvalidRequest, Problem

SPEC_VERSION = 1


@dataclass(frozen=True)
class Txt2Img:
    """Text to image.

    prompt:           what to draw (required, not empty).
    negative_prompt:  what to avoid.
    model:            catalogue id; "" = the default model.
    width, height:    pixels, multiples of 8; None = the model's default.
    steps:            denoising steps; None = the model's default.
    cfg_scale:        classifier-free guidance scale; None = the model's default.
    sampler:          A1111/ComfyUI sampler name (e.g. "euler_a", "dpmpp_2m"); "" = the model's default.
    schedule:         "normal", "karras", "exponential", "align_your_steps", ...; "" = the model's default.
    seed:             -1 = random; image k of a batch uses seed + k.
    batch_size:       images made in one job.
    style:            style preset name; "" = none.
    """

    kind: ClassVar[str] = "txt2img"
    inputs: ClassVar[dict[str, str]] = {}               # name -> type of the edges it takes
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str = ""
    schedule: str = ""
    seed: int = -1
    batch_size: int = 1
    style: str = ""


NODE_TYPES: dict[str, type] = {Txt2Img.kind: Txt2Img}


@dataclass(frozen=True)
class Node:
    """One node of the graph: an `id` unique in the spec and its typed parameters."""

    id: str
    params: Txt2Img

    @property
    def kind(self) -> str:
        return self.params.kind


@dataclass(frozen=True)
class WorkflowSpec:
    """A graph of nodes. The Simple and Advanced tabs build one-node specs."""

    nodes: tuple[Node, ...] = field(default_factory=tuple)
    version: int = SPEC_VERSION

    @classmethod
    def single(cls, params: Txt2Img, node_id: str = "1") -> "WorkflowSpec":
        return cls(nodes=(Node(node_id, params),))

    def to_dict(self) -> dict:
        return {"version": self.version,
                "nodes": [{"id": n.id, "kind": n.kind, "params": dataclasses.asdict(n.params)} for n in self.nodes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "WorkflowSpec":
        """Build a spec from parsed JSON; raises InvalidRequest naming each malformed part."""
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise InvalidRequest([Problem("bad_spec", "nodes",
                                          'A workflow must be an object with a "nodes" list.')])
        if data.get("version", SPEC_VERSION) != SPEC_VERSION:
            raise InvalidRequest([Problem("bad_spec", "version",
                                          f"Workflow version {data.get('version')!r} is not supported; use {SPEC_VERSION}.")])
        nodes, problems = [], []
        for index, raw in enumerate(data["nodes"]):
            where = f"nodes[{index}]"
            if not isinstance(raw, dict):
                problems.append(Problem("bad_spec", where, f"{where} must be an object."))
                continue
            kind = raw.get("kind")
            node_type = NODE_TYPES.get(kind)
            if node_type is None:
                problems.append(Problem("unknown_node", f"{where}.kind",
                                        f"Unknown node kind {kind!r}; expected one of {sorted(NODE_TYPES)}."))
                continue
            params = raw.get("params", {})
            if not isinstance(params, dict):
                problems.append(Problem("bad_spec", f"{where}.params", f"{where}.params must be an object."))
                continue
            known = {f.name for f in dataclasses.fields(node_type)}
            unknown = sorted(set(params) - known)
            if unknown:
                problems.append(Problem("unknown_parameter", f"{where}.params",
                                        f"Unknown parameter(s) {unknown} for {kind}; expected some of {sorted(known)}."))
                continue
            nodes.append(Node(str(raw.get("id", index + 1)), node_type(**params)))
        if problems:
            raise InvalidRequest(problems)
        return cls(nodes=tuple(nodes))

    @classmethod
    def from_json(cls, text: str) -> "WorkflowSpec":
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise InvalidRequest([Problem("bad_json", "spec", f"The workflow is not valid JSON: {e}.")]) from None
        return cls.from_dict(data)
