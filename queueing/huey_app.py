"""The Huey instance: SqliteHuey in the data folder by default, PriorityRedisHuey for redis:// URLs.

Huey's SQLite storage polls, backing off up to 10 s when idle, so a job submitted after a quiet
minute would wait seconds to start. `WakingSqliteStorage` blocks instead: an idle worker waits on a
condition that `enqueue` in the same process signals, and re-checks the table every second for
jobs enqueued by other processes.
"""
from __future__ import annotations

import os
import pathlib
import threading

from huey import Huey, PriorityRedisHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

QUEUE_NAME = "atelier"


class WakingSqliteStorage(SqliteStorage):
    """SqliteStorage whose `dequeue` waits (up to `read_timeout` s) for an enqueue in this process."""

    blocking = True

    def __init__(self, *args, read_timeout: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._wake = threading.Condition()
        self._enqueued = 0          # bumped by every enqueue, so a waiter never misses one

    def enqueue(self, data, priority=None):
        super().enqueue(data, priority=priority)
        with self._wake:
            self._enqueued += 1
            self._wake.notify_all()

    def dequeue(self):
        with self._wake:
            seen = self._enqueued
        data = super().dequeue()
        if data is None:
            with self._wake:
                if self._enqueued == seen:
                    self._wake.wait(self.read_timeout)
            data = super().dequeue()
        return data


def make_huey(queue_url: str, data_dir: str | os.PathLike) -> Huey:
    """The Huey for `queue_url`: "" = <data_dir>/queue.db, "sqlite:///path" = that file,
    "redis://host:port/db" = Redis (with priorities)."""
    if queue_url.startswith("redis://") or queue_url.startswith("rediss://"):
        return PriorityRedisHuey(QUEUE_NAME, url=queue_url, results=False)
    if queue_url and not queue_url.startswith("sqlite:///"):
        raise ValueError(f"ATELIER_QUEUE_URL={queue_url!r} is not supported; use sqlite:///path or redis://host:port/db.")
    path = pathlib.Path(queue_url[len("sqlite:///"):] if queue_url else pathlib.Path(data_dir) / "queue.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    return Huey(QUEUE_NAME, storage_class=WakingSqliteStorage, filename=str(path), results=False)


class EmbeddedConsumer(Consumer):
    """A consumer that runs in a thread of the web process; the web server owns the signals."""

    def _set_signal_handlers(self):
        pass


def start_embedded_consumer(huey: Huey, workers: int) -> tuple[EmbeddedConsumer, threading.Thread]:
    """A consumer with `workers` threads, each running one job at a time, in a daemon thread of this process.
    Jobs start in the queue's order; the threads' jobs take turns on the device at step boundaries
    (pipelines.turns), each thread with its own database connection and torch thread count."""
    consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=False,
                                check_worker_health=True)
    thread = threading.Thread(target=consumer.run, name="huey-consumer", daemon=True)
    thread.start()
    return consumer, thread
