"""The web side of jobs: submit, status, cancel, list and wait, per user (artifacts: queueing/catalogue.py).

`submit` compiles the spec (validation and price come from the compiler), writes the Job row and
only then enqueues its id on Huey. Everything a caller reads comes from the job row; another user's
job or artifact is "not found".
"""
from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator

from auth.policy import Policy
from auth import credits
from pipelines.compiler import Compiler
from pipelines.facts import InputFacts
from pipelines import recipes
from pipelines.errors import AtelierError, InvalidRequest, NotFound, Problem
from pipelines.plan import ExecutionPlan
from pipelines.spec import WorkflowSpec
from queueing import leases, settlement, uploads
from queueing.uploads import Upload
from storage import jobs
from storage.artifacts import find_artifact, own_holding
from storage.blobs import BlobStore
from storage.db import database
from storage.models import FINISHED, Artifact, Job, User

logger = logging.getLogger(__name__)

Enqueue = Callable[[str, int], None]
WORKER_LOOK_INTERVAL = 1.0      # seconds between two looks for a running worker while a job stays queued


# A finished job's phase is its status ("succeeded" reads "done").
FINISHED_PHASES = {"succeeded": "done", "failed": "failed", "cancelled": "cancelled"}
# Rows written before issue 14 said "" for denoising and "frame" for decoding.
OLD_PHASES = {"frame": "decoding"}


def jobs_ahead(job: Job) -> int:
    """How many queued jobs start before `job`: those of a higher priority, and those of its own queued earlier."""
    earlier = (Job.priority > job.priority) | ((Job.priority == job.priority) & (Job.created_at < job.created_at))
    return Job.select().where((Job.status == "queued") & earlier).count()


def queue_position(job: Job) -> int | None:
    """Where a queued job stands in line (1: it runs next); None once it is not queued."""
    return jobs_ahead(job) + 1 if job.status == "queued" else None


def phase_of(job: Job) -> str:
    """queued, loading, denoising, decoding, waiting (for its turn on the device), saving, done, failed or
    cancelled."""
    if job.status == "queued":
        return "queued"
    if job.status in FINISHED_PHASES:
        return FINISHED_PHASES[job.status]
    if not job.progress_phase:
        return "denoising" if job.progress_steps else "loading"
    return OLD_PHASES.get(job.progress_phase, job.progress_phase)


def eta_of(job: Job, now: float | None = None) -> float | None:
    """Seconds left in a running job: the runner's estimate when progress was last written, less the time since;
    None when not running or not known yet (before two steps were timed)."""
    if job.status != "running" or job.progress_eta is None:
        return None
    now = time.time() if now is None else now
    return round(max(job.progress_eta - (now - (job.progress_at or now)), 0.0), 1)


def preview_of(job: Job) -> str:
    """The job's live preview as a data URL ("data:image/png;base64,..."), or "" when it has none (queued, not
    yet drawn, or succeeded: the outputs show then). A cancelled or failed job keeps its last one."""
    if not job.progress_preview:
        return ""
    return "data:image/png;base64," + base64.b64encode(bytes(job.progress_preview)).decode("ascii")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def about(seconds: float) -> str:
    """"about 8 s left", "about 3 min left"."""
    return f"about {seconds:.0f} s left" if seconds < 90 else f"about {seconds / 60:.0f} min left"


def progress_text(job: Job, phase: str, position: int | None, eta: float | None) -> str:
    """What a person reads: "queued: 3rd in line · waiting 12 s", "denoising: step 12 of 30 · node 1 of 2 ·
    about 8 s left", "decoding: frame 8 of 16", "done"."""
    if phase == "queued":
        # The wait so far changes the words every second, so a caller who hears them again knows the
        # server is still there (ui.common.follow sends them at least every few seconds).
        waited = f" · waiting {max(time.time() - job.created_at, 0):.0f} s"
        return (f"queued: {ordinal(position)} in line" if position else "queued") + waited
    if job.status != "running":
        return phase
    parts = [{"loading": "loading model", "saving": "saving", "waiting": "waiting for its turn on the device"}
             .get(phase, phase)]
    if phase in ("denoising", "decoding", "waiting") and job.progress_steps:
        counted = "frame" if phase == "decoding" else "step"
        parts[0] += f": {counted} {job.progress_step} of {job.progress_steps}"
    if job.progress_nodes > 1:
        parts.append(f"node {job.progress_node} of {job.progress_nodes}")
    if eta is not None:
        parts.append(about(eta))
    return " · ".join(parts)


def progress_of(job: Job, position: int | None = None, eta: float | None = None) -> dict:
    """The job's progress as the API reports it: step i of n in node k of m, a fraction, and the text a person
    reads (`progress_text`; `position` and `eta` as `queue_position` and `eta_of` give them). `phase` here
    says what `step` counts, as it always has: "step" (denoising) or "frame" (decoding a video)."""
    fraction = 1.0 if job.status == "succeeded" else 0.0
    if job.status == "running" and job.progress_steps:
        done_nodes = max(job.progress_node - 1, 0)
        fraction = (done_nodes + job.progress_step / job.progress_steps) / max(job.progress_nodes, 1)
    phase = phase_of(job)
    return {"step": job.progress_step, "steps": job.progress_steps, "node": job.progress_node,
            "nodes": job.progress_nodes, "phase": "frame" if phase == "decoding" else "step",
            "fraction": round(fraction, 4), "text": progress_text(job, phase, position, eta)}


def status_of(job: Job) -> dict:
    """What /job_status reports: the status, the progress, and `phase` (see `phase_of`), `eta_seconds`,
    `queue_position` (while queued, 1 = next) and `preview` (a data URL, or "")."""
    position, eta = queue_position(job), eta_of(job)
    return {"job_id": job.id, "status": job.status, "progress": progress_of(job, position, eta),
            "phase": phase_of(job), "eta_seconds": eta, "queue_position": position, "preview": preview_of(job),
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
            "error": job.error, "artifact_ids": job.artifact_ids, "plan_hash": job.plan_hash,
            "credits": job.credits, "worker": job.worker, "attempts": job.attempts,
            "reused_from": json.loads(job.result).get("reused_from", "")}


class JobService:
    """Jobs and artifacts as one user sees them.

    Args:
        compiler: validates and prices specs.
        enqueue: puts a job id on the queue with a priority.
        blobs: where artifact files are.
        policy: role and tier rules; with one, jobs cost credits (reserved at submit, captured on
            success, released otherwise) and tiers set limits and priority. None in local mode: nothing
            is charged (`credits` is 0) and only the global limits apply.
        worker_wait: seconds `wait` lets a job stay queued before it looks for a running worker that
            serves it, and fails saying none is when there is none (`queue.worker_wait_seconds`). None
            (default): `wait` never looks.
        lease_seconds: the job lease; a worker whose last heartbeat is older is not running.
    """

    def __init__(self, compiler: Compiler, enqueue: Enqueue, blobs: BlobStore, policy: Policy | None = None,
                 worker_wait: float | None = None, lease_seconds: float = 60.0):
        self.compiler = compiler
        self.enqueue = enqueue
        self.blobs = blobs
        self.policy = policy
        self.worker_wait = worker_wait
        self.lease_seconds = lease_seconds

    def upload(self, user: User, data: bytes, name: str = "The image") -> Artifact:
        """Store an image a person sent (kind "upload"), after checking it; raises AtelierError if it is
        not a usable image. Sending the same bytes twice gives the same artifact. A request that sends
        images checks them with `check_upload` instead, and `submit` stores them if it is accepted."""
        return uploads.keep(self.blobs, user, self.check_upload(data, name))

    def upload_video(self, user: User, data: bytes, name: str = "The video") -> Artifact:
        """Store an MP4 a person sent (kind "upload"), after checking it; raises AtelierError if it is not a
        usable video. Sending the bytes of an existing artifact gives that artifact."""
        return uploads.keep(self.blobs, user, self.check_video_upload(data, name))

    def check_upload(self, data: bytes, name: str = "The image") -> Upload:
        """An image a person sent, checked (raises AtelierError if it is not usable) but not stored: give it
        to `quote` and `submit` with the spec that loads it by its `artifact_id`."""
        return uploads.check_image(data, self.compiler.limits.max_pixels, name)

    def check_video_upload(self, data: bytes, name: str = "The video") -> Upload:
        """An MP4 a person sent, checked (raises AtelierError if it is not usable) but not stored."""
        return uploads.check_video(data, self.compiler.limits.max_pixels, self.compiler.limits.max_frames, name)

    def describe(self, user: User, pending: tuple[Upload, ...] = ()):
        """(artifact id, used as "image", "mask" or "video") -> InputFacts, for the compiler; None for ids
        that are neither `user`'s images (or videos) nor among the `pending` uploads. Only masks are
        decoded (to see whether they are empty); sizes come from the row or the upload's check."""
        waiting = {upload.artifact_id: upload for upload in pending}

        def facts(artifact_id: str, use: str) -> InputFacts | None:
            if artifact_id in waiting:
                return uploads.facts(waiting[artifact_id], use)
            artifact = find_artifact(user, artifact_id)
            wanted = "video/" if use == "video" else "image/"
            if artifact is None or not artifact.mime.startswith(wanted):
                return None
            empty = use == "mask" and uploads.mask_empty(self.blobs.get(artifact.blob_key))
            return InputFacts(width=artifact.width, height=artifact.height, mask_empty=empty,
                              frames=artifact.frames, fps=artifact.fps)
        return facts

    def quote(self, user: User, spec: WorkflowSpec, pending: tuple[Upload, ...] = ()) -> ExecutionPlan:
        """Compile `spec` for `user` (their tier's limits apply) without queueing it: the price, or the
        problems. `pending`: uploads the spec loads that are checked but not stored (`check_upload`).
        Raises InvalidRequest."""
        describe = self.describe(user, pending)
        if self.policy is None:
            return self.compiler.compile(spec, describe=describe)
        tier = self.policy.tier(user)
        return self.compiler.compile(spec, describe=describe, tier_max_side=tier.max_side, tier=tier.name,
                                     tier_max_frames=tier.max_frames, tier_max_nodes=tier.max_nodes)

    def submit(self, user: User, spec: WorkflowSpec, pending: tuple[Upload, ...] = ()) -> Job:
        """Compile `spec` and queue it; raises InvalidRequest (or a role, rate or credit error) before
        anything is stored. `pending`: the uploads the spec loads that are checked but not stored yet
        (`check_upload`); they are stored with the job row, so a refused request stores none of them."""
        self._admit(user)
        plan = self.quote(user, spec, pending)
        return self._queue(user, plan, spec=spec.to_json(), pending=pending)

    def submit_plan(self, user: User, plan: ExecutionPlan, replay_of: str = "",
                    pending: tuple[Upload, ...] = ()) -> Job:
        """Queue a compiled plan (seeds and model hashes included), as a new submission of it: the plan is
        read back as the request that makes it (`recipes.spec_of`) and compiled for `user`, so the same
        rules apply (their inputs only, their tier's limits and node cap, their rate, the price), and it
        is refused unless that compile makes the same plan (the same weights, LoRA files and settings).
        Raises InvalidRequest (or a role, rate or credit error) before anything is stored. The plan may
        come from a file's metadata; it always runs (an identical earlier job is not reused), which is what
        a replay checks. `pending`: uploads the plan loads, checked but not stored (see `submit`)."""
        self._admit(user)
        try:
            spec = recipes.spec_of(plan)
        except ValueError as e:
            raise AtelierError(f"This recipe cannot be replayed here: {e}.", code="not_replayable") from None
        try:
            compiled = self.quote(user, spec, pending)
        except InvalidRequest as e:
            raise InvalidRequest([_as_replay(problem, plan) for problem in e.problems]) from None
        problems = recipes.mismatches(plan, compiled)
        if problems:
            raise InvalidRequest(problems)
        return self._queue(user, recipes.with_labels(compiled, plan), spec=spec.to_json(), replay_of=replay_of,
                           pending=pending, reuse=False)

    def _admit(self, user: User) -> None:
        """Refuse, before anything is compiled or stored, a user who may not generate at all (a viewer)."""
        if self.policy is not None:
            self.policy.check_generate(user)

    def _queue(self, user: User, plan: ExecutionPlan, spec: str, replay_of: str = "",
               pending: tuple[Upload, ...] = (), reuse: bool = True) -> Job:
        """Store `plan` as a job and enqueue it. The tier's hourly allowance is counted, the job row
        inserted and its credits reserved in one transaction, so concurrent submissions by one user can
        never pass together a limit (generations per hour, or the balance) that they could not one by one.
        The `pending` uploads the plan loads are stored in that transaction too, after those checks.

        With `reuse`, a plan identical to one of the user's succeeded jobs whose outputs they still hold
        is served from those outputs (`_reusable`): the job is finished at once, at the tier's
        `reuse_cost` fraction of the price, and uses no generation and no worker."""
        earlier = self._reusable(user, plan) if reuse else None
        charge = plan.credits if self.policy is not None else 0.0
        generations = generations_of(plan)
        if self.policy is not None:
            credits.monthly_grant(user, self.policy.tier(user).monthly_credits)   # a new month's credits first
            if earlier is not None:
                charge = round(plan.credits * self.policy.tier(user).reuse_cost, 2)
        if earlier is not None:
            generations = 0
        with database.atomic():
            if self.policy is not None:
                self.policy.check_hourly(user, generations)   # holds the user's row until this commits
            priority = self.policy.priority(user) if self.policy is not None else 0
            job = jobs.create_job(user, spec=spec, plan=plan.to_json(), plan_hash=plan.plan_hash, credits=charge,
                                  priority=priority, replay_of=replay_of, nodes=len(plan.steps),
                                  generations=generations)
            credits.reserve(user, job.id, charge)
            for upload in pending:             # only now, and before a worker can look for them
                uploads.keep(self.blobs, user, upload)
            if earlier is not None:
                jobs.serve_from(job.id, earlier)
                credits.settle(jobs.find_job(user, job.id), succeeded=True)
        if earlier is not None:
            logger.info("job %s: served from job %s, which ran the same plan %s", job.id, earlier.id,
                        plan.plan_hash[:12])
            return job
        try:
            self.enqueue(job.id, job.priority)
        except Exception as e:
            logger.exception("job %s: enqueue failed", job.id)
            settlement.finish(job.id, "failed", error="The queue is not reachable; try again in a moment.")
            raise AtelierError("The job queue is not reachable; try again in a moment.", code="queue_down") from e
        logger.info("job %s: queued (%s, plan %s)", job.id, user.email, plan.plan_hash[:12])
        return job

    def _reusable(self, user: User, plan: ExecutionPlan) -> Job | None:
        """The newest of `user`'s succeeded jobs that ran `plan`, if every output is still theirs and still
        stored; None otherwise, or when a step of the plan is not deterministic (the same plan may make
        other bytes, so running it again is the point)."""
        if not all(step.deterministic for step in plan.steps):
            return None
        for earlier in jobs.succeeded_with_plan(user, plan.plan_hash):
            held = [own_holding(user, artifact_id) for artifact_id in earlier.artifact_ids]
            if held and all(h is not None and self.blobs.exists(h.artifact.blob_key) for h in held):
                return earlier
        return None

    def job(self, user: User, job_id) -> Job:
        job = jobs.find_job(user, job_id)
        if job is None:
            raise NotFound(f"No job {job_id!r}. Check the id; /jobs lists yours.", field="job_id")
        return job

    def status(self, user: User, job_id) -> dict:
        return status_of(self.job(user, job_id))

    def cancel(self, user: User, job_id) -> dict:
        job = self.job(user, job_id)
        if job.status not in FINISHED:
            settlement.cancel(job.id)
            logger.info("job %s: cancel requested", job.id)
        return status_of(self.job(user, job_id))

    def recent(self, user: User, limit: int = 50) -> list[dict]:
        """The user's `limit` newest jobs, each with its progress as /job_status words it (place in line, time
        left)."""
        return [{"job_id": j.id, "status": j.status, "progress": progress_of(j, queue_position(j), eta_of(j)),
                 "created_at": j.created_at} for j in jobs.recent_jobs(user, limit)]

    def wait(self, user: User, job_id: str, on_progress: Callable[[Job], None] = lambda job: None,
             poll: float = 0.05, timeout: float | None = None, keepalive: float | None = None) -> Job:
        """Follow the job (`watch`) until it finishes, calling `on_progress` with each row it gives, and
        return the finished row. Raises as `watch` does."""
        for job in self.watch(user, job_id, poll=poll, timeout=timeout, keepalive=keepalive):
            on_progress(job)
        return job

    def watch(self, user: User, job_id: str, poll: float = 0.05, timeout: float | None = None,
              keepalive: float | None = None) -> Iterator[Job]:
        """Poll the job row until it finishes, yielding it whenever its progress (or preview) changes, and
        also after `keepalive` seconds without one (None: only on changes); the last row yielded is the
        finished one.

        Raises AtelierError with code "timeout" after `timeout` seconds (None: no limit), and with code
        "no_worker" when the job is still queued `worker_wait` seconds into the wait (see the class) and
        no running worker serves it: a web-only process (ATELIER_WEB_ONLY=1) with no worker would
        otherwise hold the call open for good. Either way the job stays queued with its credits
        reserved, runs when a worker starts, and /job_status follows it.
        """
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        look_for_workers = None if self.worker_wait is None else now + self.worker_wait
        last, last_given = None, now
        while True:
            job = self.job(user, job_id)
            seen = (job.status, job.progress_node, job.progress_phase, job.progress_step, job.progress_preview)
            if seen != last or (keepalive is not None and time.monotonic() - last_given >= keepalive):
                yield job
                last, last_given = seen, time.monotonic()
            if job.status in FINISHED:
                return
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise AtelierError(f"Job {job_id} is still {job.status}; check /job_status later.", code="timeout")
            if job.status == "queued" and look_for_workers is not None and now >= look_for_workers:
                self._needs_a_worker(job)
                look_for_workers = now + WORKER_LOOK_INTERVAL
            time.sleep(poll)

    def _needs_a_worker(self, job: Job) -> None:
        """Raise AtelierError ("no_worker") unless a running worker serves every model `job` needs."""
        workers = leases.serving_workers(self.lease_seconds)
        if not workers:
            logger.info("job %s: still queued and no worker is running", job.id)
            raise AtelierError(f"No worker is running to take this job; it stays queued as {job.id} and will run "
                               f"when one starts (check /job_status).", code="no_worker", field="job_id")
        needed = ExecutionPlan.from_json(job.plan).models()
        if not any(leases.serves(worker, needed) for worker in workers):
            logger.info("job %s: still queued and no running worker serves %s", job.id, sorted(needed))
            raise AtelierError(f"No running worker serves {', '.join(sorted(needed))}, which this job needs; it "
                               f"stays queued as {job.id} and will run when one that does starts (check "
                               f"/job_status).", code="no_worker", field="job_id")


def _as_replay(problem: Problem, plan: ExecutionPlan) -> Problem:
    """A compile problem of a replayed `plan`, said of the recipe: an input the caller does not hold is
    named, with how to supply it."""
    if problem.code not in ("unknown_image", "unknown_video"):
        return problem
    step = plan.step(problem.field.rpartition(".")[0] or plan.steps[0].id)
    what = "video" if problem.code == "unknown_video" else "mask" if getattr(step, "as_mask", False) else "image"
    return Problem(problem.code, problem.field,
                   f"The recipe loads the {what} {step.artifact_id[:16]}… (step {step.id!r}), which you do not have "
                   f"here. Upload that {what} (the same file) first, then replay again.")


def generations_of(plan: ExecutionPlan) -> int:
    """How many of a tier's hourly generations `plan` uses: one per step that makes images or a video
    (loading a stored image or video makes nothing), and at least one, since every job takes a worker."""
    return max(1, sum(not step.reads_stored for step in plan.steps))
