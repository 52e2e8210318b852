"""`python -m queueing.worker [--workers N] [--models ID ...]`: a process that runs jobs, apart from the
web process, on this machine or another one.

It reads the same settings as `python app.py` (configs/default.toml plus ATELIER_* variables), so point
both at the same database, queue and blob store. It beats a heartbeat (the Worker row the Admin tab
lists), renews the leases of the jobs it runs, hands on the jobs of workers that died, and, when it
starts and at every beat, puts back on the queue the queued jobs the queue lost (Redis restarted
empty; see queueing/reconcile.py). With
`--models` it only runs jobs whose models are all in the list; others wait for a worker that serves
them. SIGTERM (or SIGINT) stops it gracefully: a running job stops at its next step and goes back to
the queue for another worker; a second signal stops it at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal

from huey.consumer import Consumer

from configs import load_models, load_settings, needs_hub
from pipelines.families import FAMILIES
from queueing.executor import JobExecutor, build_runner
from queueing.huey_app import make_huey
from queueing.logs import JobIdFilter, install_huey_job_context
from queueing.metrics import Metrics, serve_worker_metrics
from queueing.reconcile import Reconciler
from queueing.tasks import register_tasks
from storage.blobs import open_blob_store
from storage.db import SchemaTooNew, open_database
from web.logs import configure_logging      # the one import of web here: this module is an entry point

logger = logging.getLogger("atelier.worker")


class WorkerConsumer(Consumer):
    """Huey's consumer, with SIGTERM made graceful and passed on to the executor (so the job in hand goes
    back to the queue instead of being lost)."""

    def __init__(self, huey, executor: JobExecutor, **options):
        super().__init__(huey, graceful_signal="TERM", **options)
        self.executor = executor

    def _handle_signal(self, signum, frame):
        super()._handle_signal(signum, frame)
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.executor.stop_soon()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m queueing.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="jobs run at once (threads), taking turns on the device at step boundaries; default 2")
    parser.add_argument("--models", nargs="*", default=[], metavar="ID",
                        help="catalogue ids of the models this worker serves (default: all)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics on this port (default: ATELIER_METRICS_PORT, else none)")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(json=settings.log_format == "json", filters=(JobIdFilter(),))
    metrics_port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    catalogue = FAMILIES.catalogue(load_models(settings.catalogue))
    if not needs_hub(catalogue):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    unknown = sorted(set(args.models) - {m.id for m in catalogue})
    if unknown:
        parser.error(f"--models names {unknown}, which the catalogue ({settings.catalogue}) does not have; "
                     f"it has {sorted(m.id for m in catalogue)}")
    try:
        open_database(settings.resolved_database_url)
    except SchemaTooNew as e:
        raise SystemExit(str(e)) from None
    blobs = open_blob_store(settings.blobs_url, settings.data_dir)
    huey = make_huey(settings.queue_url, settings.data_dir)
    metrics = Metrics(job_table=False)
    executor = JobExecutor(lambda: build_runner(settings, on_model_load=metrics.model_loaded), blobs,
                           settings.progress_interval, settings.job_lease_seconds, models=tuple(args.models),
                           metrics=metrics)
    install_huey_job_context(huey)
    if metrics_port:
        serve_worker_metrics(metrics_port, metrics)
    run_job = register_tasks(huey, executor)
    executor.warm_up()
    executor.start(lambda job_id, priority: run_job(job_id, priority=priority), args.workers,
                   reconciler=Reconciler(huey, settings.requeue_grace_seconds))
    logger.info("worker %s: serving %s with %d thread(s), leases of %g s", executor.worker,
                args.models or "every model", args.workers, settings.job_lease_seconds)
    consumer = WorkerConsumer(huey, executor, workers=args.workers, worker_type="thread", periodic=False)
    try:
        consumer.run()
    finally:
        executor.shutdown()


if __name__ == "__main__":
    main()
