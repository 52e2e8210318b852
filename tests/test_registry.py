"""The node registry: the declarations agree with the executors, and a node kind added in one place (here,
in this test) compiles, prices, writes its infotext, runs and replays with no edit anywhere else."""
import dataclasses
import json
from dataclasses import dataclass
from typing import ClassVar

import PIL.Image
import PIL.ImageOps
import pytest

from configs import CreditPrices, Limits, ModelEntry, Style
from pipelines import recipes
from pipelines.compiler import Compiler
from pipelines.errors import InvalidRequest
from pipelines.executors import EXECUTORS, Executor
from pipelines.facts import InputFacts, Made
from pipelines.infotext import VERSION, line, parse_infotext
from pipelines.node import Input, NodeKind, StepKind, input_of, inputs_of
from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan, Step
from pipelines.spec import Txt2Img, WorkflowSpec

MODELS = (ModelEntry(id="tiny", family="sd15", source="demo", width=64, height=64, steps=2, cfg_scale=7.0,
                     sampler="euler", schedule="normal"),)


def test_every_step_kind_a_node_makes_has_an_executor_and_every_executor_is_reachable():
    made = set(REGISTRY.step_kinds)
    assert made == set(EXECUTORS), (f"step kinds without an executor: {sorted(made - set(EXECUTORS))}; "
                                    f"executors no node compiles to: {sorted(set(EXECUTORS) - made)}")


def test_every_declaration_is_complete():
    """What the compiler, replay and the store rely on, for every kind: one output (replay links to it), edge
    types some node makes, a read-back to a registered kind, and an infotext for every step whose outputs are
    stored."""
    outputs = {kind for node in REGISTRY.nodes for kind in node.outputs.values()}
    for node in REGISTRY.nodes:
        assert node.version >= 1 and node.params.kind == node.kind and node.deterministic
        assert len(node.outputs) == 1, f"{node.kind} has outputs {node.outputs}"
        assert set(node.inputs.values()) <= outputs, f"{node.kind} takes an edge type no node makes"
        assert node.optional_inputs <= set(node.inputs)
        assert node.steps, f"{node.kind} compiles to no step kind"
        for step in node.steps:
            assert step.type.kind == step.kind and dataclasses.is_dataclass(step.type)
            assert (step.infotext is None) == step.type.reads_stored, step.kind


def test_every_parameter_is_declared_with_a_type_a_description_and_what_it_may_be():
    """The API docs and the forms are built from these declarations, and the compiler checks against them."""
    compiler = Compiler(MODELS, (Style("None"),), Limits(), CreditPrices(), lambda entry: "sha256:" + "0" * 64)
    for node in REGISTRY.nodes:
        for declared in inputs_of(node.params):
            where = f"{node.kind}.{declared.name}"
            assert declared.type in ("int", "float", "bool", "str", "pairs"), where
            assert declared.description.endswith("."), f"{where} has no one-line description"
            for bound in (declared.low, declared.high):
                assert bound is None or isinstance(bound, (int, float)) or hasattr(Limits(), bound) \
                    or bound == "frames", f"{where}: unknown bound {bound!r}"
            if declared.type in ("int", "float") and declared.choices is None:
                assert declared.low is not None and declared.high is not None, f"{where} has no bounds"
            if isinstance(declared.choices, str):
                compiler.choices(declared.choices)          # a list this catalogue gives (maybe empty)
    assert compiler.choices("model") == ("tiny",) and "euler_a" in compiler.choices("sampler")
    assert input_of(Txt2Img, "steps") == Input(name="steps", type="int", default=None, optional=True, low=1,
                                               high="max_steps", description="Denoising steps; empty: the "
                                               "model's default.")


def test_every_node_kind_round_trips_through_its_json_and_compile():
    """Each kind's default parameters survive JSON (the spec's table is the registry's), and each kind named
    in JSON is found; an unknown kind is named with the known ones."""
    for node in REGISTRY.nodes:
        raw = {"nodes": [{"id": "n", "kind": node.kind, "params": dataclasses.asdict(node.params())}]}
        assert WorkflowSpec.from_dict(json.loads(json.dumps(raw))).nodes[0].params == node.params()
    with pytest.raises(InvalidRequest, match=r"Unknown node kind 'invert'; expected one of \['canny'") as refused:
        WorkflowSpec.from_dict({"nodes": [{"id": "n", "kind": "invert"}]})
    assert refused.value.code == "unknown_node"


# -- a toy node kind, declared and registered here only -------------------------------------------------------

@dataclass(frozen=True)
class Invert:
    """Invert the colours of images. `amount`: how many times (an odd number inverts)."""

    kind: ClassVar[str] = "invert"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    amount: int = 1


@dataclass(frozen=True, kw_only=True)
class InvertStep(Step):
    kind: ClassVar[str] = "invert"
    lineage: ClassVar[dict[str, str]] = {"image": "source"}

    amount: int
    seeds: tuple[int, ...] = ()


def compile_invert(compiler, node, inputs, check, request):
    image = inputs["image"]
    amount = check.integer("amount", node.params.amount, 1, 9)
    if check.problems:
        return None
    step = InvertStep(id=node.id, inputs=(("image", node.link("image").node),), width=image.width,
                      height=image.height, amount=amount, seeds=tuple(range(image.count)))
    return step, Made(image.count, image.width, image.height)


INVERT = NodeKind(params=Invert, compile=compile_invert, steps=(StepKind(
    type=InvertStep, read_back=lambda step: Invert(amount=step.amount),
    infotext=lambda step, index: line({"Invert": step.amount, "Size": f"{step.width}x{step.height}",
                                       "Version": VERSION}),
    price=lambda step, prices: 0.5 * step.amount * len(step.seeds)),))


def run_invert(step, inputs, engine, on_step):
    images = []
    for image in inputs["image"]:
        for i in range(step.amount):
            image = PIL.ImageOps.invert(image)
            on_step(i + 1, step.amount)
        images.append(image)
    return images


def test_a_node_kind_declared_in_one_place_compiles_prices_runs_and_replays(tmp_path):
    import torch

    from pipelines.backend import DiffusersBackend
    from pipelines.model_cache import ModelCache
    from pipelines.runner import Runner
    from pipelines.video_backend import VideoBackend

    registry = REGISTRY.with_nodes(INVERT)
    compiler = Compiler(MODELS, (Style("None"),), Limits(), CreditPrices(), lambda entry: "sha256:" + "0" * 64,
                        registry=registry)
    graph = {"nodes": [{"id": "src", "kind": "load_image", "params": {"artifact_id": "a" * 64}},
                       {"id": "inv", "kind": "invert", "params": {"amount": 3}, "inputs": {"image": ["src", "image"]}}]}
    spec = WorkflowSpec.from_dict(graph, kinds=registry.params_types)
    describe = lambda artifact_id, use: InputFacts(width=8, height=4)    # noqa: E731
    plan = compiler.compile(spec, describe=describe)

    assert plan.credits == 1.5
    assert ExecutionPlan.from_json(plan.to_json(), registry.step_types) == plan
    assert compiler.compile(recipes.spec_of(plan, registry), describe=describe).plan_hash == plan.plan_hash
    assert parse_infotext(registry.infotext(plan.step("inv"), 0))["Invert"] == "3"
    with pytest.raises(InvalidRequest, match="amount must be between 1 and 9, got 12") as refused:
        compiler.compile(WorkflowSpec.from_dict({"nodes": [graph["nodes"][0], {**graph["nodes"][1],
                                                                              "params": {"amount": 12}}]},
                                                kinds=registry.params_types), describe=describe)
    assert refused.value.field == "inv.amount"

    progress = []
    models = ModelCache(tmp_path, torch.device("cpu"), torch.float32)
    backend = DiffusersBackend(models)
    runner = Runner(backend, VideoBackend(models, backend.turns),
                    executors={**EXECUTORS, "invert": Executor(run_invert)})
    source = PIL.Image.new("RGB", (8, 4), (10, 200, 30))
    result = runner.run(plan, load_image=lambda artifact_id: source, on_progress=progress.append)
    [output] = result.outputs
    assert output.image.getpixel((0, 0)) == (245, 55, 225)
    assert output.parents == (("src", 0, "source"),)
    assert [(p.node, p.nodes, p.step, p.steps, p.node_id) for p in progress if p.phase == "denoising"] == [
        (1, 1, 1, 3, "inv"), (1, 1, 2, 3, "inv"), (1, 1, 3, 3, "inv")]
