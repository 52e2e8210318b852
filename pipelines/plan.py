"""An ExecutionPlan: fully resolved, topologically ordered steps, ready for the runner.

Everything that decides the output is in the plan: model content hashes, final prompts (styles
applied), sampler, schedule, size, steps, guidance and one concrete seed per image. The plan's
canonical JSON is its identity: `plan_hash` is the sha256 of it. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

PLAN_VERSION = 1


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


@dataclass(frozen=True)
class Txt2ImgStep:
    """Make `len(seeds)` images from text; image k uses `seeds[k]`."""

    kind: ClassVar[str] = "txt2img"

    id: str
    model: ModelRef
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    schedule: str
    seeds: tuple[int, ...]
    style: str = ""

    @property
    def image_count(self) -> int:
        return len(self.seeds)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind
        data["seeds"] = list(self.seeds)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Txt2ImgStep":
        data = {k: v for k, v in data.items() if k != "kind"}
        return cls(**{**data, "model": ModelRef(**data["model"]), "seeds": tuple(data["seeds"])})


STEP_TYPES: dict[str, type] = {Txt2ImgStep.kind: Txt2ImgStep}


@dataclass(frozen=True)
class ExecutionPlan:
    """Steps in the order they run, and the price in credits quoted when the plan was compiled."""

    steps: tuple[Txt2ImgStep, ...]
    credits: float = 0.0
    version: int = PLAN_VERSION

    def recipe(self) -> dict:
        """What decides the output; hashed for `plan_hash` (the price is not part of it)."""
        return {"version": self.version, "steps": [s.to_dict() for s in self.steps]}

    @property
    def plan_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.recipe()).encode()).hexdigest()

    @property
    def image_count(self) -> int:
        return sum(s.image_count for s in self.steps)

    def to_dict(self) -> dict:
        return {**self.recipe(), "credits": self.credits}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "ExecutionPlan":
        steps = tuple(STEP_TYPES[s["kind"]].from_dict(s) for s in data["steps"])
        return cls(steps=steps, credits=data.get("credits", 0.0), version=data.get("version", PLAN_VERSION))

    @classmethod
    def from_json(cls, text: str) -> "ExecutionPlan":
        return cls.from_dict(json.loads(text))
