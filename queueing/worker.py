"""`python -m queueing.worker [--workers N]`: a consumer that runs jobs, apart from the web process.

It reads the same settings as `python app.py` (configs/default.toml plus ATELIER_* variables), so
point both at the same database, queue and blob store.
"""
from __future__ import annotations

import argparse
import logging
import os

from configs import load_models, load_settings, needs_hub
from queueing.executor import JobExecutor, build_runner
from queueing.huey_app import make_huey
from queueing.tasks import register_tasks
from storage.blobs import open_blob_store
from storage.db import open_database


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m queueing.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="jobs run at once (threads); default 1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if not needs_hub(load_models(settings.catalogue)):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    open_database(settings.resolved_database_url)
    blobs = open_blob_store(settings.blobs_url, settings.data_dir)
    huey = make_huey(settings.queue_url, settings.data_dir)
    executor = JobExecutor(lambda: build_runner(settings), blobs, settings.progress_interval)
    executor.warm_up()
    register_tasks(huey, executor)
    consumer = huey.create_consumer(workers=args.workers, worker_type="thread", periodic=False)
    consumer.run()


if __name__ == "__main__":
    main()
