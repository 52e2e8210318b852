"""Stripe's webhook route: `POST /webhooks/stripe`, which hands the signed payload to `auth.billing.Billing`
(the checks, the ledger and the tiers are there) and turns its verdict into an HTTP answer."""
from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth.billing import Billing, StripeUnavailable, WebhookRefused

logger = logging.getLogger(__name__)


def install_billing_routes(app, billing: Billing) -> None:
    """POST /webhooks/stripe: 200 when applied (or ignored), 400 when the signature does not hold, 503 when
    Stripe's API could not be asked about the event (Stripe then delivers it again)."""
    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request):
        payload = await request.body()
        try:
            result = await run_in_threadpool(billing.handle_webhook, payload, request.headers.get("stripe-signature"))
        except WebhookRefused as e:
            logger.warning("stripe: refused a webhook: %s", e)
            return JSONResponse({"error": "signature verification failed"}, status_code=400)
        except StripeUnavailable as e:
            logger.warning("stripe: deferred a webhook: %s", e)
            return JSONResponse({"error": "Stripe's API did not answer; deliver the event again later"},
                                status_code=503)
        return {"ok": True, "result": result}
