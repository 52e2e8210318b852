"""Atelier: the composition root. Reads the settings, opens the database, the blob store and the
queue, builds the UI and serves it (with an in-process job consumer unless ATELIER_WEB_ONLY=1).

    python app.py            # http://127.0.0.1:7860
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass

from configs import Settings, load_models, load_settings, load_styles, load_tiers, needs_hub

logger = logging.getLogger("atelier")
QUEUE_SIZE = 256        # events Gradio's queue holds, and (app.build) the most it runs at once


@dataclass
class Atelier:
    """The running pieces, for `serve()` and for tests."""

    settings: Settings
    service: object          # queueing.JobService
    executor: object | None  # queueing.JobExecutor, None when web-only
    huey: object
    demo: object             # gr.Blocks
    blob_root: str
    web_auth: object         # auth.WebAuth
    account: object          # auth.AccountService
    metrics: object = None   # queueing.metrics.Metrics
    artifacts: object = None  # queueing.catalogue.ArtifactCatalogue


def build(settings: Settings) -> Atelier:
    """Open everything `settings` names and build the UI; starts no threads and no server."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from pipelines.families import FAMILIES

    models, styles, tiers = load_models(settings.catalogue), load_styles(settings.styles), load_tiers(settings.tiers)
    models = FAMILIES.catalogue(models)          # each family's defaults filled in; the first model draws
    if not needs_hub(models):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from auth import AccountService, Accounts, Policy, WebAuth
    from pipelines.compiler import Compiler
    from pipelines.loras import ExtrasIndex
    from pipelines.model_facts import ModelInspector
    from pipelines.model_hashes import ModelHasher
    from queueing import ArtifactCatalogue, JobExecutor, JobService, build_runner, make_huey, register_tasks
    from queueing.logs import install_huey_job_context
    from queueing.metrics import Metrics
    from storage import open_blob_store, open_database
    from ui import UIContext, build_ui

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    open_database(settings.resolved_database_url)
    blobs = open_blob_store(settings.blobs_url, settings.data_dir)
    huey = make_huey(settings.queue_url, settings.data_dir)
    metrics = Metrics()
    executor = None if settings.web_only else JobExecutor(
        lambda: build_runner(settings, on_model_load=metrics.model_loaded), blobs, settings.progress_interval,
        settings.job_lease_seconds, metrics=metrics)
    if executor is not None:
        install_huey_job_context(huey)
    run_job = register_tasks(huey, executor)
    # Quoting reads what is known of the models and the LoRA folders, not the files (issue 12, item 2): the
    # models' hashes and facts are worked out once (in the background when the server starts) and kept.
    extras = ExtrasIndex(settings.loras_dir, settings.embeddings_dir)
    inspector = ModelInspector(ModelHasher(settings.models_dir))
    compiler = Compiler(models, styles, settings.limits, tiers.prices, inspector.hash, extras=extras,
                        model_facts=inspector)
    accounts = Accounts(tiers, settings.guest_credits, settings.session_days * 86400)
    policy = Policy(tiers)
    def enqueue(job_id: str, priority: int) -> None:
        run_job(job_id, priority=priority)

    service = JobService(compiler, enqueue, blobs, policy=policy if settings.accounts else None,
                         worker_wait=settings.worker_wait_seconds, lease_seconds=settings.job_lease_seconds)
    account = AccountService(accounts, policy, tiers, settings.accounts, billing=make_billing(settings, tiers))
    web_auth = WebAuth(accounts, settings.accounts, blob_root=str(blobs.root), gradio_folders=(gradio_upload_folder(),))
    artifacts = ArtifactCatalogue(service, blobs)
    ctx = UIContext(service=service, artifacts=artifacts, models=models, styles=styles, current_user=web_auth.current_user,
                    account=account, public_url=settings.public_url, loras=lambda: sorted(extras("lora")),
                    lease_seconds=settings.job_lease_seconds)
    demo = build_ui(ctx)
    # A call that waits for a job holds one of Gradio's worker slots, and a thread, until the job ends.
    # launch() sizes both with max_threads (40 unless told); a mounted app keeps 40, so a 41st waiting
    # call sat in Gradio's own queue, where no progress of ours reaches it, and the waiting calls used
    # the thread pool that Starlette reads files and runs sync routes with. As many slots as the queue
    # holds events, and, since that is not 40, a thread limiter of Gradio's own for them.
    demo.max_threads = QUEUE_SIZE
    demo.queue(default_concurrency_limit=8, max_size=QUEUE_SIZE)
    return Atelier(settings, service, executor, huey, demo, str(blobs.root), web_auth, account, metrics,
                   artifacts=artifacts)


def gradio_upload_folder() -> str:
    """Where Gradio keeps uploads and the copies of files it serves (GRADIO_TEMP_DIR, else a folder in
    the system's temporary folder)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def make_billing(settings: Settings, tiers):
    """Stripe billing when a secret key is set; None otherwise (the Account tab then says so)."""
    if not settings.stripe_secret_key:
        return None
    from auth.billing import Billing

    return Billing(settings.stripe_secret_key, settings.stripe_webhook_secret, tiers,
                   api_base=settings.stripe_api_base)


def make_fastapi(atelier: Atelier):
    """The ASGI app: Gradio mounted at "/", health routes beside it, the consumer in its lifespan."""
    import gradio as gr
    from fastapi import FastAPI

    from auth import session_secret
    from queueing import start_embedded_consumer
    from queueing.reconcile import Reconciler
    from ui import style as page_style
    from web import install_account_routes, install_ops_routes

    @contextlib.asynccontextmanager
    async def lifespan(app):
        compiler = atelier.service.compiler
        threading.Thread(target=compiler.model_facts.warm, args=(compiler.models.values(),), name="model-facts",
                         daemon=True).start()
        consumer = None
        executor = atelier.executor
        if executor is not None and atelier.settings.queue_workers > 0:
            executor.start(atelier.service.enqueue, atelier.settings.queue_workers,
                           reconciler=Reconciler(atelier.huey, atelier.settings.requeue_grace_seconds))
            consumer, _ = start_embedded_consumer(atelier.huey, atelier.settings.queue_workers)
            # Import torch and build the engine now, so the first job doesn't wait for it.
            threading.Thread(target=executor.warm_up, name="engine-warmup", daemon=True).start()
        yield
        if consumer is not None:
            executor.stop_soon()            # a running job goes back to the queue at its next step
            consumer.stop(graceful=True)
            executor.shutdown()

    app = FastAPI(lifespan=lifespan)

    from queueing.observability import Readiness, blob_check, database_check, queue_check, workers_check
    from storage.db import database

    runs_jobs = atelier.executor is not None and atelier.settings.queue_workers > 0
    readiness = Readiness({"database": database_check(database), "queue": queue_check(atelier.huey),
                           "blobs": blob_check(atelier.service.blobs),
                           "workers": workers_check(database, atelier.settings.job_lease_seconds, runs_jobs)})
    install_ops_routes(app, atelier.metrics, readiness, metrics_token=atelier.settings.metrics_token)

    settings = atelier.settings
    if atelier.account.billing is not None:
        from web.billing import install_billing_routes
        install_billing_routes(app, atelier.account.billing)
    if settings.accounts and settings.oauth_providers:
        from web.oauth import install_oauth_routes
        install_oauth_routes(app, atelier.web_auth, settings.oauth_providers, settings.public_url)
    if settings.mcp:
        from web.mcp import install_mcp_gate
        # before the session middleware, which must wrap it
        install_mcp_gate(app, atelier.web_auth if settings.accounts else None)
    blobs = atelier.service.blobs
    install_account_routes(app, atelier.web_auth, session_secret(settings.session_secret, settings.data_dir),
                           lambda artifact: str(blobs.path(artifact.blob_key)),
                           providers=tuple((p.name, p.label or p.name.title()) for p in settings.oauth_providers),
                           https_only=settings.public_url.startswith("https://"),
                           max_age=int(settings.session_days * 86400), public_url=settings.public_url)
    from pipelines.loras import ExtrasIndex
    from web.a1111 import a1111_caller, install_a1111_routes
    extras = ExtrasIndex(settings.loras_dir, settings.embeddings_dir)
    install_a1111_routes(app, atelier.service, atelier.artifacts,
                         a1111_caller(atelier.web_auth, settings.accounts, atelier.account),
                         loras=lambda: sorted(extras("lora")))
    app = gr.mount_gradio_app(app, atelier.demo, path="/", allowed_paths=[atelier.blob_root], css=page_style.CSS,
                              max_file_size=settings.limits.max_upload_bytes,
                              auth_dependency=atelier.web_auth.dependency if settings.accounts else None,
                              mcp_server=settings.mcp)
    serve_as_launched(atelier.demo)
    return app


def serve_as_launched(demo) -> None:
    """Make Gradio check the files named in requests, as it does for a launched app.

    `gr.mount_gradio_app` leaves `demo.has_launched` False (only `launch()` sets it), and Gradio 6.31's
    `processing_utils._check_allowed` returns at once while it is False: any handler input carrying a
    FileData with a server path (`/etc/passwd`, the database, the session secret) was copied into
    Gradio's cache and served back to the caller. Set, inputs must come from Gradio's upload folder and
    outputs from `allowed_paths`. tests/test_file_access.py fails if a Gradio upgrade changes this."""
    demo.has_launched = True


def open_share_link(host: str, port: int) -> None:
    """Ask Gradio's share server for a temporary public URL to this server (ATELIER_SHARE=1), once it
    listens. The whole app goes through it: login, webhooks and share pages as well as the UI."""
    import secrets
    import socket
    import time

    from gradio import networking

    for _ in range(600):
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            break
        time.sleep(0.1)
    try:
        url = networking.setup_tunnel(host, port, secrets.token_urlsafe(32), None, None)
    except Exception as e:          # noqa: BLE001 - the app works without it; say why there is none
        logger.warning("no public share link (%s: %s); the app is still on http://%s:%s", type(e).__name__, e,
                       host, port)
        return
    logger.info("public share link (open for 1 week at most): %s", url)


def main() -> None:
    from queueing.logs import JobIdFilter
    from storage.db import SchemaTooNew
    from web import configure_logging

    settings = load_settings()
    configure_logging(json=settings.log_format == "json", filters=(JobIdFilter(),))
    try:
        atelier = build(settings)
    except SchemaTooNew as e:
        raise SystemExit(str(e)) from None
    import uvicorn

    if settings.share:
        threading.Thread(target=open_share_link, args=(settings.host, settings.port), name="share-link",
                         daemon=True).start()
    logger.info("Atelier on http://%s:%s (%s mode)", settings.host, settings.port, settings.auth_mode)
    uvicorn.run(make_fastapi(atelier), host=settings.host, port=settings.port, log_level="warning",
                log_config=None, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
