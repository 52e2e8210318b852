"""Stripe billing: Checkout for credit packs and subscriptions, and the webhook that applies payments.

"Buy credits" creates a Checkout Session for the pack's Stripe price whose `client_reference_id` is the
user's id; Stripe sends `checkout.session.completed` to `POST /webhooks/stripe`, which checks the
signature, reads the session back from Stripe's API by its id, and grants what tiers.toml says that
price sells, times the quantity, once (the ledger key is the session id, so a second delivery grants
nothing). The route itself is `web.billing`'s; this module checks and applies what it is handed. Nothing
in the event's body decides who gets what: anyone holding the webhook secret can sign an event, but only
Stripe holds a paid session (issue 11). A delayed payment (a bank debit) completes
the session unpaid; the credits come with `checkout.session.async_payment_succeeded`.
Subscription events are trusted the same way: only the subscription's id is read from the event, the
subscription is read back from Stripe, and its current state puts its user (the one linked to its
customer, or the `user_id` our checkout wrote into its metadata) on the tier whose `stripe_price` it is
for while it is live, and back on the default tier when it is not. They are also applied in the order
Stripe created them, so a late or re-delivered older event changes nothing.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable

import stripe

from auth import audit, credits
from configs import Tiers
from pipelines.errors import AtelierError
from storage.db import database
from storage.models import User

logger = logging.getLogger(__name__)

LIVE_SUBSCRIPTION = ("active", "trialing", "past_due")
NOT_STARTED = "incomplete"       # a subscription waiting for its first payment: no tier change either way
PAID_CHECKOUT = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted")
PAID = ("paid", "no_payment_required")
SIGNATURE_TOLERANCE = 300   # seconds a signature may be old (Stripe's default): a replay after that is refused
FUTURE_SKEW = 30            # seconds a signature may be dated ahead of this host's clock (clock drift)


class WebhookRefused(Exception):
    """The payload is not a genuine Stripe event (bad or missing signature, stale or future-dated, not JSON)."""


class StripeUnavailable(Exception):
    """Stripe's API did not answer while an event was being checked; nothing changed, and the webhook
    answers 503 so that Stripe delivers the event again later."""


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
        # The metadata is for people reading Stripe's dashboard; the webhook never reads it back (the
        # customer's browser can see it, and anyone with the webhook secret can put anything there).
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
        """Verify and apply one event; returns what was done (for the log and the response).

        Raises WebhookRefused, changing nothing, for anything not signed with the webhook secret, signed
        more than SIGNATURE_TOLERANCE s ago, or dated more than FUTURE_SKEW s ahead (stripe's
        construct_event checks only the first two, and a signature dated a day ahead could be replayed
        for a day). Raises StripeUnavailable, changing nothing, when a checkout or subscription cannot be
        read back from Stripe. Stripe's API is called before the transaction opens, so no database lock is
        held over the network.
        """
        try:
            stripe.Webhook.construct_event(payload, signature, self.webhook_secret, tolerance=SIGNATURE_TOLERANCE)
        except (stripe.SignatureVerificationError, ValueError) as e:
            raise WebhookRefused(str(e)) from None
        ahead = _signed_at(signature) - time.time()
        if ahead > FUTURE_SKEW:
            raise WebhookRefused(f"the signature is dated {ahead:.0f} s in the future (at most {FUTURE_SKEW} s is "
                                 "accepted); if Stripe really sent it, set this host's clock right (NTP)")
        event = json.loads(payload)
        data = event.get("data") if isinstance(event, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise WebhookRefused("the payload is not a Stripe event (an object with data.object)")
        kind = event.get("type", "")
        if kind in PAID_CHECKOUT:
            session = self._retrieve_session(obj.get("id"))
            if session is None:
                return "unknown session"
            with database.atomic():
                return self._checkout_completed(session, obj)
        if kind in SUBSCRIPTION_EVENTS:
            created, event_id = event.get("created"), str(event.get("id") or "")
            if isinstance(created, bool) or not isinstance(created, int) or created <= 0:
                logger.warning("stripe: subscription event %s has no creation time (%r); ignored", event_id, created)
                return "no event time"
            subscription = self._retrieve_subscription(obj.get("id"))
            if subscription is None:
                return "unknown subscription"
            with database.atomic():
                return self._subscription_changed(subscription, created, event_id)
        return "ignored"

    def _retrieve_session(self, session_id) -> dict | None:
        """The Checkout Session `session_id` as Stripe holds it, with its line items (see `_read_back`)."""
        return _read_back("checkout", "cs_", session_id,
                          lambda: self.client.v1.checkout.sessions.retrieve(session_id,
                                                                             params={"expand": ["line_items"]}))

    def _retrieve_subscription(self, subscription_id) -> dict | None:
        """The subscription `subscription_id` as Stripe holds it now (see `_read_back`)."""
        return _read_back("subscription", "sub_", subscription_id,
                          lambda: self.client.v1.subscriptions.retrieve(subscription_id))

    def _checkout_completed(self, session: dict, told: dict) -> str:
        """Apply a completed checkout: link the customer to the user, and for a paid credit pack grant the
        pack's credits once. `session` is what Stripe's API returned, the only thing trusted; `told` is
        the event's copy, which must name the same user (else someone edited it, and nothing happens)."""
        session_id = session.get("id", "")
        user = _user(session.get("client_reference_id"))
        if user is None:
            logger.warning("stripe: checkout %s names no known user", session_id)
            return "unknown user"
        if told.get("client_reference_id") != session.get("client_reference_id"):
            logger.warning("stripe: an event for checkout %s names user %r but the session is user %s's; nothing "
                           "done", session_id, told.get("client_reference_id"), user.id)
            return "wrong user"
        if session.get("customer") and user.stripe_customer != session["customer"]:
            User.update(stripe_customer=session["customer"]).where(User.id == user.id).execute()
        if session.get("mode") != "payment":
            return "customer linked"
        if session.get("payment_status") not in PAID:
            return "not paid yet"
        amount = self._credits_sold(session)
        if amount is None:
            return "nothing to grant"
        if not credits.grant(user, amount, f"stripe:{session_id}", note=f"bought {amount:g} credits"):
            return "already granted"
        logger.info("stripe: granted %s credits to user %s (checkout %s)", amount, user.id, session_id)
        return "granted"

    def _credits_sold(self, session: dict) -> float | None:
        """The credits a paid session bought: for each line item, the credits of the pack whose `price_id`
        is the item's price, times its quantity. None (logged, nothing granted; the payment is kept in
        Stripe for an admin to settle by hand) when any item is a price no pack has, a quantity is not a
        positive whole number, or the sum is not finite and positive."""
        session_id = session.get("id", "")
        items = session.get("line_items") or {}
        if items.get("has_more") or not items.get("data"):
            logger.warning("stripe: checkout %s has %s line items; a pack sells one; nothing granted", session_id,
                           "more than " + str(len(items.get("data") or [])) if items.get("has_more") else "no")
            return None
        total = 0.0
        for item in items["data"]:
            price = (item.get("price") or {}).get("id", "")
            pack, quantity = self.tiers.pack_for_price(price), item.get("quantity")
            if pack is None:
                logger.warning("stripe: checkout %s sold price %r, which no pack in tiers.toml has; nothing granted",
                               session_id, price)
                return None
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                logger.warning("stripe: checkout %s sold pack %s in quantity %r; nothing granted", session_id,
                               pack.id, quantity)
                return None
            if _number(pack.credits) <= 0:
                logger.warning("stripe: pack %s sells %r credits; nothing granted for checkout %s (give it a "
                               "positive number in tiers.toml)", pack.id, pack.credits, session_id)
                return None
            total += _number(pack.credits) * quantity
        if not (math.isfinite(total) and total > 0):
            logger.warning("stripe: checkout %s adds up to %r credits; nothing granted (check the packs' credits in "
                           "tiers.toml)", session_id, total)
            return None
        return total

    def _subscription_changed(self, subscription: dict, created: int, event_id: str) -> str:
        """Put the user of `subscription` (what Stripe's API returned, the only thing trusted) on the tier its
        price sells while it is live, on the default tier when it is not (canceled, unpaid...).

        Its user is the one whose `stripe_customer` is its customer; failing that (the first event, before
        the checkout linked the customer) the user its metadata's `user_id` names, which our checkout set
        (`subscription_data`) and a customer cannot edit, and only while that user has no other customer
        linked. Its customer is then linked to that user.

        The state applied is the subscription's current one, so a re-delivered event can no longer bring
        back a plan that has ended since. Events are still applied in Stripe's `created` order per user
        (one older than the last applied, or the same one again, changes nothing), for what reading the
        state does not settle: a user with two live subscriptions (a new plan bought before the old one
        ended) stays on the one whose event came last, and an older event that read Stripe before a newer
        one was applied does not write that reading over it. Events created in the same second are applied
        as they come (Stripe's times are whole seconds)."""
        subscription_id, customer = subscription.get("id", ""), subscription.get("customer") or ""
        user = User.get_or_none(User.stripe_customer == customer) if customer else None
        if user is None:
            user = _user((subscription.get("metadata") or {}).get("user_id"))
            if user is None:
                logger.warning("stripe: subscription %s is for customer %r, whom no user has; nothing changed",
                               subscription_id, customer)
                return "unknown customer"
            if user.stripe_customer and user.stripe_customer != customer:
                logger.warning("stripe: subscription %s names user %s but is for customer %r, and the user is "
                               "customer %r; nothing changed (link the right customer by hand)", subscription_id,
                               user.id, customer, user.stripe_customer)
                return "wrong user"
            if customer:
                User.update(stripe_customer=customer).where(User.id == user.id).execute()
        # Lock the user's row (a no-op UPDATE; SQLite's IMMEDIATE transaction holds the whole database)
        # and read it again, so two deliveries for one user are ordered one after the other.
        User.update(stripe_event_id=User.stripe_event_id).where(User.id == user.id).execute()
        user = User.get_by_id(user.id)
        if created < user.stripe_event_created or (event_id and event_id == user.stripe_event_id):
            logger.info("stripe: stale event %s (created %s) for user %s: event %s (created %s) was applied after "
                        "it; ignored", event_id, created, user.id, user.stripe_event_id, user.stripe_event_created)
            return "stale event"
        status = subscription.get("status")
        if status == NOT_STARTED:
            return "not started"
        live = status in LIVE_SUBSCRIPTION
        if not live and user.stripe_subscription not in ("", subscription_id):
            return "not the current subscription"      # an older one ending leaves the newer one's tier
        tier = self.tiers.default
        if live:
            items = (subscription.get("items") or {}).get("data") or []
            prices = [(item.get("price") or {}).get("id", "") for item in items]
            tier = next((t for t in map(self.tiers.tier_for_price, prices) if t is not None), None)
            if tier is None:
                return "unknown price"
        User.update(stripe_subscription=subscription_id if live else "", stripe_event_created=created,
                    stripe_event_id=event_id).where(User.id == user.id).execute()
        if user.tier != tier.name:
            User.update(tier=tier.name).where(User.id == user.id).execute()
            audit.record(None, "set_tier", user, before=user.tier, after=tier.name, source="stripe",
                         subscription=subscription_id)
        logger.info("stripe: user %s on tier %s (subscription %s %s, event %s)", user.id, tier.name, subscription_id,
                    status, event_id)
        return f"tier {tier.name}"


def _signed_at(header: str) -> int:
    """The `t=` timestamp of a Stripe-Signature header that construct_event accepted (the first one, as it reads)."""
    return int(next(part.split("=", 2)[1] for part in header.split(",") if part.split("=", 2)[0] == "t"))


def _number(value) -> float:
    """`value` as a number of credits; 0 for anything that is not a finite one (so a bad pack grants nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _read_back(what: str, prefix: str, object_id, retrieve: Callable[[], stripe.StripeObject]) -> dict | None:
    """Stripe's own copy of the `what` an event names by `object_id` (`retrieve` fetches it); None when
    the id is not one of Stripe's `prefix` ids or Stripe has no such object: the event was forged, and
    nothing changes. Raises StripeUnavailable when Stripe does not answer, so the webhook says 503 and
    Stripe delivers the event again."""
    if not isinstance(object_id, str) or not object_id.startswith(prefix):
        logger.warning("stripe: a %s event names no %s id (%r); nothing changed", what, what, object_id)
        return None
    try:
        return retrieve().to_dict()
    except stripe.InvalidRequestError as e:
        logger.warning("stripe: %s %s is not one Stripe has (%s); nothing changed", what, object_id, e)
        return None
    except stripe.StripeError as e:
        logger.warning("stripe: could not read %s %s back from Stripe: %s", what, object_id, e)
        raise StripeUnavailable(f"Stripe did not answer for {what} {object_id}: {e}") from e


def _user(user_id) -> User | None:
    try:
        return User.get_or_none(User.id == int(user_id))
    except (TypeError, ValueError):
        return None

