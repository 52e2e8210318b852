"""Fair use of the worker (issue 14, item 8), through the real stack: JobService -> SqliteHuey -> two consumer
threads -> JobExecutor -> Runner on the demo models, the threads taking turns on the device (DeviceTurns).

With one user's long upscale running (an upscaler model, many steps over many tiles), another user's 20-step
txt2img on another model waits at most one step of the upscale, then runs whole, and ends first. Counted in
steps by the turns themselves, not timed: the device's step counter when the short job got in line, when it
first ran and when it ended. The quantum is long here so the short job's own run never reaches it on a busy
machine; the default (2 s) only makes the short job share the device sooner when it runs longer than that.
The short job's picture is the same bytes as when it ran alone: the upscale, suspended mid-node on another
model, changed nothing it used.
"""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from pipelines import Txt2Img, WorkflowSpec
from pipelines.spec import Link, Node, Upscale
from storage.models import Job, User
from tests.conftest import wait_until

LONG_UPSCALE = WorkflowSpec(nodes=(
    Node("gen", Txt2Img(prompt="a harbour at dawn", steps=2, seed=11)),
    # 64x64 in 32-pixel tiles overlapping by 8: 9 tiles of 150 steps each
    Node("up", Upscale(upscaler="demo-upscaler-x4", scale=4.0, steps=150, tile_size=32, seed=12),
         (("image", Link("gen", "images")),)),
))


@pytest.fixture(scope="module")
def taking_turns(atelier, settings, tmp_path_factory):
    """A JobService whose queue two consumer threads read, running jobs on an engine whose turns hand over after
    600 s (or to a newcomer); yields the service and the engine's DeviceTurns."""
    from queueing import JobExecutor, JobService, build_runner, make_huey, register_tasks, start_embedded_consumer

    folder = tmp_path_factory.mktemp("turns")
    engine_settings = dataclasses.replace(settings, turn_seconds=600.0)
    huey = make_huey(f"sqlite:///{folder / 'queue.db'}", folder)
    executor = JobExecutor(lambda: build_runner(engine_settings), atelier.service.blobs, progress_interval=0.02)
    run_job = register_tasks(huey, executor)
    service = JobService(atelier.service.compiler, lambda job_id, priority: run_job(job_id, priority=priority),
                         atelier.service.blobs)
    executor.start(service.enqueue, 2)
    consumer, _ = start_embedded_consumer(huey, 2)
    yield service, executor.runner.backend.turns
    executor.stop_soon()
    consumer.stop(graceful=True)
    executor.shutdown()


def someone_else() -> User:
    return User.create(email=f"{uuid.uuid4().hex[:10]}@fairness.test")


def test_a_short_job_waits_at_most_one_step_of_a_long_upscale_and_ends_first(taking_turns, owner):
    service, turns = taking_turns
    sketch_spec = WorkflowSpec.single(Txt2Img(prompt="a quick sketch", steps=20, seed=3))
    first = someone_else()
    alone = service.wait(first, service.submit(first, sketch_spec).id, timeout=300)
    assert alone.status == "succeeded", alone.error
    long = service.submit(owner, LONG_UPSCALE)

    def upscaling():
        holder = turns.holder()
        return holder if holder is not None and holder.label.startswith("upscale") and holder.steps >= 3 else None

    upscale = wait_until(upscaling, "the upscale to run 3 steps", timeout=300)
    other = someone_else()
    short = service.submit(other, sketch_spec)            # another user's, so it runs (not reused)
    long_phases = set()                                   # what the long job's owner reads meanwhile
    done = service.wait(other, short.id, timeout=300,
                        on_progress=lambda job: long_phases.add(service.status(owner, long.id)["phase"]))
    assert done.status == "succeeded", done.error
    assert done.artifact_ids == alone.artifact_ids       # content-addressed: the same bytes as made alone

    sketch = [t for t in turns.recent() if t.label.startswith("txt2img")][-1]
    assert sketch.arrived > upscale.arrived               # the short job's turn, not the long job's first node
    assert sketch.steps == 20 and sketch.handovers == 0
    assert sketch.steps_before <= 1, f"the short job waited {sketch.steps_before} steps of the upscale"
    assert sketch.steps_between == 0                      # and ran whole once it began
    assert Job.get_by_id(long.id).status == "running"     # the long job is not done: the short one ended first
    assert upscale.handovers == 1
    assert "waiting" in long_phases, long_phases          # its /job_status said it waits for its turn

    resumed = upscale.steps
    wait_until(lambda: upscale.steps > resumed, "the upscale to resume", timeout=120)
    assert service.cancel(owner, long.id)
    cancelled = service.wait(owner, long.id, timeout=300)
    assert cancelled.status == "cancelled" and cancelled.artifact_ids == []
