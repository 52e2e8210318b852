"""Stripe billing: Checkout Sessions for credit packs (against the Stripe stand-in), and the webhook over
HTTP with events signed exactly as Stripe signs them: credits granted once however often an event comes,
forged, tampered, unsigned and stale events refused without changing anything, and subscription events
setting the tier."""
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest

from pipelines.errors import AtelierError
from tests.stripe_fake import SECRET_KEY, WEBHOOK_SECRET


def signed(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send with `payload`."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(kind: str, obj: dict) -> str:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "data": {"object": obj}})


def deliver(app, payload: str, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(app.url + "webhooks/stripe", content=payload.encode(), headers=headers, timeout=30)


def paid_checkout(user, session_id: str, credits: int = 100) -> dict:
    return {"id": session_id, "object": "checkout.session", "mode": "payment", "payment_status": "paid",
            "client_reference_id": str(user.id), "metadata": {"credits": str(credits), "pack": "small"}}


def ledger(user) -> list:
    from storage.models import CreditEntry

    return list(CreditEntry.select().where(CreditEntry.user == user.id))


def test_buy_credits_opens_a_checkout_session_for_the_pack(accounts_app, fake_stripe, make_user):
    user, _ = make_user(api_key=False)
    url = accounts_app.account.checkout(user, "small", accounts_app.url)
    session = fake_stripe.sessions[-1]
    assert url == session["url"] and url.startswith("https://checkout.stripe.test/cs_test_")
    assert session["mode"] == "payment" and session["client_reference_id"] == str(user.id)
    assert session["metadata"]["credits"] == "100"
    assert session["line_items"]["0"] == {"price": "price_small", "quantity": "1"}
    assert session["success_url"].startswith(accounts_app.url)
    assert fake_stripe.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"

    made = len(fake_stripe.sessions)
    with pytest.raises(AtelierError, match="Unknown credit pack 'huge'") as refused:
        accounts_app.account.checkout(user, "huge", accounts_app.url)
    assert refused.value.code == "unknown_pack" and len(fake_stripe.sessions) == made


def test_a_completed_checkout_grants_its_credits_exactly_once(accounts_app, make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session_id = f"cs_test_{uuid.uuid4().hex}"
    payload = event("checkout.session.completed", paid_checkout(user, session_id))
    for _ in range(2):                                     # Stripe may deliver an event twice
        response = deliver(accounts_app, payload, signed(payload))
        assert response.status_code == 200
    again = event("checkout.session.completed", paid_checkout(user, session_id))     # new event, same session
    assert deliver(accounts_app, again, signed(again)).json()["result"] == "already granted"

    assert credits.balance(user) == 110
    grants = [e for e in ledger(user) if e.key == f"stripe:{session_id}"]
    assert len(grants) == 1 and grants[0].kind == "grant" and grants[0].amount == 100


def test_forged_tampered_unsigned_and_stale_webhooks_are_refused_and_change_nothing(accounts_app, make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    payload = event("checkout.session.completed", paid_checkout(user, f"cs_test_{uuid.uuid4().hex}"))
    tampered = payload.replace('"credits": "100"', '"credits": "100000"')
    assert tampered != payload
    attempts = {
        "forged": (payload, signed(payload, secret="whsec_someone_else")),
        "tampered": (tampered, signed(payload)),
        "unsigned": (payload, None),
        "garbled": (payload, "not a signature"),
        "stale": (payload, signed(payload, at=int(time.time()) - 301)),
    }
    entries = len(ledger(user))
    for name, (body, signature) in attempts.items():
        response = deliver(accounts_app, body, signature)
        assert response.status_code == 400, name
        assert credits.balance(user) == 10 and len(ledger(user)) == entries, name


def test_subscription_events_set_the_tier_and_are_audited(accounts_app, make_user):
    from storage.models import AuditEvent, User

    user, _ = make_user(api_key=False)
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    linked = event("checkout.session.completed", {
        "id": f"cs_test_{uuid.uuid4().hex}", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": str(user.id), "customer": customer, "subscription": "sub_1", "metadata": {}})
    assert deliver(accounts_app, linked, signed(linked)).json()["result"] == "customer linked"
    assert User.get_by_id(user.id).stripe_customer == customer

    subscription = {"id": f"sub_{uuid.uuid4().hex[:14]}", "object": "subscription", "customer": customer,
                    "status": "active", "items": {"data": [{"price": {"id": "price_pro"}}]}, "metadata": {}}
    created = event("customer.subscription.created", subscription)
    assert deliver(accounts_app, created, signed(created)).json()["result"] == "tier pro"
    assert User.get_by_id(user.id).tier == "pro"
    change = AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier")).get()
    details = json.loads(change.details)
    assert (details["before"], details["after"], details["source"]) == ("free", "pro", "stripe")

    deleted = event("customer.subscription.deleted", subscription | {"status": "canceled"})
    assert deliver(accounts_app, deleted, signed(deleted)).json()["result"] == "tier free"
    assert User.get_by_id(user.id).tier == "free"
    assert AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier")).count() == 2


def test_an_old_subscription_ending_keeps_the_newer_ones_tier(accounts_app, make_user):
    from storage.models import User

    user, _ = make_user(api_key=False)
    old, new = ({"id": f"sub_{uuid.uuid4().hex[:14]}", "object": "subscription", "customer": None, "status": "active",
                 "items": {"data": [{"price": {"id": price}}]}, "metadata": {"user_id": str(user.id)}}
                for price in ("price_standard", "price_pro"))
    for kind, subscription in (("created", old), ("created", new), ("deleted", old | {"status": "canceled"})):
        payload = event(f"customer.subscription.{kind}", subscription)
        assert deliver(accounts_app, payload, signed(payload)).status_code == 200
    assert User.get_by_id(user.id).tier == "pro"
    ended = event("customer.subscription.deleted", new | {"status": "canceled"})
    assert deliver(accounts_app, ended, signed(ended)).json()["result"] == "tier free"
    assert User.get_by_id(user.id).tier == "free"


def test_a_subscription_for_an_unknown_customer_or_price_changes_nothing(accounts_app, make_user):
    from storage.models import User

    user, _ = make_user(api_key=False)
    stranger = {"id": "sub_x", "object": "subscription", "customer": "cus_nobody", "status": "active",
                "items": {"data": [{"price": {"id": "price_pro"}}]}, "metadata": {}}
    payload = event("customer.subscription.created", stranger)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "unknown customer"

    odd_price = stranger | {"customer": None, "metadata": {"user_id": str(user.id)},
                            "items": {"data": [{"price": {"id": "price_unknown"}}]}}
    payload = event("customer.subscription.updated", odd_price)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "unknown price"
    assert User.get_by_id(user.id).tier == "free"


def test_a_delayed_payment_grants_its_credits_when_it_succeeds(accounts_app, make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = paid_checkout(user, f"cs_test_{uuid.uuid4().hex}") | {"payment_status": "unpaid"}
    completed = event("checkout.session.completed", session)
    assert deliver(accounts_app, completed, signed(completed)).json()["result"] == "not paid yet"
    assert credits.balance(user) == 10

    succeeded = event("checkout.session.async_payment_succeeded", session | {"payment_status": "paid"})
    assert deliver(accounts_app, succeeded, signed(succeeded)).json()["result"] == "granted"
    assert deliver(accounts_app, succeeded, signed(succeeded)).json()["result"] == "already granted"
    assert credits.balance(user) == 110


@pytest.mark.parametrize("amount", ["lots", "nan", "-5", None])
def test_a_checkout_without_a_number_of_credits_grants_nothing(accounts_app, make_user, amount):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = paid_checkout(user, f"cs_test_{uuid.uuid4().hex}") | {"metadata": {"credits": amount}}
    payload = event("checkout.session.completed", session)
    response = deliver(accounts_app, payload, signed(payload))
    assert (response.status_code, response.json()["result"]) == (200, "no credits in metadata")
    assert credits.balance(user) == 10


def test_a_subscription_waiting_for_its_first_payment_keeps_the_current_tier(accounts_app, make_user):
    from storage.models import User

    user, _ = make_user(tier="standard", api_key=False)
    waiting = {"id": "sub_waiting", "object": "subscription", "customer": None, "status": "incomplete",
               "items": {"data": [{"price": {"id": "price_pro"}}]}, "metadata": {"user_id": str(user.id)}}
    payload = event("customer.subscription.created", waiting)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "not started"
    assert User.get_by_id(user.id).tier == "standard"
