"""Stripe billing: Checkout for credit packs and subscriptions, and the webhook that applies payments.

"Buy credits" creates a Checkout Session whose `client_reference_id` is the user's id and whose
`metadata.credits` is the pack size; Stripe sends `checkout.session.completed` to
`POST /webhooks/stripe`, which checks the signature and grants exactly those credits once (the
ledger key is the session id, so a second delivery grants nothing). A delayed payment (a bank debit)
completes the session unpaid; the credits come with `checkout.session.async_payment_succeeded`.
Subscription events put the customer's user on the tier whose `stripe_price` the subscription is for,
and back on the default tier when it ends.
"""
from __future__ import annotations

import json
import logging
import math

import stripe
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth import audit, credits
from configs import Tiers
from pipelines.errors import AtelierError
from storage.db import database
from storage.models import User

logger = logging.getLogger(__name__)

LIVE_SUBSCRIPTION = ("active", "trialing", "past_due")
NOT_STARTED = "incomplete"       # a subscription waiting for its first payment: no tier change either way
PAID_CHECKOUT = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


class WebhookRefused(Exception):
    """The payload is not a genuine Stripe event (bad or missing signature, stale, not JSON)."""


class Billing:
    """Stripe for one site.

    Args:
        secret_key: Stripe's secret API key (ATELIER_STRIPE_SECRET_KEY).
        webhook_secret: the endpoint's signing secret, whsec_... (ATELIER_STRIPE_WEBHOOK_SECRET).
        tiers: credit packs and subscription prices.
        api_base: another address for Stripe's API ("" = Stripe itself); tests use a local stand-in.
    """

    def __init__(self, secret_key: str, webhook_secret: str, tiers: Tiers, api_base: str = ""):
        addresses = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(secret_key, base_addresses=addresses,
                                          max_network_retries=0 if api_base else 2)
        self.webhook_secret = webhook_secret
        self.tiers = tiers

    # -- Checkout ------------------------------------------------------------------------------------

    def checkout_url(self, user: User, pack_id: str, base_url: str) -> str:
        """The Stripe Checkout page that sells credit pack `pack_id` to `user`; back to `base_url` after."""
        pack = self.tiers.pack(pack_id)
        if pack is None:
            raise AtelierError(f"Unknown credit pack {pack_id!r}; choose one of {[p.id for p in self.tiers.packs]}.",
                               code="unknown_pack", field="pack")
        return self._session(user, base_url, mode="payment", price=pack.price_id,
                             metadata={"credits": str(pack.credits), "pack": pack.id})

    def subscribe_url(self, user: User, tier_name: str, base_url: str) -> str:
        """The Stripe Checkout page that subscribes `user` to tier `tier_name`."""
        tier = next((t for t in self.tiers.tiers if t.name == tier_name and t.stripe_price), None)
        if tier is None:
            raise AtelierError(f"Tier {tier_name!r} is not sold by subscription; choose one of "
                               f"{[t.name for t in self.tiers.tiers if t.stripe_price]}.", code="unknown_tier",
                               field="tier")
        return self._session(user, base_url, mode="subscription", price=tier.stripe_price,
                             metadata={"tier": tier.name})

    def _session(self, user: User, base_url: str, mode: str, price: str, metadata: dict) -> str:
        base_url = base_url.rstrip("/") + "/"
        params = {"mode": mode, "line_items": [{"price": price, "quantity": 1}],
                  "client_reference_id": str(user.id), "metadata": {**metadata, "user_id": str(user.id)},
                  "success_url": base_url + "?checkout=success", "cancel_url": base_url + "?checkout=cancelled"}
        if user.stripe_customer:
            params["customer"] = user.stripe_customer
        elif not user.is_guest:
            params["customer_email"] = user.email
        if mode == "subscription":
            params["subscription_data"] = {"metadata": {"user_id": str(user.id)}}
        try:
            session = self.client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as e:
            logger.warning("stripe: checkout for user %s failed: %s", user.id, e)
            raise AtelierError("Stripe did not open a checkout page; try again in a minute.", code="stripe_error") from e
        logger.info("stripe: checkout session %s for user %s (%s)", session.id, user.id, metadata)
        return session.url

    # -- the webhook ---------------------------------------------------------------------------------

    def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify and apply one event; returns what was done. Raises WebhookRefused for anything that
        is not signed with the webhook secret (nothing changes then)."""
        try:
            stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as e:
            raise WebhookRefused(str(e)) from None
        event = json.loads(payload)
        kind, obj = event.get("type", ""), event.get("data", {}).get("object", {})
        with database.atomic():
            if kind in PAID_CHECKOUT:
                return self._checkout_completed(obj)
            if kind in ("customer.subscription.created", "customer.subscription.updated",
                        "customer.subscription.deleted"):
                return self._subscription_changed(obj, ended=kind.endswith("deleted"))
        return "ignored"

    def _checkout_completed(self, session: dict) -> str:
        user = _user(session.get("client_reference_id"))
        if user is None:
            logger.warning("stripe: checkout %s names no known user", session.get("id"))
            return "unknown user"
        if session.get("customer") and user.stripe_customer != session["customer"]:
            User.update(stripe_customer=session["customer"]).where(User.id == user.id).execute()
        if session.get("mode") != "payment":
            return "customer linked"
        if session.get("payment_status", "paid") not in ("paid", "no_payment_required"):
            return "not paid yet"
        amount = _number((session.get("metadata") or {}).get("credits"))
        if amount <= 0:
            logger.warning("stripe: checkout %s carries no credits in its metadata", session.get("id"))
            return "no credits in metadata"
        if not credits.grant(user, amount, f"stripe:{session['id']}", note=f"bought {amount:g} credits"):
            return "already granted"
        logger.info("stripe: granted %s credits to user %s (checkout %s)", amount, user.id, session["id"])
        return "granted"

    def _subscription_changed(self, subscription: dict, ended: bool) -> str:
        user = (User.get_or_none(User.stripe_customer == subscription.get("customer"))
                if subscription.get("customer") else None) or _user(subscription.get("metadata", {}).get("user_id"))
        if user is None:
            return "unknown customer"
        if not ended and subscription.get("status") == NOT_STARTED:
            return "not started"
        subscription_id = subscription.get("id", "")
        live = not ended and subscription.get("status") in LIVE_SUBSCRIPTION
        if not live and user.stripe_subscription not in ("", subscription_id):
            return "not the current subscription"      # an older one ending leaves the newer one's tier
        tier = self.tiers.default
        if live:
            items = subscription.get("items", {}).get("data", [])
            prices = [item.get("price", {}).get("id", "") for item in items]
            tier = next((t for t in map(self.tiers.tier_for_price, prices) if t is not None), None)
            if tier is None:
                return "unknown price"
        User.update(stripe_subscription=subscription_id if live else "").where(User.id == user.id).execute()
        if user.tier != tier.name:
            User.update(tier=tier.name).where(User.id == user.id).execute()
            audit.record(None, "set_tier", user, before=user.tier, after=tier.name, source="stripe",
                         subscription=subscription.get("id", ""))
        return f"tier {tier.name}"


def _number(value) -> float:
    """`value` as a number of credits; 0 for anything that is not one (so a bad event grants nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _user(user_id) -> User | None:
    try:
        return User.get_or_none(User.id == int(user_id))
    except (TypeError, ValueError):
        return None


def install_billing_routes(app, billing: Billing) -> None:
    """POST /webhooks/stripe: 200 when applied (or ignored), 400 when the signature does not hold."""
    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request):
        payload = await request.body()
        try:
            result = await run_in_threadpool(billing.handle_webhook, payload, request.headers.get("stripe-signature"))
        except WebhookRefused as e:
            logger.warning("stripe: refused a webhook: %s", e)
            return JSONResponse({"error": "signature verification failed"}, status_code=400)
        return {"ok": True, "result": result}
