"""What the operator's routes report (the routes themselves are `web.ops`): `/healthz` (the process is
up), `/readyz` (it can do its work: the database, the queue and the blob store answer; and which
workers are running) and `/metrics` (Prometheus, `queueing.metrics`).

A load balancer restarts what fails /healthz and stops sending traffic to what fails /readyz, so
/healthz checks nothing outside the process, and /readyz runs every check each time, each in its own
daemon thread with a time limit: a hung Redis or database makes /readyz answer 503 "no answer in
N s" at once instead of hanging with it, and a probe that is still hung from the last call is waited
on again rather than started twice. A check is any callable that raises when the thing it checks
is not usable; `database_check`, `queue_check` and `blob_check` build the three the app needs.

`workers_check` reports the workers running (a recent heartbeat, not told to stop): their count and
names. It fails only when the worker table cannot be read, never for want of workers: a web process
with no worker still serves pages, galleries and finished jobs, and a load balancer that dropped every
web process while the workers restart would take the whole site down with them (and an orchestrator
that starts workers after the web is ready would never start them). Where the process runs no jobs
itself (ATELIER_WEB_ONLY=1) and no worker is running, the report carries a `warning` saying so; jobs
submitted meanwhile stay queued, and a synchronous call says "No worker is running" (JobService.wait).

    readiness = Readiness({"database": database_check(database), "queue": queue_check(huey),
                           "blobs": blob_check(blobs), "workers": workers_check(database, 60, runs_jobs=False)})
    web.ops.install_ops_routes(fastapi_app, metrics, readiness)
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, TimeoutError as FutureTimeout

from queueing.leases import serving_workers

logger = logging.getLogger(__name__)

Check = Callable[[], object]
PROBE = b"atelier readiness probe\n"


def database_check(db) -> Check:
    """Reads the peewee database `db` (a Database or the `storage.db.database` proxy): the count of
    applied migrations and the newest job row, in a connection it opens and closes itself, so a dead
    connection is never reused. `SELECT 1` would not do: SQLite answers it without reading the file,
    so a file that is not a database any more, or is truncated or malformed, passed (issue 11, item 5).
    Both reads are cheap whatever the size of the tables (a tiny table, and one row by an index)."""
    def check() -> None:
        opened = db.is_closed()
        try:
            db.execute_sql("SELECT COUNT(*) FROM schema_migration").fetchone()
            db.execute_sql("SELECT id FROM job ORDER BY created_at DESC LIMIT 1").fetchone()
        finally:
            if opened and not db.is_closed():
                db.close()
    return check


def queue_check(huey) -> Check:
    """Pings the queue: Redis's PING where Huey's storage is Redis, else a count of pending tasks (a
    query on SQLite). Returns the pending count when it has one."""
    def check() -> int | None:
        ping = getattr(getattr(huey.storage, "conn", None), "ping", None)
        if callable(ping):
            ping()
            return None
        return huey.pending_count()
    return check


def blob_check(blobs) -> Check:
    """Stores a tiny probe blob in the BlobStore `blobs` and reads it back. Content-addressed, so the
    first call writes it and later calls find it stored: each call proves the store answers and
    serves its bytes, the first one that it takes writes."""
    def check() -> None:
        key = blobs.put(PROBE, ".txt")
        if blobs.get(key) != PROBE:
            raise RuntimeError(f"the probe blob {key} came back different")
    return check


def workers_check(db, within: float, runs_jobs: bool) -> Check:
    """Reports the workers running, from the worker table of the peewee database `db`: {"count",
    "names"} (newest heartbeat first), plus a "warning" when there are none and `runs_jobs` is False.
    Never fails for want of workers (see the module docstring).

    Args:
        db: the database (or the `storage.db.database` proxy) the Worker model is bound to.
        within: seconds since a worker's last heartbeat for it to count (the job lease: a worker beats
            every quarter of it).
        runs_jobs: whether this process runs jobs itself (an in-process consumer); False for a web-only
            process.
    """
    def check() -> dict:
        with db.connection_context():
            names = [w.name for w in serving_workers(within)]
        report = {"count": len(names), "names": names}
        if not names and not runs_jobs:
            report["warning"] = ("No worker is running: jobs stay queued until `python -m queueing.worker` "
                                 "starts.")
        return report
    return check


class _CheckFailed(Exception):
    """A check raised (the error is its __cause__) after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class Readiness:
    """Runs named checks concurrently, each limited to `timeout` seconds.

    Args:
        checks: name -> check (see the module docstring); order is kept in the report.
        timeout: seconds a check may take before it counts as failed (default 5).
    """

    def __init__(self, checks: Mapping[str, Check], timeout: float = 5.0):
        self.checks = dict(checks)
        self.timeout = timeout
        self._running: dict[str, Future] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def run(self) -> tuple[bool, dict]:
        """(all passed, {name: {"ok", "seconds", and "error" or "detail"}}); `seconds` is how long the
        check took (the time limit for one that did not answer)."""
        started = time.monotonic()
        futures = {name: self._start(name, check) for name, check in self.checks.items()}
        results = {}
        for name, future in futures.items():
            left = max(self.timeout - (time.monotonic() - started), 0.0)
            try:
                detail, seconds = future.result(timeout=left)
                result = {"ok": True, "seconds": seconds}
                if detail is not None:
                    result["detail"] = detail
            except FutureTimeout:
                result = {"ok": False, "seconds": self.timeout, "error": f"no answer in {self.timeout:g} s"}
            except _CheckFailed as failed:
                e = failed.__cause__
                result = {"ok": False, "seconds": failed.seconds, "error": f"{type(e).__name__}: {e}"[:500]}
            results[name] = result
            self._log_change(name, result)
        return all(r["ok"] for r in results.values()), results

    def _start(self, name: str, check: Check) -> Future:
        """The running probe of `name` if one is still out (a hung one), else a new one in a daemon thread
        (a daemon, so a probe hung for good never keeps the process from exiting). The future gives
        (what the check returned, seconds) or raises _CheckFailed from the check's error."""
        with self._lock:
            future = self._running.get(name)
            if future is not None and not future.done():
                return future
            future = self._running[name] = Future()

        def probe() -> None:
            started = time.monotonic()
            try:
                detail = check()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request
                failed = _CheckFailed(round(time.monotonic() - started, 4))
                failed.__cause__ = e
                future.set_exception(failed)
            else:
                future.set_result((detail, round(time.monotonic() - started, 4)))

        threading.Thread(target=probe, name=f"readyz-{name}", daemon=True).start()
        return future

    def _log_change(self, name: str, result: dict) -> None:
        """Logs a check when it starts or stops failing (not at every probe of a long outage)."""
        with self._lock:
            was_failing = name in self._failing
            if result["ok"] and was_failing:
                self._failing.discard(name)
                logger.info("readiness: %s answers again", name)
            elif not result["ok"] and not was_failing:
                self._failing.add(name)
                logger.warning("readiness: %s failed: %s", name, result["error"])

