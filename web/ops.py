"""The operator's routes: `GET /healthz` (the process is up), `/readyz` (it can do its work) and
`/metrics` (Prometheus). What /readyz checks and what /metrics counts are `queueing.observability`'s
and `queueing.metrics`'; this module answers HTTP with them."""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:       # types only: importing the queueing package would load the job engine's compiler
    from queueing.metrics import Metrics
    from queueing.observability import Readiness


def install_ops_routes(app, metrics: Metrics, readiness: Readiness, metrics_token: str = "") -> None:
    """Add GET /healthz, /readyz and /metrics to the FastAPI `app`. Call it before Gradio is mounted at
    "/", which would otherwise answer these paths.

    Args:
        app: the FastAPI app.
        metrics: this process's metrics (its registry is what /metrics serves).
        readiness: the checks /readyz runs.
        metrics_token: if set, /metrics wants `Authorization: Bearer <token>` (for a /metrics reachable
            from the internet); "" (default) leaves it open, for a private network.
    """
    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

    @app.get("/readyz", include_in_schema=False)
    def readyz():
        ok, checks = readiness.run()
        return JSONResponse({"ok": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request):
        if metrics_token:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {metrics_token}".encode()):
                return Response("A bearer token is required.\n", status_code=401,
                                headers={"WWW-Authenticate": "Bearer"}, media_type="text/plain")
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(metrics.registry), media_type=content_type)
