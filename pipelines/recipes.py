"""A stored plan read back as the request that makes it, so a replay is checked like a new submission.

A recipe (the `atelier` text of a PNG or MP4) holds the compiled plan. Replaying it must pass every rule
a new request passes: the caller's ownership of each input, the tier's limits, the price. `spec_of`
turns a plan back into the WorkflowSpec that compiles to it (concrete seeds, resolved sizes, the
LoRAs by name), and `mismatches` names what a fresh compile of that spec made differently: a model
whose weights are not the recipe's, a LoRA file that changed, or a plan this version would not make.
Pure: no torch.
"""
from __future__ import annotations

import dataclasses

from pipelines.errors import Problem
from pipelines.node import NodeRegistry
from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan
from pipelines.spec import Link, Node, WorkflowSpec

# Plan fields that only label a step: the prompt already has the style applied.
LABELS = ("style",)


def spec_of(plan: ExecutionPlan, registry: NodeRegistry = REGISTRY) -> WorkflowSpec:
    """The WorkflowSpec whose compile gives `plan` (for the same catalogue, files and inputs): each step read
    back by its kind's declaration, each input linked to the one output of the node it came from."""
    params = {step.id: registry.read_back(step) for step in plan.steps}
    nodes = []
    for step in plan.steps:
        inputs = tuple((name, Link(source, _only_output(params[source]))) for name, source in step.inputs)
        nodes.append(Node(step.id, params[step.id], inputs))
    return WorkflowSpec(nodes=tuple(nodes))


def _only_output(params) -> str:
    [name] = type(params).outputs         # every node kind so far has one output
    return name


def mismatches(recipe: ExecutionPlan, compiled: ExecutionPlan) -> list[Problem]:
    """What `compiled` (a fresh compile of `spec_of(recipe)`) does differently from `recipe`, one Problem
    per step field, with what to do about it; [] when they make the same outputs."""
    problems = []
    fresh = {step.id: step for step in compiled.steps}
    for step in recipe.steps:
        theirs, ours = step.to_dict(), fresh[step.id].to_dict()
        for name in sorted(set(theirs) | set(ours)):
            if name in LABELS or theirs.get(name) == ours.get(name):
                continue
            problems.append(_mismatch(step.id, name, theirs.get(name), ours.get(name)))
    return problems


def _mismatch(step_id: str, name: str, theirs, ours) -> Problem:
    where = f"{step_id}.{name}"
    if isinstance(theirs, dict) and isinstance(ours, dict) and theirs.get("id") == ours.get("id"):
        return Problem("model_changed", where,
                       f"The recipe's {name} {theirs['id']!r} had weights {theirs['hash'][:16]}…; this server's "
                       f"{ours['id']!r} has {ours['hash'][:16]}…. Replaying needs the same weights: point "
                       f"{ours['id']!r} in configs/models.toml at them.")
    if name == "loras":
        return Problem("lora_changed", where,
                       f"The recipe's LoRAs {_lora_files(theirs)} differ from this server's {_lora_files(ours)}; "
                       "put the recipe's files in the models/loras folder to replay it.")
    if name == "embeddings":
        return Problem("embedding_changed", where,
                       f"The recipe's embeddings {theirs} differ from this server's {ours}; put the recipe's "
                       "files in the models/embeddings folder to replay it.")
    return Problem("not_replayable", where,
                   f"Step {step_id!r} of the recipe has {name} = {theirs!r}, where this server would make "
                   f"{ours!r} from the same request, so it cannot replay it as it is. Send the request again "
                   "instead (the Gallery's \"Use these settings\").")


def _lora_files(loras) -> list[str]:
    return [f"{name} ({sha[:10]}…)" for name, sha, *_ in loras or ()]


def with_labels(compiled: ExecutionPlan, recipe: ExecutionPlan) -> ExecutionPlan:
    """`compiled` with each step's LABELS as `recipe` has them, so it is the recipe's plan to the byte
    (the same `plan_hash`), priced and noted as a new request."""
    labelled = {step.id: step for step in recipe.steps}
    steps = tuple(dataclasses.replace(step, **{name: getattr(labelled[step.id], name) for name in LABELS
                                               if hasattr(step, name)}) for step in compiled.steps)
    return dataclasses.replace(compiled, steps=steps)
