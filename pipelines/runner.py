"""The Runner: executes an ExecutionPlan's steps on a backend and returns a Result.

Steps run in plan order; each makes a list of images (or of videos) that later steps take as inputs.
The runner reports progress (its phase: loading, denoising step i of n, decoding; in node k of m; an
estimate of the seconds left; and now and then a small preview of the latents, `pipelines.preview`), checks
for cancellation at every denoising step and decoded chunk, and records, for every image or video it makes,
what it was made from (lineage), the timings and the environment (library versions, device, dtype).
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
from pipelines.preview import Decoder, Latents, Previewer
from pipelines.turns import WAITING
from pipelines.video_backend import Video, VideoBackend

logger = logging.getLogger(__name__)


# What a run is doing, in Progress.phase: the node's model loading (and its prompt encoding) before its first
# step, denoising step `step` of `steps`, decoding a video: decoded frame `step` of `steps`, or waiting for its
# turn on the device (pipelines.turns) at step `step`.
PHASES = ("loading", "denoising", "decoding", WAITING)


@dataclass(frozen=True)
class Progress:
    """Where a run is: in node `node` of `nodes`, `phase` (see PHASES) step `step` of `steps`.

    `eta_seconds` is an estimate of the seconds left in the run, from the measured time per step of this node
    (None until two steps were timed); `preview` a small picture of the latents, when one was due."""

    node: int
    nodes: int
    step: int
    steps: int
    node_id: str
    phase: str = "denoising"
    preview: PIL.Image.Image | None = None
    eta_seconds: float | None = None


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
    previews: int = 0                  # how many live previews the run made
    preview_seconds: float = 0.0       # what making (and storing) them took


def work_of(step: Step) -> float:
    """How much denoising `step` does, in step-pixels (steps x images x frames x width x height, steps scaled by
    an img2img strength): what the time left is reckoned in. 0 for steps that do not denoise."""
    steps = getattr(step, "steps", 0) or 0
    strength = getattr(step, "strength", 1.0)
    if isinstance(strength, (int, float)) and 0 < strength < 1:
        steps *= strength
    images = max(len(getattr(step, "seeds", ()) or ()), 1)
    frames = max(getattr(step, "frames", 1) or 1, 1)
    return float(steps * images * frames * step.width * step.height)


class Clock:
    """Times one node's denoising steps, for the estimate of the seconds left (`seconds_left`)."""

    def __init__(self, work: float, later_work: float, now: Callable[[], float] = time.perf_counter):
        self.work = work
        self.later_work = later_work
        self.now = now
        self.first: tuple[int, float] | None = None

    def seconds_left(self, step: int, steps: int) -> float | None:
        """Seconds left in the run after denoising step `step` of `steps` of this node: this node's steps left
        at its measured pace, and the later nodes' work at the same pace per step-pixel; None until two steps
        were timed."""
        now = self.now()
        if self.first is None:
            self.first = (step, now)
        if step <= self.first[0]:
            return None
        per_step = (now - self.first[1]) / (step - self.first[0])
        later = self.later_work * per_step * steps / self.work if self.work else 0.0
        return round(max(steps - step, 0) * per_step + later, 1)


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

    def __init__(self, backend: Backend, video_backend: VideoBackend, executors: dict[str, Executor] = EXECUTORS,
                 preview_decoder: Decoder = lambda model: None, preview_interval: float = 0.5):
        """`preview_decoder`: model -> its tiny decoder (TAESD) for previews, or None (the cheap projection);
        `preview_interval`: least seconds between two previews (0: no previews at all)."""
        self.backend = backend
        self.video_backend = video_backend
        self.executors = executors
        self.preview_decoder = preview_decoder
        self.preview_interval = preview_interval

    def run(self, plan: ExecutionPlan, load_image: Callable[[str], PIL.Image.Image] = None,
            on_progress: Callable[[Progress], None] = lambda p: None,
            cancelled: Callable[[], bool] = lambda: False,
            load_video: Callable[[str], Video] = None) -> Result:
        """Execute every step of `plan` in order.

        Args:
            plan: the compiled plan.
            load_image: artifact id -> image, for load_image steps.
            on_progress: called as each node starts (phase "loading"), at each denoising step and decoded chunk
                of frames.
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
        previews = Previewer(self.preview_decoder, self.preview_interval) if self.preview_interval > 0 else None
        for step in plan.steps:
            executor = self.executors[step.kind]
            inputs = {name: made[source] for name, source in step.inputs}
            if step.reads_stored:
                made[step.id] = executor.run(step, inputs, engine, lambda *a, **k: None)
                continue
            number = working.index(step) + 1
            clock = Clock(work_of(step), sum(work_of(s) for s in working[number:]))

            def on_step(i: int, n: int, phase: str = "", latents: Latents | None = None, number=number, step=step,
                        clock=clock) -> None:
                """The backends' callback: denoising step i of n (with the latents, where they have them), or
                with phase "frame", decoded frame i of n."""
                if cancelled():
                    raise JobCancelled(f"Cancelled at {'decoded frame' if phase == 'frame' else 'step'} {i} of {n}.")
                preview = previews.offer(latents) if previews is not None and latents is not None else None
                eta = None if phase or i == 0 else clock.seconds_left(i, n)
                # Step 0 is reported before the first step; a job waiting for its turn on the device says so.
                shown = {"frame": "decoding", WAITING: WAITING}.get(phase) or ("loading" if i == 0 else "denoising")
                reported = time.perf_counter()
                on_progress(Progress(node=number, nodes=len(working), step=i, steps=n, node_id=step.id, phase=shown,
                                     preview=preview, eta_seconds=eta))
                if preview is not None:          # storing it (the worker encodes and writes it) counts as its cost
                    previews.charge(time.perf_counter() - reported)

            if cancelled():
                raise JobCancelled("Cancelled before it started.")
            on_progress(Progress(node=number, nodes=len(working), step=0, steps=getattr(step, "steps", 0) or 0,
                                 node_id=step.id, phase="loading"))
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
                      environment=self.backend.environment(), previews=previews.made if previews else 0,
                      preview_seconds=round(previews.seconds, 4) if previews else 0.0)
