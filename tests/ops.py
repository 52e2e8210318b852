"""The operator's routes (/healthz, /readyz, /metrics) on a FastAPI app of their own, for the metrics and
readiness tests: over given checks, or over the session app's real database, queue and blobs (the `ops`
fixture in conftest.py)."""
from __future__ import annotations

from queueing.metrics import Metrics
from queueing.observability import Readiness, blob_check, database_check, queue_check
from web.ops import install_ops_routes


def app_with(metrics: Metrics, readiness: Readiness, token: str = ""):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    install_ops_routes(app, metrics, readiness, metrics_token=token)
    return TestClient(app)


def real_checks(atelier) -> dict:
    from storage.db import database

    return {"database": database_check(database), "queue": queue_check(atelier.huey),
            "blobs": blob_check(atelier.service.blobs)}
