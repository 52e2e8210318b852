"""What a node kind is: one declaration, as data, that the compiler, pricing, infotext and replay read.

A `NodeKind` names the dataclass of its parameters (in `pipelines/spec.py`: typed fields with defaults;
`inputs` and `outputs`, the typed edges), its version, and how it compiles to a plan step. Each plan
step kind it can make is a `StepKind`: the step's dataclass (in `pipelines/plan.py`), how it prices,
what it writes into the A1111 infotext and how it reads back as the request that makes it. A
`NodeRegistry` holds the kinds a server knows; `pipelines.nodes.REGISTRY` is the built-in one, and a
test or a plugin makes a larger one with `with_nodes`. What runs a step lives on the engine side, in
`pipelines.executors`. Pure: no torch.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property

from configs import CreditPrices
from pipelines.checks import Checker
from pipelines.facts import Describe, Made
from pipelines.plan import Step


@dataclass(frozen=True)
class Input:
    """One declared parameter of a node kind (see `pipelines.spec.param`).

    type: "int", "float", "bool", "str", or "pairs" (a list of [name, weight]); `optional`: None is allowed
    and means the model's default. `low`, `high`: numbers or the name of a [limits] setting; `choices`:
    values or the name of a catalogue list (`Compiler.choices`)."""

    name: str
    type: str
    default: object
    description: str
    optional: bool = False
    low: object = None
    high: object = None
    choices: object = None
    hint: str = ""


_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "MaskedContent": "str"}


@cache
def inputs_of(params: type) -> tuple[Input, ...]:
    """The declared parameters of a node kind's dataclass, in field order."""
    declared = []
    for f in dataclasses.fields(params):
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        base = annotation.split("|")[0].strip()
        meta = f.metadata
        declared.append(Input(name=f.name, type=_TYPES.get(base, "pairs" if base.startswith("tuple") else base),
                              default=f.default, description=meta.get("description", ""),
                              optional="None" in annotation, low=meta.get("low"), high=meta.get("high"),
                              choices=meta.get("choices"), hint=meta.get("hint", "")))
    return tuple(declared)


def input_of(params: type, name: str) -> Input:
    """The declaration of parameter `name` of a node kind's dataclass."""
    return next(i for i in inputs_of(params) if i.name == name)


@dataclass
class Request:
    """What the compile of one request shares between its nodes: how to look its input files up (`describe`,
    None when there is no caller to ask about) and the notes for the person."""

    describe: Describe | None = None
    notes: list[str] = field(default_factory=list)


# (compiler, node, made by each input edge, the node's checker, the request) -> (step, what it makes), or
# None when a problem was found (it is in the checker). The compiler is a `pipelines.compiler.Compiler`: its
# public methods are the checks the node kinds share.
Compile = Callable[[object, object, dict[str, Made], Checker, Request], "tuple[Step, Made] | None"]


def free(step: Step, prices: CreditPrices) -> float:
    """The price of a step that costs nothing (loading a stored file, an edge map)."""
    return 0.0


@dataclass(frozen=True)
class StepKind:
    """A kind of plan step: its dataclass, its price in credits, its A1111 infotext for output `index`, and the
    parameters of the node that compiles to it (`read_back`, so a stored plan replays as a request)."""

    type: type[Step]
    read_back: Callable[[Step], object]
    infotext: Callable[[Step, int], str] | None = None      # None: its outputs are not stored (loads)
    price: Callable[[Step, CreditPrices], float] = free

    @property
    def kind(self) -> str:
        return self.type.kind


@dataclass(frozen=True)
class NodeKind:
    """A kind of workflow node: its parameters' dataclass (whose `kind`, `inputs` and `outputs` it takes),
    its version, how it compiles, and the step kinds its compile can make."""

    params: type
    compile: Compile
    steps: tuple[StepKind, ...]
    version: int = 1

    @property
    def kind(self) -> str:
        return self.params.kind

    @property
    def inputs(self) -> dict[str, str]:
        return self.params.inputs

    @property
    def optional_inputs(self) -> frozenset[str]:
        return getattr(self.params, "optional_inputs", frozenset())

    @property
    def outputs(self) -> dict[str, str]:
        return self.params.outputs

    @property
    def deterministic(self) -> bool:
        """Whether the same parameters and seeds always make the same outputs (every step it makes is), so an
        identical plan may be served from stored outputs."""
        return all(step.type.deterministic for step in self.steps)


@dataclass(frozen=True)
class NodeRegistry:
    """The node kinds one server knows, and the plan step kinds they make."""

    nodes: tuple[NodeKind, ...]

    def __post_init__(self):
        kinds = [n.kind for n in self.nodes]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"node kinds are declared twice: {sorted({k for k in kinds if kinds.count(k) > 1})}")
        steps: dict[str, StepKind] = {}
        for node in self.nodes:
            for step in node.steps:
                if steps.setdefault(step.kind, step) is not step:
                    raise ValueError(f"step kind {step.kind!r} is declared by two node kinds differently")

    def with_nodes(self, *nodes: NodeKind) -> "NodeRegistry":
        """This registry and `nodes` (a test's or a plugin's)."""
        return NodeRegistry(self.nodes + nodes)

    @cached_property
    def params_types(self) -> dict[str, type]:
        """Node kind -> the dataclass of its parameters."""
        return {n.kind: n.params for n in self.nodes}

    @cached_property
    def step_kinds(self) -> dict[str, StepKind]:
        """Step kind -> its declaration."""
        return {step.kind: step for node in self.nodes for step in node.steps}

    @cached_property
    def step_types(self) -> dict[str, type[Step]]:
        """Step kind -> its dataclass (what `ExecutionPlan.from_dict` reads steps as)."""
        return {kind: step.type for kind, step in self.step_kinds.items()}

    @cached_property
    def _by_kind(self) -> dict[str, NodeKind]:
        return {n.kind: n for n in self.nodes}

    def node(self, kind: str) -> NodeKind:
        return self._by_kind[kind]

    def step(self, kind: str) -> StepKind:
        return self.step_kinds[kind]

    def price(self, step: Step, prices: CreditPrices) -> float:
        """Credits for `step` (see each step kind's `price`)."""
        return self.step(step.kind).price(step, prices)

    def infotext(self, step: Step, index: int) -> str:
        """The A1111 `parameters` text of output `index` of `step`."""
        return self.step(step.kind).infotext(step, index)

    def read_back(self, step: Step):
        """The parameters of the node that compiles to `step`."""
        return self.step(step.kind).read_back(step)
