"""The Runner: executes an ExecutionPlan's steps on a backend and returns a Result.

Steps run in plan order; each makes a list of images (or of videos) that later steps take as inputs.
The runner reports progress (step i of n, or decoded frame i of n, in node k of m), checks for
cancellation at every denoising step and decoded chunk, and records, for every image or video it
makes, what it was made from (lineage), the timings and the environment (library versions, device,
dtype).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import PIL.Image

from pipelines.errors import JobCancelled
from pipelines.executors import EXECUTORS, Engine, Executor
from pipelines.plan import ExecutionPlan, Step
from pipelines.video_backend import Video, VideoBackend

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a run is: denoising step `step` of `steps` (or, with phase "frame", decoded frame `step` of
    `steps`) in node `node` of `nodes`."""

    node: int
    nodes: int
    step: int
    steps: int
    node_id: str
    phase: str = ""


@dataclass(frozen=True)
class Output:
    """Image (or video) `index` of plan step `step_id`, made from `seed` (None when no noise was involved)
    and from `parents`: (step id, index, relation) of each input it came from. Exactly one of `image`
    and `video` is set."""

    step_id: str
    index: int
    seed: int | None
    image: PIL.Image.Image | None = None
    video: Video | None = None
    parents: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True)
class Result:
    plan_hash: str
    outputs: tuple[Output, ...]
    timings: dict[str, float]
    environment: dict[str, str]


def _parents(step: Step, index: int, counts: dict[str, int]) -> tuple[tuple[str, int, str], ...]:
    """Which input images image `index` of `step` came from."""
    source = step.source_index(index)
    parents = []
    for name, step_id in step.inputs:
        parents.append((step_id, source if counts[step_id] > 1 else 0, step.lineage.get(name, name)))
    return tuple(parents)


class Backend(Protocol):
    """What the runner itself needs of the backend that makes images (`DiffusersBackend`; the executors call
    its step methods): to set up the calling thread for a run, and the environment recorded with each result."""

    def use_threads(self) -> None: ...

    def environment(self) -> dict: ...


class Runner:
    """Runs plans on `backend` (images) and `video_backend` (videos), each step by its kind's executor."""

    def __init__(self, backend: Backend, video_backend: VideoBackend, executors: dict[str, Executor] = EXECUTORS):
        self.backend = backend
        self.video_backend = video_backend
        self.executors = executors

    def run(self, plan: ExecutionPlan, load_image: Callable[[str], PIL.Image.Image] = None,
            on_progress: Callable[[Progress], None] = lambda p: None,
            cancelled: Callable[[], bool] = lambda: False,
            load_video: Callable[[str], Video] = None) -> Result:
        """Execute every step of `plan` in order.

        Args:
            plan: the compiled plan.
            load_image: artifact id -> image, for load_image steps.
            on_progress: called at each denoising step and decoded chunk of frames.
            cancelled: polled at each of those; when it returns True the run stops there.
            load_video: artifact id -> Video, for load_video steps.

        Raises:
            JobCancelled: `cancelled()` returned True.
        """
        self.backend.use_threads()
        engine = Engine(images=self.backend, videos=self.video_backend, load_image=load_image, load_video=load_video)
        made: dict[str, list] = {}
        outputs, timings = [], {}
        working = [s for s in plan.steps if not s.reads_stored]
        for step in plan.steps:
            executor = self.executors[step.kind]
            inputs = {name: made[source] for name, source in step.inputs}
            if step.reads_stored:
                made[step.id] = executor.run(step, inputs, engine, lambda i, n: None)
                continue
            number = working.index(step) + 1

            def on_step(i: int, n: int, phase: str = "", number=number, step=step) -> None:
                if cancelled():
                    raise JobCancelled(f"Cancelled at {'decoded frame' if phase else 'step'} {i} of {n}.")
                on_progress(Progress(node=number, nodes=len(working), step=i, steps=n, node_id=step.id, phase=phase))

            if cancelled():
                raise JobCancelled("Cancelled before it started.")
            started = time.perf_counter()
            results = executor.run(step, inputs, engine, on_step)
            timings[step.id] = round(time.perf_counter() - started, 4)
            made[step.id] = results
            counts = {key: len(value) for key, value in made.items()}
            seeds = step.noise_seeds
            for k, result in enumerate(results):
                made_as = {"video": result} if isinstance(result, Video) else {"image": result}
                outputs.append(Output(step.id, k, seeds[k] if seeds else None, parents=_parents(step, k, counts),
                                      **made_as))
        return Result(plan_hash=plan.plan_hash, outputs=tuple(outputs), timings=timings,
                      environment=self.backend.environment())
