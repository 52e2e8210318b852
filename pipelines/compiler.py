"""The compiler: WorkflowSpec -> ExecutionPlan, validating everything once, up front.

It checks the graph (links, edge types, cycles), each node's types, bounds and names, fills
defaults from the model catalogue, applies style presets, resolves each model to its content hash
and each input image to its artifact, works out the size and number of every step's images, turns
seed -1 into the request's one seed (image k gets seed + k) and prices the job. It never repairs a request
silently: problems come back as an `InvalidRequest` listing each `Problem` with its field and a fix.
Each node kind's own checks and step are in its declaration (`pipelines/nodes/`); the compiler runs the
graph, calls each node's compile in order, and offers the checks the kinds share (sampling, sizes, models,
seeds, LoRAs, ControlNet). Pure and fast: no torch, no files (input images are described by `describe`).
"""
from __future__ import annotations

import dataclasses
import math
import re
import secrets
from collections.abc import Callable

from configs import CreditPrices, Limits, ModelEntry, Style
from pipelines.checks import MAX_SEED, Checker, is_whole
from pipelines.errors import InvalidRequest, Problem
from pipelines.facts import Describe, Made
from pipelines.families import FAMILIES
from pipelines.family import Family, FamilyRegistry
from pipelines.loras import ExtraFile
from pipelines.model_facts import ModelFacts
from pipelines.node import NodeRegistry, Request, input_of
from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan, ModelRef
from pipelines.pricing import over_tier
from pipelines.prompt_syntax import extract_loras
from pipelines.samplers import accepted_names, family_samplers, family_schedule_error, family_schedules
from pipelines.spec import INTERPOLATORS, RESAMPLERS, Control, Node, Sampling, WorkflowSpec

MAX_LORA_WEIGHT = 2.0
_DECLARED = object()         # `Compiler.checked`: take the value the request gave
# Where a model that does not draw pictures itself goes instead, by family.
NOT_A_GENERATOR = {"controlnet": "give it as control_model", "upscaler": "give it as upscaler (upscale node)",
                   "svd": "use it for image to video (img2vid node, the Video tab)",
                   "animatediff": "give it as motion_adapter (txt2vid node, the Video tab)",
                   "interpolator": "give it as method (interpolate node)"}


def _union(names_of: Callable[[str], tuple[str, ...]], families: FamilyRegistry) -> tuple[str, ...]:
    """The names `names_of(scheduling)` gives for the schedulings of `families`, each once, in order."""
    return tuple(dict.fromkeys(name for scheduling in ("discrete", "flow") for name in names_of(scheduling)
                               if any(f.scheduling == scheduling for f in families)))


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


class Compiler:
    """Turns specs into plans for one catalogue.

    Args:
        models: the catalogue (checked and given its families' defaults by `families.catalogue`); the first model
            that draws is the default.
        styles: style presets by name.
        limits: bounds on sizes, steps, guidance and batch size.
        prices: credit prices used for the quote.
        model_hash: returns the content hash of a catalogue entry's weights.
        seed_source: returns a random seed for requests with seed -1.
        extras: kind ("lora" or "embedding") -> the files available, by name.
        registry: the node kinds it compiles.
        model_facts: what each model's files say (`pipelines.model_facts.ModelInspector`); with it, hashes come
            from there and models that cannot run a request are refused here, not in the worker.
        families: the model families it knows (defaults, size rule, samplers, tasks).
    """

    def __init__(self, models: tuple[ModelEntry, ...], styles: tuple[Style, ...], limits: Limits,
                 prices: CreditPrices, model_hash: Callable[[ModelEntry], str],
                 seed_source: Callable[[], int] = random_seed,
                 extras: Callable[[str], dict[str, ExtraFile]] = lambda kind: {},
                 registry: NodeRegistry = REGISTRY,
                 model_facts: Callable[[ModelEntry], ModelFacts] | None = None,
                 families: FamilyRegistry = FAMILIES):
        models = families.catalogue(models)
        self.families = families
        self.models = {m.id: m for m in models}
        self.default_model = models[0]
        self.styles = {s.name: s for s in styles}
        self.limits = limits
        self.prices = prices
        self.model_hash = model_hash
        self.seed_source = seed_source
        self.extras = extras
        self.registry = registry
        self.model_facts = model_facts

    def compile(self, spec: WorkflowSpec, describe: Describe | None = None, tier_max_side: int = 0,
                tier: str = "", tier_max_frames: int = 0, tier_max_nodes: int = 0) -> ExecutionPlan:
        """Validate `spec` and return its plan; raises InvalidRequest listing every problem.

        Args:
            spec: the workflow.
            describe: (artifact id, used as "image", "mask" or "video") -> InputFacts (None if the caller
                may not use it so).
            tier_max_side: the widest image side the caller's tier allows (0 = only the global limits).
            tier: the tier's name, for the message.
            tier_max_frames: the most frames of one video the caller's tier allows (0 = the global limit).
            tier_max_nodes: the most nodes in one workflow the caller's tier allows (0 = the global limit);
                checked first, on its own, so that a huge graph is refused without being looked at.
        """
        self.check_nodes(len(spec.nodes), tier_max_nodes, tier)
        nodes = self._ordered(self._with_request_seed(spec))
        made: dict[str, Made] = {}
        steps, problems = [], []
        request = Request(describe)
        for node in nodes:
            if any(link.node not in made for _, link in node.inputs):
                continue                                    # an input failed; its problem is reported
            check = Checker(where=f"{node.id}." if len(nodes) > 1 else "")
            inputs = {name: made[link.node] for name, link in node.inputs}
            result = self.registry.node(node.kind).compile(self, node, inputs, check, request)
            problems += check.problems
            if result is not None and not check.problems:
                steps.append(result[0])
                made[node.id] = result[1]
        problems += over_tier(steps, tier_max_side, tier, tier_max_frames)
        if problems:
            raise InvalidRequest(problems)
        return ExecutionPlan(steps=tuple(steps), credits=sum(self.registry.price(s, self.prices) for s in steps),
                             notes=tuple(request.notes))

    def check_nodes(self, count: int, tier_max_nodes: int = 0, tier: str = "") -> None:
        """Raise InvalidRequest if a workflow of `count` nodes (or a plan of `count` steps) is bigger than
        the caller's tier allows (`tier_max_nodes`, 0 = no tier cap; `tier` names it in the message) or than
        [limits] max_nodes. Each node may hold a worker for minutes, so this bounds how long one job can
        keep everyone else's waiting (issue 11: a 1000-node workflow held the only worker for an hour)."""
        if tier_max_nodes and tier_max_nodes < self.limits.max_nodes and count > tier_max_nodes:
            raise InvalidRequest([Problem("tier_max_nodes", "nodes",
                                          f"Your {tier or 'current'} tier runs workflows of up to {tier_max_nodes} "
                                          f"nodes; this one has {count}. Split it into smaller workflows, or "
                                          "change tier in the Account tab.")])
        if count > self.limits.max_nodes:
            raise InvalidRequest([Problem("too_many_nodes", "nodes",
                                          f"A workflow may have up to {self.limits.max_nodes} nodes; this one has "
                                          f"{count}. Split it into smaller workflows.")])

    def _with_request_seed(self, spec: WorkflowSpec) -> WorkflowSpec:
        """`spec` with every seed left at -1 set to the request's seed: the first seed a node gives, else
        one drawn at random, once. So every seed of a plan derives from one number, and the same request
        with a seed gives the same plan (issue 18: hires fix drew a second, random seed for its upscale).
        A Lanczos upscale uses no noise, so it takes 0: resizing the same image twice is one plan."""
        given = [n.params.seed for n in spec.nodes if is_whole(getattr(n.params, "seed", None))
                 and 0 <= n.params.seed <= MAX_SEED]
        request_seed = given[0] if given else None
        nodes = []
        for node in spec.nodes:
            p = node.params
            if is_whole(getattr(p, "seed", None)) and p.seed == -1:
                if not getattr(p, "draws_noise", True):
                    seed = 0
                else:
                    request_seed = self.seed_source() if request_seed is None else request_seed
                    seed = request_seed
                node = dataclasses.replace(node, params=dataclasses.replace(p, seed=seed))
            nodes.append(node)
        return dataclasses.replace(spec, nodes=tuple(nodes))

    # -- the graph -------------------------------------------------------------------------------

    def _ordered(self, spec: WorkflowSpec) -> list[Node]:
        """The nodes in an order where every node comes after its inputs; checks the edges."""
        if not spec.nodes:
            raise InvalidRequest([Problem("empty_workflow", "nodes", "The workflow has no nodes; add a txt2img node.")])
        by_id = {n.id: n for n in spec.nodes}
        if len(by_id) != len(spec.nodes):
            raise InvalidRequest([Problem("duplicate_node", "nodes",
                                          f"Node ids must be unique, got {[n.id for n in spec.nodes]}.")])
        problems = []
        for node in spec.nodes:
            if node.kind not in self.registry.params_types:
                problems.append(Problem("unknown_node", f"{node.id}.kind", f"Unknown node kind {node.kind!r}; "
                                        f"expected one of {sorted(self.registry.params_types)}."))
                continue
            declared = type(node.params).inputs
            optional = getattr(type(node.params), "optional_inputs", frozenset())
            given = dict(node.inputs)
            for name in sorted(set(declared) - set(given) - optional):
                problems.append(Problem("missing_input", f"{node.id}.inputs.{name}",
                                        f"{node.kind} node {node.id!r} needs an input {name!r} ({declared[name]})."))
            for name, link in node.inputs:
                where = f"{node.id}.inputs.{name}"
                source = by_id.get(link.node)
                if name not in declared:
                    problems.append(Problem("unknown_input", where, f"{node.kind} takes no input {name!r}; "
                                            f"its inputs are {sorted(declared) or 'none'}."))
                elif source is None:
                    problems.append(Problem("unknown_node", where, f"Input {name!r} of node {node.id!r} names "
                                            f"node {link.node!r}, which is not in the workflow."))
                elif type(source.params).outputs.get(link.output) != declared[name]:
                    problems.append(Problem("wrong_type", where, f"Input {name!r} of node {node.id!r} takes "
                                            f"{declared[name]}; {link.node}.{link.output} is "
                                            f"{type(source.params).outputs.get(link.output, 'not an output')}."))
        if problems:
            raise InvalidRequest(problems)
        ordered, placed = [], set()
        while len(ordered) < len(spec.nodes):
            ready = [n for n in spec.nodes if n.id not in placed and all(l.node in placed for _, l in n.inputs)]
            if not ready:
                stuck = sorted(n.id for n in spec.nodes if n.id not in placed)
                raise InvalidRequest([Problem("cycle", "nodes", f"The workflow has a cycle through nodes {stuck}.")])
            ordered += ready
            placed |= {n.id for n in ready}
        return ordered

    # -- the checks node kinds share ---------------------------------------------------------------

    def choices(self, name: str) -> tuple:
        """The values a parameter declared with `choices=name` takes, from this catalogue."""
        by_family = lambda family: tuple(m.id for m in self.models.values() if m.family == family)  # noqa: E731
        lists = {"model": self.drawing, "img2vid": lambda: self.able("img2vid"), "edit": lambda: self.able("edit"),
                 "inpaint": lambda: self.able("inpaint"),
                 "txt2vid": lambda: self.able("txt2vid") + tuple(m for m in self.drawing() if self.animated(m)),
                 "sampler": lambda: _union(family_samplers, self.families),
                 "schedule": lambda: _union(family_schedules, self.families),
                 "style": lambda: tuple(self.styles), "upscaler": self.upscalers,
                 "interpolator": self.interpolators}
        return lists[name]() if name in lists else by_family(name)

    def checked(self, params, name: str, check: Checker, value=_DECLARED, high=None):
        """Parameter `name` of `params` (or `value`, a default already filled in) checked against its
        declaration: its type, its bounds (limits resolved; `high` overrides the declared one) and its
        choices. None (with a problem in `check`) when it is not what the declaration allows."""
        declared = input_of(type(params), name)
        value = getattr(params, name) if value is _DECLARED else value
        low, high = self._bound(declared.low), self._bound(declared.high if high is None else high)
        choices = declared.choices
        if isinstance(choices, str):
            choices = self.choices(choices)
        if declared.type == "int":
            if low is None and choices:
                low, high = min(choices), max(choices)
            value = check.integer(name, value, low, high, declared.hint)
        elif declared.type == "float":
            value = check.number(name, value, low, high)
        elif declared.type == "bool":
            return check.flag(name, value)
        elif declared.type == "str" and high is not None:
            value = check.text(name, value, high)
        if value is not None and choices:
            value = check.choice(name, value, choices)
        return value

    def _bound(self, bound):
        return getattr(self.limits, bound) if isinstance(bound, str) else bound

    def upscalers(self) -> tuple[str, ...]:
        """Names the `upscaler` parameter takes: the resamplers, then the catalogue's upscaler models."""
        return RESAMPLERS + tuple(m.id for m in self.models.values() if m.family == "upscaler")

    def interpolators(self) -> tuple[str, ...]:
        """Names the interpolate node's `method` takes: optical flow, then the catalogue's learned models."""
        return INTERPOLATORS + tuple(m.id for m in self.models.values() if m.family == "interpolator")

    def video_model(self, model_id, family: str, name: str, check: Checker) -> ModelEntry | None:
        """The catalogue entry of `family` called `model_id` ("" = the first of that family)."""
        choices = [m for m in self.models.values() if m.family == family]
        if model_id in ("", None) and choices:
            return choices[0]
        if isinstance(model_id, str) and model_id in self.models and self.models[model_id].family == family:
            return self.models[model_id]
        check.fail("unknown_model", name, f"Unknown {family} model {model_id!r}; choose one of "
                   f"{sorted(m.id for m in choices) or 'none'} (add others to configs/models.toml).")
        return None

    def frames_and_fps(self, params, model: ModelEntry, check: Checker) -> tuple[int | None, int | None]:
        """The checked frames and fps of a video node's `params`, `model`'s where they are None."""
        frames = self.checked(params, "frames", check, model.frames if params.frames is None else params.frames)
        fps = self.checked(params, "fps", check, model.fps if params.fps is None else params.fps)
        return frames, fps

    def chunk(self, params, frames: int | None, check: Checker) -> int | None:
        """The checked decode_chunk_size of `params`: at most `frames`, which it is when None."""
        if params.decode_chunk_size is None:
            return frames
        return self.checked(params, "decode_chunk_size", check, high=max(frames or 1, 1))

    def control(self, p: Control, control: Made | None, model: ModelEntry, images: int, check: Checker,
                task: str = "txt2img") -> dict:
        """The ControlNet fields of a `task` step: none without a control image, else a checked ControlNet that
        `model`'s family can take in that task."""
        if control is None:
            if p.control_model:
                check.fail("missing_input", "control", f"control_model {p.control_model!r} is set but no control "
                           "image is connected; give one (and a canny node for edges).")
            return {}
        entry = self.models.get(p.control_model) if isinstance(p.control_model, str) else None
        if entry is None or entry.family != "controlnet":
            nets = sorted(m.id for m in self.models.values() if m.family == "controlnet")
            check.fail("unknown_controlnet", "control_model",
                       f"A control image needs a control_model; choose one of {nets or 'none (add one)'}, "
                       f"got {p.control_model!r}.")
            return {}
        if entry.base_family != model.family:
            check.fail("wrong_controlnet", "control_model", f"ControlNet {entry.id!r} is for {entry.base_family} "
                       f"models; {model.id!r} is {model.family}.")
        elif self.family(model).control_tasks.get(task) is None:
            check.fail("no_pipeline", "control_model", f"{self.family(model).label} models take a ControlNet in "
                       f"{' and '.join(self.family(model).control_tasks)} only, not in {task}; leave control_model "
                       "empty here.")
        if control.count not in (1, images):
            check.fail("control_count", "control", f"Give one control image, or one per image ({images}).")
        scale = self.checked(p, "control_scale", check)
        start = self.checked(p, "control_start", check)
        end = self.checked(p, "control_end", check)
        if start is not None and end is not None and start >= end:
            check.fail("out_of_range", "control_start", f"control_start ({start:g}) must be below control_end "
                       f"({end:g}).")
        return {"control_model": self.ref(entry, check, "control_model"), "control_scale": scale,
                "control_start": start, "control_end": end}


    def sampling(self, p: Sampling, check: Checker, need_prompt: bool, inpaints: bool = False,
                 task: str = "txt2img") -> dict | None:
        """The parameters every diffusion node shares, resolved (None if the model is unknown). `inpaints`: the
        node runs an inpainting pipeline, so an inpainting model may do it. `task`: what the node asks of the
        model's family (`pipelines.family.TASKS`); a family without a pipeline for it is refused."""
        prompt = self.checked(p, "prompt", check)
        if need_prompt and prompt is not None and not prompt.strip():
            check.fail("empty_prompt", "prompt", "The prompt is empty; describe the picture you want.")
        negative = self.checked(p, "negative_prompt", check)
        task = "inpaint" if inpaints else task
        model = self._model(p.model, check, task)
        if model is None:
            return None
        family = self.family(model)
        self.task(model, task, check)
        if negative and not family.negative_prompt:
            check.fail("no_negative_prompt", "negative_prompt", f"{family.label} models read no negative prompt "
                       f"(their guidance is distilled into the model); leave negative_prompt empty for {model.id!r}.")
        steps = self.checked(p, "steps", check, model.steps if p.steps is None else p.steps)
        cfg = self.checked(p, "cfg_scale", check, model.cfg_scale if p.cfg_scale is None else p.cfg_scale)
        sampler, schedule = p.sampler, p.schedule
        if isinstance(sampler, str) and isinstance(schedule, str):
            sampler, schedule = accepted_names(sampler, schedule)      # A1111's labels too ("DPM++ 2M Karras")
        sampler = sampler or model.sampler
        schedule = schedule or model.schedule
        if not isinstance(sampler, str) or not isinstance(schedule, str):
            check.fail("wrong_type", "sampler", f"sampler and schedule are names; got {sampler!r} and {schedule!r}.")
        elif (problem := family_schedule_error(family.scheduling, sampler, schedule, family.samplers)) is not None:
            check.fail(*problem)
        batch = self.checked(p, "batch_size", check)
        seed = self.seed(p, check)
        style = self._style(p.style, check)
        if check.problems:
            return {"entry": model, "batch": batch} if batch is not None else None
        prompt, negative = style.apply(prompt, negative) if style else (prompt, negative)
        if not family.negative_prompt:
            negative = ""               # a style's negative means nothing to a family that reads none
        prompt, loras = self._loras(prompt, p.loras, check, model)
        if check.problems:
            return {"entry": model, "batch": batch}
        ref = self.ref(model, check, "model")
        if self.model_facts is not None and self.model_facts(model).inpainting and not inpaints:
            check.fail("inpainting_model", "model", f"Model {model.id!r} is an inpainting model; use it to inpaint or "
                       f"outpaint, or choose one of {[m for m in self.choices('model') if m != model.id]}.")
        return {"entry": model, "model": ref, "prompt": prompt, "negative_prompt": negative, "steps": steps,
                "cfg_scale": cfg, "sampler": sampler, "schedule": schedule, "batch": batch,
                "seed": seed, "style": style.name if style else "",
                "loras": loras,
                "embeddings": self._embeddings(prompt, negative) if family.textual_inversion else ()}

    def denoises(self, steps: int | None, strength: float | None, check: Checker) -> None:
        """Refuse a strength and steps that repaint nothing: diffusers runs int(steps x strength) of the
        steps on an image, and none at all fails deep inside the pipeline. Strength 0 keeps the image."""
        if steps and strength and int(steps * strength) < 1:
            check.fail("too_few_steps", "steps", f"At strength {strength:g}, {steps} step(s) repaint nothing (an image "
                       f"gets steps x strength of them); use at least {math.ceil(1 / strength)} steps or a higher "
                       "strength.")

    def _loras(self, prompt: str, chosen, check: Checker, model: ModelEntry) -> tuple[str, tuple]:
        """The prompt without its <lora:...> tags, and (name, sha256, weight, shorthash) of every LoRA; a LoRA made
        for another kind of denoiser than `model`'s family has is refused."""
        try:
            prompt, uses = extract_loras(prompt)
        except ValueError as e:
            check.fail("bad_lora_tag", "prompt", str(e))
            return prompt, ()
        pairs = [(u.name, u.weight) for u in uses]
        if not isinstance(chosen, (list, tuple)) or not all(
                isinstance(c, (list, tuple)) and len(c) == 2 for c in chosen):
            check.fail("wrong_type", "loras", f"loras must be a list of [name, weight] pairs, got {chosen!r}.")
            return prompt, ()
        pairs += [tuple(c) for c in chosen]
        available = self.extras("lora")
        names = [name for name, _ in pairs]
        for name in sorted({n for n in names if names.count(n) > 1}):
            check.fail("duplicate_lora", "loras", f"LoRA {name!r} is asked for twice; use it once.")
        loras = []
        for name, weight in pairs:
            if name not in available:
                check.fail("unknown_lora", "loras", f"LoRA {name!r} not found; available: {sorted(available) or 'none'}"
                           " (LoRA .safetensors files go in the models/loras folder).")
            elif available[name].denoiser and available[name].denoiser != self.family(model).denoiser:
                made_for = {"unet": "UNet models (SD1.5, SDXL)", "transformer": "transformer models (FLUX, SD3.5, "
                            "Qwen-Image, ...)"}[available[name].denoiser]
                check.fail("wrong_lora", "loras", f"LoRA {name!r} was made for {made_for}; {model.id!r} is a "
                           f"{self.family(model).label} model. Leave it out, or choose a model it was made for.")
            elif check.number(f"LoRA {name!r} weight", weight, -MAX_LORA_WEIGHT, MAX_LORA_WEIGHT) is not None:
                loras.append((name, available[name].sha256, float(weight), available[name].shorthash))
        return prompt, tuple(loras)

    def _embeddings(self, prompt: str, negative: str) -> tuple:
        """(name, sha256) of each textual-inversion embedding whose name appears as a word in a prompt."""
        words = set(re.findall(r"[\w.-]+", f"{prompt} {negative}"))
        return tuple((name, f.sha256) for name, f in sorted(self.extras("embedding").items()) if name in words)

    def seeds(self, seed: int, count: int) -> tuple[int, ...]:
        """The seeds of `count` images (or videos) from one request seed: image k gets seed + k."""
        return tuple(seed + k for k in range(count))

    def seed(self, params, check: Checker) -> int | None:
        """The checked seed of `params`; -1 (which the request seed has replaced by now, except in a direct call)
        draws one."""
        seed = self.checked(params, "seed", check)
        return self.seed_source() if seed == -1 else seed

    def ref(self, entry: ModelEntry, check: Checker, name: str) -> ModelRef:
        """A catalogue entry resolved to the weights it names; a model the cache could not load (its facts say
        why) fails in `check`, as parameter `name`."""
        if self.model_facts is None:
            return ModelRef(id=entry.id, family=entry.family, source=entry.source, hash=self.model_hash(entry))
        facts = self.model_facts(entry)
        if facts.problem:
            check.fail(facts.code, name, facts.problem)
        return ModelRef(id=entry.id, family=entry.family, source=entry.source, hash=facts.hash)

    def _model(self, model_id, check: Checker, task: str = "txt2img") -> ModelEntry | None:
        if model_id in ("", None):
            return self.default_model
        if isinstance(model_id, str) and model_id in self.models and model_id not in self.drawing() + self.able(task):
            family = self.models[model_id].family
            go = NOT_A_GENERATOR.get(family) or (f"its models do {' and '.join(self.families[family].tasks)} only "
                                                 "(the node of that name)")
            check.fail("not_a_generator", "model", f"{model_id!r} is a {family} model; {go}, "
                       f"and choose a model that draws: one of {sorted(self.drawing())}.")
            return None
        if not isinstance(model_id, str) or model_id not in self.models:
            check.fail("unknown_model", "model",
                       f"Unknown model {model_id!r}; choose one of {sorted(self.drawing())} "
                       "(add others to configs/models.toml).")
            return None
        return self.models[model_id]

    def able(self, task: str) -> tuple[str, ...]:
        """The ids of the catalogue's models whose family runs `task` on its own."""
        return tuple(m.id for m in self.models.values() if m.family in self.families
                     and not self.families[m.family].adapts and self.families[m.family].pipeline_class(task))

    def animated(self, model_id: str) -> bool:
        """Whether an adapter family (AnimateDiff's) animates `model_id`'s family."""
        return any(f.adapts == self.models[model_id].family for f in self.families)

    def drawing(self) -> tuple[str, ...]:
        """The ids of the catalogue's models that draw pictures on their own."""
        families = self.families.generators("image")
        return tuple(m.id for m in self.models.values() if m.family in families)

    def family(self, model: ModelEntry) -> Family:
        """The declaration of `model`'s family."""
        return self.families[model.family]

    def sampling_choices(self, model: ModelEntry) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The samplers and the schedules that apply to `model`'s family."""
        family = self.family(model)
        return family_samplers(family.scheduling, family.samplers), family_schedules(family.scheduling)

    def task(self, model: ModelEntry, task: str, check: Checker, name: str = "model") -> bool:
        """Whether `model`'s family has a pipeline for `task`; if not, fails in `check` naming the models that
        do."""
        if self.family(model).pipeline_class(task) is not None:
            return True
        able = sorted(m.id for m in self.models.values()
                      if m.family in self.families and self.families[m.family].pipeline_class(task))
        check.fail("no_pipeline", name, f"{self.family(model).label} models have no {task} pipeline, so "
                   f"{model.id!r} cannot do this; choose one of {able or 'none (add one to configs/models.toml)'}.")
        return False

    def side(self, name: str, value, check: Checker, model: ModelEntry | None = None) -> int | None:
        """A checked width or height: within the limits and a multiple of what `model`'s family needs (8 when
        no model is given)."""
        limits = self.limits
        value = check.integer(name, value, limits.min_side, limits.max_side)
        multiple = self.family(model).size_multiple if model is not None else 8
        if value is not None and value % multiple:
            fits = max(limits.min_side, value // multiple * multiple)
            what = f" for {self.family(model).label} models" if multiple != 8 else ""
            check.fail(f"not_multiple_of_{multiple}", name,
                       f"{name} must be a multiple of {multiple}{what}, got {value}; try {fits}.")
            return None
        return value

    def size_of(self, p, image: Made, model: ModelEntry, check: Checker) -> tuple[int | None, int | None]:
        """The checked width and height of a node that repaints `image`: `p`'s, or where None the image's rounded
        down to the sizes `model`'s family takes."""
        width = self.side("width", self.floor_size(image.width, model) if p.width is None else p.width, check, model)
        height = self.side("height", self.floor_size(image.height, model) if p.height is None else p.height, check,
                           model)
        self.pixels(width, height, check)
        return width, height

    def floor_size(self, value: int, model: ModelEntry) -> int:
        """`value` rounded down to the size `model`'s family takes (at least one multiple)."""
        multiple = self.family(model).size_multiple
        return max(multiple, value // multiple * multiple)

    def pixels(self, width: int | None, height: int | None, check: Checker) -> None:
        if width and height and width * height > self.limits.max_pixels:
            check.fail("too_many_pixels", "width",
                       f"{width}x{height} is {width * height:,} pixels; the limit is {self.limits.max_pixels:,}. "
                       "Make the image smaller, then upscale it.")

    def _style(self, name, check: Checker) -> Style | None:
        if name in ("", None, "None"):
            return None
        if not isinstance(name, str) or name not in self.styles:
            check.fail("unknown_style", "style", f"Unknown style {name!r}; choose one of {sorted(self.styles)}.")
            return None
        return self.styles[name]
