"""The Runner: executes an ExecutionPlan's steps on a backend and returns a Result.

It reports progress (step i of n, node k of m), checks for cancellation at every denoising step,
and records timings and the environment (library versions, device, dtype) next to the outputs.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import PIL.Image

from pipelines.backend import DiffusersBackend
from pipelines.errors import JobCancelled
from pipelines.plan import ExecutionPlan

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a run is: denoising step `step` of `steps` in node `node` of `nodes`."""

    node: int
    nodes: int
    step: int
    steps: int
    node_id: str


@dataclass(frozen=True)
class Output:
    """Image `index` of plan step `step_id`, made from `seed`."""

    step_id: str
    index: int
    seed: int
    image: PIL.Image.Image


@dataclass(frozen=True)
class Result:
    plan_hash: str
    outputs: tuple[Output, ...]
    timings: dict[str, float]
    environment: dict[str, str]


class Runner:
    """Runs plans on `backend`."""

    def __init__(self, backend: DiffusersBackend):
        self.backend = backend

    def run(self, plan: ExecutionPlan, on_progress: Callable[[Progress], None] = lambda p: None,
            cancelled: Callable[[], bool] = lambda: False) -> Result:
        """Execute every step of `plan` in order.

        Args:
            plan: the compiled plan.
            on_progress: called at each denoising step.
            cancelled: polled at each denoising step; when it returns True the run stops there.

        Raises:
            JobCancelled: `cancelled()` returned True.
        """
        outputs, timings = [], {}
        nodes = len(plan.steps)
        for number, step in enumerate(plan.steps, start=1):
            def on_step(i: int, n: int, number=number, step=step) -> None:
                if cancelled():
                    raise JobCancelled(f"Cancelled at step {i} of {n}.")
                on_progress(Progress(node=number, nodes=nodes, step=i, steps=n, node_id=step.id))

            if cancelled():
                raise JobCancelled("Cancelled before it started.")
            started = time.perf_counter()
            images = self.backend.txt2img(step, on_step)
            timings[step.id] = round(time.perf_counter() - started, 4)
            outputs += [Output(step.id, k, seed, image) for k, (seed, image) in enumerate(zip(step.seeds, images))]
        return Result(plan_hash=plan.plan_hash, outputs=tuple(outputs), timings=timings,
                      environment=self.backend.environment())
