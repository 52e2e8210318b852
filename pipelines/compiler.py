"""The compiler: WorkflowSpec -> ExecutionPlan, validating everything once, up front.

It checks types, bounds and names, fills defaults from the model catalogue, applies the style
preset, resolves each model to its content hash, turns seed -1 into a concrete seed (image k of a
batch gets seed + k) and prices the job. It never repairs a request silently: every problem comes
back as an `InvalidRequest` listing each `Problem` with its field and a fix. Pure and fast: no torch.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from configs import CreditPrices, Limits, ModelEntry, Style
from pipelines.errors import InvalidRequest, Problem
from pipelines.plan import ExecutionPlan, ModelRef, Txt2ImgStep
from pipelines.samplers import SAMPLERS, SCHEDULES, schedule_error
from pipelines.spec import Txt2Img, WorkflowSpec

MAX_SEED = 2**32 - 1


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or (
        isinstance(value, float) and value.is_integer())


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class _Checker:
    """Collects problems for one node so the person sees all of them at once."""

    node_id: str
    problems: list[Problem] = field(default_factory=list)

    def fail(self, code: str, name: str, message: str) -> None:
        self.problems.append(Problem(code, name, message))

    def integer(self, name: str, value, low: int, high: int, hint: str = "") -> int | None:
        if not _is_int(value):
            self.fail("wrong_type", name, f"{name} must be a whole number, got {value!r}.")
            return None
        value = int(value)
        if not low <= value <= high:
            self.fail("out_of_range", name, f"{name} must be between {low} and {high}, got {value}.{hint}")
            return None
        return value

    def number(self, name: str, value, low: float, high: float) -> float | None:
        if not _is_number(value):
            self.fail("wrong_type", name, f"{name} must be a number, got {value!r}.")
            return None
        if not low <= value <= high:
            self.fail("out_of_range", name, f"{name} must be between {low:g} and {high:g}, got {value:g}.")
            return None
        return float(value)

    def text(self, name: str, value, max_chars: int) -> str | None:
        if not isinstance(value, str):
            self.fail("wrong_type", name, f"{name} must be text, got {type(value).__name__}.")
            return None
        if len(value) > max_chars:
            self.fail("too_long", name, f"{name} is {len(value)} characters; the limit is {max_chars}.")
            return None
        return value


class Compiler:
    """Turns specs into plans for one catalogue.

    Args:
        models: the catalogue; the first entry is the default model.
        styles: style presets by name.
        limits: bounds on sizes, steps, guidance and batch size.
        prices: credit prices used for the quote.
        model_hash: returns the content hash of a catalogue entry's weights.
        seed_source: returns a random seed for requests with seed -1.
    """

    def __init__(self, models: tuple[ModelEntry, ...], styles: tuple[Style, ...], limits: Limits,
                 prices: CreditPrices, model_hash: Callable[[ModelEntry], str],
                 seed_source: Callable[[], int] = random_seed):
        self.models = {m.id: m for m in models}
        self.default_model = models[0]
        self.styles = {s.name: s for s in styles}
        self.limits = limits
        self.prices = prices
        self.model_hash = model_hash
        self.seed_source = seed_source

    def compile(self, spec: WorkflowSpec) -> ExecutionPlan:
        """Validate `spec` and return its plan; raises InvalidRequest listing every problem."""
        if not spec.nodes:
            raise InvalidRequest([Problem("empty_workflow", "nodes", "The workflow has no nodes; add a txt2img node.")])
        ids = [n.id for n in spec.nodes]
        if len(set(ids)) != len(ids):
            raise InvalidRequest([Problem("duplicate_node", "nodes", f"Node ids must be unique, got {ids}.")])
        steps, problems = [], []
        for node in spec.nodes:
            checker = _Checker(node.id)
            step = self._txt2img(node.id, node.params, checker)
            problems += checker.problems
            if step is not None:
                steps.append(step)
        if problems:
            raise InvalidRequest(problems)
        steps = tuple(steps)
        return ExecutionPlan(steps=steps, credits=sum(self.price(s) for s in steps))

    def price(self, step: Txt2ImgStep) -> float:
        """Credits for a step: `base_image` per 512x512 image, in proportion to pixels, rounded up to
        half credits, times `sdxl_multiplier` on SDXL-family models."""
        per_image = self.prices.base_image * step.width * step.height / (512 * 512)
        if step.model.family == "sdxl":
            per_image *= self.prices.sdxl_multiplier
        per_image = max(0.5, math.ceil(per_image * 2) / 2)
        return per_image * step.image_count

    def _txt2img(self, node_id: str, p: Txt2Img, check: _Checker) -> Txt2ImgStep | None:
        limits = self.limits
        prompt = check.text("prompt", p.prompt, limits.max_prompt_chars)
        if prompt is not None and not prompt.strip():
            check.fail("empty_prompt", "prompt", "The prompt is empty; describe the picture you want.")
        negative = check.text("negative_prompt", p.negative_prompt, limits.max_prompt_chars)

        model = self._model(p.model, check)
        if model is None:
            return None
        width = self._side("width", model.width if p.width is None else p.width, check)
        height = self._side("height", model.height if p.height is None else p.height, check)
        if width and height and width * height > limits.max_pixels:
            check.fail("too_many_pixels", "width",
                       f"{width}x{height} is {width * height:,} pixels; the limit is {limits.max_pixels:,}. "
                       "Make the image smaller, then upscale it.")
        steps = check.integer("steps", model.steps if p.steps is None else p.steps, 1, limits.max_steps)
        cfg = check.number("cfg_scale", model.cfg_scale if p.cfg_scale is None else p.cfg_scale,
                           0.0, limits.max_cfg_scale)
        sampler = p.sampler or model.sampler
        schedule = p.schedule or model.schedule
        if not isinstance(sampler, str) or sampler not in SAMPLERS:
            check.fail("unknown_sampler", "sampler", f"Unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}.")
        elif not isinstance(schedule, str) or schedule not in SCHEDULES:
            check.fail("unknown_schedule", "schedule",
                       f"Unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}.")
        elif (message := schedule_error(sampler, schedule)) is not None:
            check.fail("unsupported_schedule", "schedule", message)
        batch = check.integer("batch_size", p.batch_size, 1, limits.max_batch_size)
        seed = check.integer("seed", p.seed, -1, MAX_SEED, " Use -1 for a random seed.")
        style = self._style(p.style, check)
        if check.problems:
            return None

        seed = self.seed_source() if seed == -1 else seed
        prompt, negative = style.apply(prompt, negative) if style else (prompt, negative)
        ref = ModelRef(id=model.id, family=model.family, source=model.source, hash=self.model_hash(model))
        return Txt2ImgStep(id=node_id, model=ref, prompt=prompt, negative_prompt=negative, width=width,
                           height=height, steps=steps, cfg_scale=cfg, sampler=sampler, schedule=schedule,
                           seeds=tuple(seed + k for k in range(batch)), style=style.name if style else "")

    def _model(self, model_id, check: _Checker) -> ModelEntry | None:
        if model_id in ("", None):
            return self.default_model
        if not isinstance(model_id, str) or model_id not in self.models:
            check.fail("unknown_model", "model",
                       f"Unknown model {model_id!r}; choose one of {sorted(self.models)} "
                       "(add others to configs/models.toml).")
            return None
        return self.models[model_id]

    def _side(self, name: str, value, check: _Checker) -> int | None:
        limits = self.limits
        value = check.integer(name, value, limits.min_side, limits.max_side)
        if value is not None and value % 8:
            check.fail("not_multiple_of_8", name,
                       f"{name} must be a multiple of 8, got {value}; try {max(limits.min_side, value // 8 * 8)}.")
            return None
        return value

    def _style(self, name, check: _Checker) -> Style | None:
        if name in ("", None, "None"):
            return None
        if not isinstance(name, str) or name not in self.styles:
            check.fail("unknown_style", "style", f"Unknown style {name!r}; choose one of {sorted(self.styles)}.")
            return None
        return self.styles[name]
