"""The worker side of a job: claim the row, run its plan, store the outputs, settle the status.

`JobExecutor` is what the Huey task calls. It claims the job row with a lease (renewed by its
`Heartbeat`, see leases.py), reads the plan, reports progress to the row (at most every
`progress_interval` seconds), stops when the row says cancel or the job was handed on, and writes
each image as a PNG and each video as an MP4 (with its first frame as a PNG poster), every file
carrying its recipe. Whatever happens, the job ends in exactly one terminal status, or, when the
process is told to stop (`stop_soon`), goes back to the queue at its next step.

A worker that serves only some models (`models`) puts back, for another worker, the jobs that need
others, and waits a moment before taking the next, so the job is not handed straight back to it.
"""
from __future__ import annotations

import io
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from pipelines.errors import AtelierError, JobCancelled
from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan, canonical_json
from queueing import settlement
from queueing.logs import job_context
from queueing.leases import Heartbeat
from storage import jobs
from storage.artifacts import encode_png, file_recipe, store_artifact
from storage.blobs import BlobStore
from storage.db import database
from storage.models import Artifact, Job
from storage.uploads import decode_image
from storage.video import MP4_MIME, encode_mp4, read_mp4

logger = logging.getLogger(__name__)


_IN_THIS_PROCESS = itertools.count(1)


class Replayed(NamedTuple):
    """The file a replay job makes again: output `index` of step `step_id` of its recipe's plan."""

    artifact_id: str
    step_id: str
    index: int
    is_video: bool


def preview_png(image) -> bytes:
    """A live preview as the PNG the job row keeps: compressed lightly (level 1: 11 ms for 256x256 on the
    development CPU, against 26 ms at the default level 6, for 10% more bytes), as it is replaced within a second."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def worker_name() -> str:
    """"host:pid", and "host:pid-2"... for a second executor in one process (tests run two apps)."""
    number = next(_IN_THIS_PROCESS)
    return f"{socket.gethostname()}:{os.getpid()}" + (f"-{number}" if number > 1 else "")


def build_runner(settings, on_model_load=None):
    """The Runner for `settings`: DiffusersBackend on the configured device, with a model cache.
    Imports torch, so only processes that run jobs call it."""
    from configs import load_models
    from pipelines.backend import DiffusersBackend
    from pipelines.devices import pick_device, pick_dtype
    from pipelines.loras import extras_finder
    from pipelines.model_cache import ModelCache
    from pipelines.runner import Runner
    from pipelines.turns import DeviceTurns
    from pipelines.video_backend import VideoBackend

    device = pick_device(settings.device)
    catalogue = load_models(settings.catalogue)
    configs = {m.id: m.config for m in catalogue if m.config}
    cache = ModelCache(settings.models_dir, device, pick_dtype(device), capacity=settings.model_cache_size,
                       config_folders=configs, on_load=on_model_load,
                       offload=frozenset(m.id for m in catalogue if m.offload),
                       preview_vaes={m.id: m.preview_vae for m in catalogue if m.preview_vae})
    # The consumer threads of this process take turns on the one device (issue 14, item 8).
    turns = DeviceTurns(settings.turn_seconds or None)
    images = DiffusersBackend(cache, extras_finder(settings.loras_dir, settings.embeddings_dir),
                              threads=settings.torch_threads, turns=turns)
    return Runner(images, VideoBackend(cache, turns, images.extras), preview_decoder=cache.preview_decoder)


class JobExecutor:
    """Runs job ids, storing outputs in `blobs`.

    Args:
        make_runner: builds the pipelines.runner.Runner on first use (it imports torch, which takes
            seconds, so the web page need not wait for it).
        blobs: the blob store for outputs.
        progress_interval: least seconds between two progress writes to the job row.
        lease_seconds: how long a claimed job stays this worker's without a heartbeat.
        models: the catalogue ids this worker serves; empty = all.
        put_back_delay: seconds to wait after putting back a job this worker cannot serve.
    """

    def __init__(self, make_runner, blobs: BlobStore, progress_interval: float = 0.1, lease_seconds: float = 60.0,
                 models: tuple[str, ...] = (), put_back_delay: float = 1.0, metrics=None):
        self.make_runner = make_runner
        self.blobs = blobs
        self.progress_interval = progress_interval
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self.models = frozenset(models)
        self.put_back_delay = put_back_delay
        self.worker = worker_name()
        self.enqueue: Callable[[str, int], None] | None = None
        self.heartbeat: Heartbeat | None = None
        self.stopping = threading.Event()
        self._runner = None
        self._runner_lock = threading.Lock()

    def start(self, enqueue: Callable[[str, int], None], threads: int = 1, reconciler=None) -> None:
        """Start the heartbeat; `enqueue(job_id, priority)` puts jobs back on the queue, and `reconciler` (a
        queueing.reconcile.Reconciler, or None) finds the queued jobs the queue lost, at every beat."""
        self.enqueue = enqueue
        self.heartbeat = Heartbeat(self.worker, self.lease_seconds, enqueue, tuple(sorted(self.models)), threads,
                                   metrics=self.metrics, reconciler=reconciler)
        self.heartbeat.start()

    def stop_soon(self) -> None:
        """Stop taking jobs; running ones go back to the queue at their next step (SIGTERM)."""
        self.stopping.set()

    def shutdown(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()

    @property
    def runner(self):
        with self._runner_lock:
            if self._runner is None:
                self._runner = self.make_runner()
            return self._runner

    def warm_up(self) -> None:
        """Build the runner now (imports torch) instead of at the first job."""
        self.runner  # noqa: B018 - the property builds it

    def __call__(self, job_id: str) -> None:
        with job_context(job_id), database.connection_context():
            self.execute(job_id)

    def execute(self, job_id: str) -> None:
        queued = Job.get_or_none((Job.id == job_id) & (Job.status == "queued"))
        if queued is None:
            logger.info("job %s: not queued any more (cancelled or taken), skipped", job_id)
            return
        if self.stopping.is_set() or not self.serves(queued):
            self._put_back(queued)
            return
        job = jobs.claim(job_id, self.worker, self.lease_seconds)
        if job is None:
            logger.info("job %s: taken by another worker, skipped", job_id)
            return
        if self.metrics is not None:
            self.metrics.job_started(job)
        if self.heartbeat is not None:
            self.heartbeat.hold(job_id)
        try:
            self._run(job)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.drop(job_id)

    def serves(self, job: Job) -> bool:
        """Whether this worker has every model the job runs."""
        return not self.models or ExecutionPlan.from_json(job.plan).models() <= self.models

    def _put_back(self, job: Job) -> None:
        """Leave a job this worker will not run to another one (it is stopping, or lacks a model)."""
        if self.enqueue is None:
            raise RuntimeError("JobExecutor.start(enqueue) was not called")
        jobs.mark_enqueued(job.id)       # stamped first, so the job never looks lost to a reconciler meanwhile
        self.enqueue(job.id, job.priority)
        if not self.stopping.is_set():
            logger.info("job %s: needs %s; left for a worker that serves them", job.id,
                        sorted(ExecutionPlan.from_json(job.plan).models() - self.models))
            time.sleep(self.put_back_delay)

    def _run(self, job: Job) -> None:
        job_id = job.id
        logger.info("job %s: running on %s (attempt %d)", job_id, self.worker, job.attempts)
        plan = ExecutionPlan.from_json(job.plan)
        last_write, last_phase = 0.0, (0, "")

        def on_progress(p) -> None:
            # A new phase, the last step and a preview (the runner makes one every half second at most) are
            # always written; the rest at most every progress_interval.
            nonlocal last_write, last_phase
            now = time.monotonic()
            if p.preview is not None or (p.node, p.phase) != last_phase or now - last_write >= self.progress_interval \
                    or p.step == p.steps:
                jobs.set_progress(job_id, step=p.step, steps=p.steps, node=p.node, nodes=p.nodes, phase=p.phase,
                                  eta=p.eta_seconds, preview=None if p.preview is None else preview_png(p.preview))
                last_write, last_phase = now, (p.node, p.phase)

        def stop_here() -> bool:
            return self.stopping.is_set() or not jobs.still_held(job_id, self.worker)

        mine = {"worker": self.worker}
        try:
            result = self.runner.run(plan, load_image=self._load_image, on_progress=on_progress,
                                     cancelled=stop_here, load_video=self._load_video)
            jobs.set_phase(job_id, "saving")
            outputs = self._store(job, plan, result)
        except JobCancelled as e:
            self._stopped(job, e.message)
            return
        except AtelierError as e:
            self._finish(job_id, "failed", error=e.message, **mine)
            logger.info("job %s: failed (%s): %s", job_id, e.code, e.message)    # the request's fault: no traceback
            return
        except Exception as e:
            logger.exception("job %s: failed unexpectedly", job_id)
            self._finish(job_id, "failed", error=f"Internal error ({type(e).__name__}); the server log has details.",
                         **mine)
            return
        if self._finish(job_id, "succeeded", outputs=outputs,
                        result={"timings": result.timings, "environment": result.environment}, **mine):
            logger.info("job %s: succeeded with %d artifact(s)", job_id, len(outputs))
        else:
            logger.warning("job %s: finished here after it was handed on or cancelled; the result is not used",
                           job_id)

    def _stopped(self, job: Job, message: str) -> None:
        """The run stopped at a step: cancelled by its owner, handed on to another worker (this one lost
        its lease), or this process is stopping, in which case the job goes back to the queue."""
        if jobs.cancel_requested(job.id):
            self._finish(job.id, "cancelled", error=message)
            logger.info("job %s: cancelled", job.id)
        elif self.stopping.is_set() and jobs.requeue(job, worker=self.worker, count_attempt=False):
            self.enqueue(job.id, job.priority)
            logger.info("job %s: this worker is stopping; queued again", job.id)
            if self.metrics is not None:
                self.metrics.job_requeued("shutdown")
        else:
            logger.warning("job %s: no longer held by %s (its lease ran out); stopped", job.id, self.worker)

    def _finish(self, job_id: str, status: str, **values) -> bool:
        """settlement.finish, and the job's duration observed when this process finished it."""
        finished = settlement.finish(job_id, status, **values)
        if finished and self.metrics is not None:
            self.metrics.job_finished(job_id)
        return finished

    def _stored(self, artifact_id: str, what: str) -> bytes:
        """The bytes of an input the plan loads; AtelierError naming it if it is no longer stored."""
        artifact = Artifact.get_or_none(Artifact.id == artifact_id)
        if artifact is None or not self.blobs.exists(artifact.blob_key):
            raise AtelierError(f"The {what} {artifact_id[:16]}… this job loads is no longer stored; upload it again "
                               "and send the request again.", code=f"missing_{what}", field=what)
        return self.blobs.get(artifact.blob_key)

    def _load_image(self, artifact_id: str):
        return decode_image(self._stored(artifact_id, "image"))

    def _load_video(self, artifact_id: str):
        from pipelines.video_backend import Video        # imports torch, as the runner already has

        data = self._stored(artifact_id, "video")
        try:
            frames, fps = read_mp4(data)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as e:
            raise AtelierError(f"The video {artifact_id[:16]}… could not be read ({e}); upload it again.",
                               code="bad_video", field="video") from e
        return Video(frames, fps)

    def _store(self, job, plan: ExecutionPlan, result) -> list[str]:
        """Store every output (PNG or MP4) with its recipe and lineage; returns their ids in order."""
        recipe = plan.recipe()
        stored = {(s.id, 0): s.artifact_id for s in plan.steps if s.reads_stored}
        replayed = self._replayed(job)
        ids = []
        for output in result.outputs:
            step = plan.step(output.step_id)
            texts = {
                "parameters": REGISTRY.infotext(step, output.index),
                "atelier": canonical_json({"plan": recipe, "plan_hash": plan.plan_hash, "step": step.id,
                                           "index": output.index, "environment": result.environment}),
            }
            parents = tuple((stored[(step_id, index)], relation) for step_id, index, relation in output.parents)
            replays = replayed is not None and (replayed.step_id, replayed.index) == (step.id, output.index)
            edge = ((replayed.artifact_id, "replay_of"),) if replays else ()
            made = {"owner": job.owner, "job": job, "plan_hash": plan.plan_hash, "step_id": step.id,
                    "output_index": output.index, "seed": output.seed}
            if output.video is not None:
                on_poster = replays and not replayed.is_video      # the file replayed was this video's poster
                artifact = self._store_video(output.video, texts, made, parents + (() if on_poster else edge),
                                             poster_parents=edge if on_poster else ())
            else:
                artifact = store_artifact(self.blobs, encode_png(output.image, texts), kind="image", mime="image/png",
                                          suffix=".png", width=output.image.width, height=output.image.height,
                                          parents=parents + edge, **made)
            stored[(step.id, output.index)] = artifact.id
            ids.append(artifact.id)
        return ids

    def _replayed(self, job: Job) -> Replayed | None:
        """For a replay job, the file it replays and its place in the plan (from the file's recipe); None
        for other jobs."""
        original = Artifact.get_or_none(Artifact.id == job.replay_of) if job.replay_of else None
        if original is None:
            return None
        recipe = file_recipe(self.blobs, original)
        return Replayed(original.id, recipe.get("step", ""), recipe.get("index", 0), original.mime == MP4_MIME)

    def _store_video(self, video, texts: dict[str, str], made: dict, parents, poster_parents=()) -> Artifact:
        """The video as an MP4 artifact, and its first frame as a PNG poster (kind "poster", lineage
        `poster_of` to the video, and `poster_parents`) carrying the same texts."""
        width, height = video.frames[0].size
        artifact = store_artifact(self.blobs, encode_mp4(video.frames, video.fps, texts), kind="video", mime=MP4_MIME,
                                  suffix=".mp4", width=width, height=height, frames=len(video.frames), fps=video.fps,
                                  parents=parents, **made)
        store_artifact(self.blobs, encode_png(video.frames[0], texts), kind="poster", mime="image/png", suffix=".png",
                       width=width, height=height, parents=((artifact.id, "poster_of"), *poster_parents), **made)
        return artifact
