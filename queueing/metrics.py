"""Prometheus metrics for one process: what the job table says now, and what this process saw happen.

Two kinds of numbers, read two ways, so that they stay right when the web processes and the GPU
workers are separate processes on separate machines:

- **State, from the database at scrape time** (`JobTableCollector`): `atelier_jobs{state}` (jobs by
  status) and `atelier_queue_depth{priority}` / `atelier_queue_oldest_age_seconds{priority}` (queued
  jobs by priority). The job table is the one truth across queue backends and processes, so any
  process that scrapes it reports the same value: expose it from the web processes only (a worker's
  `Metrics(job_table=False)`), and with several web replicas aggregate with `max`, not `sum`.
  Two small queries per scrape: a GROUP BY status (SQLite and PostgreSQL answer it from the status
  index) and a GROUP BY priority over the queued rows only.
- **Events, observed by the process they happen in** (the hooks `job_started`, `job_finished`,
  `model_loaded`, `job_requeued`): the histograms `atelier_job_queue_wait_seconds{priority}`
  (created -> started, observed when a worker claims the job), `atelier_job_duration_seconds{status}`
  (started -> finished, observed by whoever moved the job to its terminal status: the worker, or the
  process that failed it after its lease ran out), `atelier_model_load_seconds{family}` and the
  counter `atelier_job_requeues_total{reason}`. This is Prometheus's own convention: every process
  exposes its own counters (the web process on /metrics, a worker on its own port through
  `serve_worker_metrics`), a restart resets them (which `rate()` understands), and queries sum over
  instances: `sum by (le) (rate(atelier_job_duration_seconds_bucket[5m]))`. Each job is observed
  once, because only one process wins each transition. Durations come from the job row's own
  timestamps, not from a clock in the hook. Histograms rebuilt from the table at scrape time were the
  alternative and are wrong: over "recent" rows their counts go down (Prometheus reads that as a
  reset), over all rows they cost a full scan per scrape and double when two web processes are scraped.
- `atelier_gpu_memory_bytes{device, kind}` (allocated, reserved, total), only in a process that has
  already imported torch and initialised CUDA: the web process never imports torch, and a scrape
  must not start a CUDA context. Plus the standard `process_*` metrics of this process.

The registry is the `Metrics` object's own (not prometheus_client's global one), so several apps in
one test process do not collide; the app builds one `Metrics` and hands it to whoever observes.
"""
from __future__ import annotations

import logging
import sys
import time

from peewee import fn
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily

from storage.models import FINISHED, JOB_STATUSES, Job

logger = logging.getLogger(__name__)

# Seconds. Jobs run from a fraction of a second (tiny models, a cache hit) to tens of minutes (video).
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
QUEUE_WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
MODEL_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)


class JobTableCollector:
    """Jobs by status and queued jobs by priority, read from the job table at each scrape.

    `atelier_job_table_up` is 1 when the queries answered and 0 when they failed (the failure is
    logged and the other job metrics are left out of that scrape, rather than failing /metrics)."""

    def describe(self):
        return self._families()

    @staticmethod
    def _families():
        return [
            GaugeMetricFamily("atelier_jobs", "Jobs in the job table, by status.", labels=["state"]),
            GaugeMetricFamily("atelier_queue_depth", "Queued jobs, by priority (higher starts first).",
                              labels=["priority"]),
            GaugeMetricFamily("atelier_queue_oldest_age_seconds",
                              "Age of the oldest queued job, by priority.", labels=["priority"]),
            GaugeMetricFamily("atelier_job_table_up", "1 if the job table answered this scrape, else 0."),
        ]

    def collect(self):
        jobs, depth, oldest, up = self._families()
        try:
            by_status, by_priority = self._query()
        except Exception as e:          # noqa: BLE001 - a scrape reports the outage instead of failing
            logger.warning("metrics: the job table did not answer (%s: %s)", type(e).__name__, e)
            up.add_metric([], 0)
            yield up
            return
        for state in (*JOB_STATUSES, *sorted(set(by_status) - set(JOB_STATUSES))):
            jobs.add_metric([state], by_status.get(state, 0))
        now = time.time()
        for priority, count, created in sorted(by_priority):
            depth.add_metric([str(priority)], count)
            oldest.add_metric([str(priority)], max(now - created, 0.0))
        up.add_metric([], 1)
        yield from (jobs, depth, oldest, up)

    @staticmethod
    def _query() -> tuple[dict[str, int], list[tuple[int, int, float]]]:
        db = Job._meta.database
        opened = db.is_closed()       # close only a connection this scrape opened
        try:
            by_status = dict(Job.select(Job.status, fn.COUNT(Job.id)).group_by(Job.status).tuples())
            by_priority = list(Job.select(Job.priority, fn.COUNT(Job.id), fn.MIN(Job.created_at))
                               .where(Job.status == "queued").group_by(Job.priority).tuples())
            return by_status, by_priority
        finally:
            if opened and not db.is_closed():
                db.close()


class GpuMemoryCollector:
    """`atelier_gpu_memory_bytes{device, kind}` for each CUDA device, where this process has already
    imported torch and initialised CUDA; nothing otherwise (it never imports torch itself)."""

    def describe(self):
        return []

    def collect(self):
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        family = GaugeMetricFamily("atelier_gpu_memory_bytes",
                                   "GPU memory held by this process's tensors (allocated), by its caching "
                                   "allocator (reserved), and the device's size (total).",
                                   labels=["device", "kind"])
        for index in range(torch.cuda.device_count()):
            device = f"cuda:{index}"
            family.add_metric([device, "allocated"], torch.cuda.memory_allocated(index))
            family.add_metric([device, "reserved"], torch.cuda.memory_reserved(index))
            family.add_metric([device, "total"], torch.cuda.get_device_properties(index).total_memory)
        yield family


class Metrics:
    """One process's metrics registry and the hooks that feed it.

    Args:
        job_table: report the job table's state (`JobTableCollector`); True for web processes, False
            for workers (the state is global, so one kind of process reports it).
        gpu: report GPU memory where this process uses CUDA.
        process: report this process's CPU, memory and open files (`process_*`).

    The hooks never raise: a metrics problem is logged and the job goes on.
    """

    def __init__(self, *, job_table: bool = True, gpu: bool = True, process: bool = True):
        self.registry = CollectorRegistry()
        self.job_duration = Histogram(
            "atelier_job_duration_seconds", "Seconds from a job's start to its end, by its final status.",
            ["status"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram(
            "atelier_job_queue_wait_seconds", "Seconds from a job's submission to its start, by its priority.",
            ["priority"], buckets=QUEUE_WAIT_BUCKETS, registry=self.registry)
        self.model_load = Histogram(
            "atelier_model_load_seconds", "Seconds to load a model into the model cache, by model family.",
            ["family"], buckets=MODEL_LOAD_BUCKETS, registry=self.registry)
        self.requeues = Counter(
            "atelier_job_requeues", "Jobs put back in the queue, by why: lease_expired (a running job's worker "
            "died), shutdown (its worker was told to stop), lost_by_queue (a queued job the queue no longer held).",
            ["reason"], registry=self.registry)
        for status in FINISHED:         # every series exists from the start, so rate() has a zero to start from
            self.job_duration.labels(status=status)
        if job_table:
            self.registry.register(JobTableCollector())
        if gpu:
            self.registry.register(GpuMemoryCollector())
        if process:
            ProcessCollector(registry=self.registry)

    def job_started(self, job: Job) -> None:
        """A worker claimed `job` (the row `storage.jobs.claim` returned): observe its queue wait."""
        try:
            if job.started_at is not None:
                self.queue_wait.labels(priority=str(job.priority)).observe(max(job.started_at - job.created_at, 0.0))
        except Exception:               # noqa: BLE001 - metrics never break a job
            logger.warning("job %s: metrics: queue wait not recorded", getattr(job, "id", job), exc_info=True)

    def job_finished(self, job: Job | str) -> None:
        """This process moved `job` (a row or a job id) to a terminal status: observe how long it ran,
        labelled by that status, from the row as it is now. Jobs that never started (cancelled while
        queued) have no duration and are not observed."""
        job_id = job if isinstance(job, str) else job.id
        try:
            row = (Job.select(Job.status, Job.started_at, Job.finished_at).where(Job.id == job_id).first())
            if row is None or row.status not in FINISHED or row.started_at is None or row.finished_at is None:
                return
            self.job_duration.labels(status=row.status).observe(max(row.finished_at - row.started_at, 0.0))
        except Exception:               # noqa: BLE001 - metrics never break a job
            logger.warning("job %s: metrics: duration not recorded", job_id, exc_info=True)

    def model_loaded(self, seconds: float, family: str = "") -> None:
        """The model cache took `seconds` to load a model of `family` (sd15, sdxl, svd, controlnet, ...)."""
        self.model_load.labels(family=family or "unknown").observe(max(seconds, 0.0))

    def job_requeued(self, reason: str) -> None:
        """A running job went back to the queue: "lease_expired" (its worker died) or "shutdown" (SIGTERM)."""
        self.requeues.labels(reason=reason).inc()

    def scrape(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def serve_worker_metrics(port: int, metrics: Metrics, addr: str = "0.0.0.0"):
    """Serve `metrics` on http://addr:port/metrics from a daemon thread (for `python -m queueing.worker`,
    which has no web server). Port 0 picks a free one. Returns (server, thread); `server.shutdown()`
    stops it, and `server.server_port` is the port."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    logger.info("metrics on http://%s:%s/metrics", addr, server.server_port)
    return server, thread
