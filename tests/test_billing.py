"""Stripe billing: Checkout Sessions for credit packs (against the Stripe stand-in), and the webhook over
HTTP with events signed exactly as Stripe signs them: credits granted once however often an event comes
and only as our price table prices what Stripe says was paid (never what the event's body says: issue
11), forged, tampered, unsigned, stale and future-dated events refused without changing anything, and
subscription events setting the tier from the subscription as Stripe holds it (never as the event says),
in the order Stripe created them."""
import hashlib
import hmac
import json
import time
import urllib.parse
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


def event(kind: str, obj: dict, created: int | None = None) -> str:
    """A Stripe event of type `kind` about `obj`, created at `created` (Unix seconds; default now)."""
    created = int(time.time()) if created is None else created
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind, "created": created,
                       "data": {"object": obj}})


def deliver(app, payload: str, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(app.url + "webhooks/stripe", content=payload.encode(), headers=headers, timeout=30)


def checkout(app, fake_stripe, user, payment_status: str = "paid", **fields) -> dict:
    """A Checkout Session for pack "small" opened by `user` through the app and completed on the fake Stripe
    with `payment_status` (and any other `fields`); the session as Stripe holds it."""
    url = app.account.checkout(user, "small", app.url)
    return fake_stripe.complete(url.rsplit("/", 1)[1], payment_status=payment_status, **fields)


def told(session: dict, **changes) -> dict:
    """`session` as an event's body carries it (events never include line items), with `changes`."""
    return {k: v for k, v in session.items() if k != "line_items"} | changes


def forged_checkout(user, session_id: str, credits: str = "1000000") -> dict:
    """A paid checkout as someone holding the webhook secret would write it, for a session Stripe never made."""
    return {"id": session_id, "object": "checkout.session", "mode": "payment", "payment_status": "paid",
            "status": "complete", "client_reference_id": str(user.id),
            "metadata": {"credits": credits, "pack": "small", "user_id": str(user.id)}}


def subscribed(fake_stripe, user, price: str = "price_pro", customer: str = "", status: str = "active") -> dict:
    """A subscription to `price` that Stripe holds, started for `user` as our checkout starts one (its
    metadata names the user), by `customer` (a new one by default), with `status`."""
    return fake_stripe.subscribe(customer or f"cus_{uuid.uuid4().hex[:14]}", price, metadata={"user_id": str(user.id)},
                                 status=status)


def ledger(user) -> list:
    from storage.models import CreditEntry

    return list(CreditEntry.select().where(CreditEntry.user == user.id))


def test_buy_credits_opens_a_checkout_session_for_the_pack(accounts_app, fake_stripe, make_user):
    user, _ = make_user(api_key=False)
    url = accounts_app.account.checkout(user, "small", accounts_app.url)
    session = fake_stripe.sessions[-1]
    assert url == session["url"] and url.startswith("https://checkout.stripe.test/cs_test_")
    assert session["mode"] == "payment" and session["client_reference_id"] == str(user.id)
    assert session["metadata"]["credits"] == "100" and session["payment_status"] == "unpaid"
    [item] = session["line_items"]["data"]
    assert (item["price"]["id"], item["quantity"]) == ("price_small", 1)
    assert session["success_url"].startswith(accounts_app.url)
    assert fake_stripe.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"

    made = len(fake_stripe.sessions)
    with pytest.raises(AtelierError, match="Unknown credit pack 'huge'") as refused:
        accounts_app.account.checkout(user, "huge", accounts_app.url)
    assert refused.value.code == "unknown_pack" and len(fake_stripe.sessions) == made


def test_a_completed_checkout_grants_its_credits_exactly_once(accounts_app, fake_stripe, make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = checkout(accounts_app, fake_stripe, user)
    session_id = session["id"]
    payload = event("checkout.session.completed", told(session))
    for _ in range(2):                                     # Stripe may deliver an event twice
        response = deliver(accounts_app, payload, signed(payload))
        assert response.status_code == 200
    asked = fake_stripe.requests[-1]                       # the session was read back from Stripe, line items too
    assert asked["headers"]["authorization"] == f"Bearer {SECRET_KEY}"
    assert urllib.parse.parse_qsl(asked["query"]) == [("expand[0]", "line_items")]
    again = event("checkout.session.completed", told(session))     # new event, same session
    assert deliver(accounts_app, again, signed(again)).json()["result"] == "already granted"

    assert credits.balance(user) == 110
    grants = [e for e in ledger(user) if e.key == f"stripe:{session_id}"]
    assert len(grants) == 1 and grants[0].kind == "grant" and grants[0].amount == 100


def test_forged_tampered_unsigned_and_stale_webhooks_are_refused_and_change_nothing(accounts_app, fake_stripe,
                                                                                     make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    payload = event("checkout.session.completed", told(checkout(accounts_app, fake_stripe, user)))
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


def test_a_signature_dated_in_the_future_is_refused(accounts_app, fake_stripe, make_user):
    """construct_event checks only that a signature is not too old; one dated ahead (a stolen secret
    signing events to replay later) is refused beyond 30 s of clock skew, and a few seconds are fine."""
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    payload = event("checkout.session.completed", told(checkout(accounts_app, fake_stripe, user)))
    entries = len(ledger(user))
    for ahead in (3600, 60):
        response = deliver(accounts_app, payload, signed(payload, at=int(time.time()) + ahead))
        assert response.status_code == 400, ahead
        assert credits.balance(user) == 10 and len(ledger(user)) == entries, ahead
    response = deliver(accounts_app, payload, signed(payload, at=int(time.time()) + 5))
    assert (response.status_code, response.json()["result"]) == (200, "granted")
    assert credits.balance(user) == 110


def test_a_forged_checkout_for_a_session_stripe_does_not_have_grants_nothing(accounts_app, fake_stripe, make_user):
    """Issue 11: an event signed with a stolen webhook secret, naming a made-up session and 1,000,000 credits."""
    from auth import credits

    user, _ = make_user(balance=5, api_key=False)
    session_id = f"cs_test_{uuid.uuid4().hex}"
    payload = event("checkout.session.completed", forged_checkout(user, session_id))
    response = deliver(accounts_app, payload, signed(payload))
    assert (response.status_code, response.json()["result"]) == (200, "unknown session")
    assert fake_stripe.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"   # Stripe was asked
    assert credits.balance(user) == 5 and not [e for e in ledger(user) if e.key.startswith("stripe:")]


def test_the_credits_come_from_the_price_table_not_the_event(accounts_app, fake_stripe, make_user):
    """A genuine paid session for pack "small", whose event says 1,000,000 credits: 100 are granted, as
    tiers.toml prices "price_small"; and the same session's event rewritten to name someone else, or
    saying "paid" while Stripe says unpaid, grants nothing to anybody."""
    from auth import credits

    user, _ = make_user(balance=5, api_key=False)
    thief, _ = make_user(balance=5, api_key=False)
    session = checkout(accounts_app, fake_stripe, user, payment_status="unpaid")
    lying = event("checkout.session.completed", told(session, payment_status="paid",
                                                    metadata={"credits": "1000000", "pack": "small"}))
    assert deliver(accounts_app, lying, signed(lying)).json()["result"] == "not paid yet"

    fake_stripe.complete(session["id"])
    stolen = event("checkout.session.completed", told(session, client_reference_id=str(thief.id)))
    assert deliver(accounts_app, stolen, signed(stolen)).json()["result"] == "wrong user"
    assert credits.balance(user) == 5 and credits.balance(thief) == 5

    inflated = event("checkout.session.completed", told(session, metadata={"credits": "1000000", "pack": "small"}))
    assert deliver(accounts_app, inflated, signed(inflated)).json()["result"] == "granted"
    assert credits.balance(user) == 105 and credits.balance(thief) == 5
    [grant] = [e for e in ledger(user) if e.key == f"stripe:{session['id']}"]
    assert grant.amount == 100


@pytest.mark.parametrize(("edit", "result", "granted"), [
    ({"quantity": 3}, "granted", 300),
    ({"price": {"id": "price_unknown", "object": "price"}}, "nothing to grant", 0),
    ({"quantity": 0}, "nothing to grant", 0),
    ({"quantity": -2}, "nothing to grant", 0),
])
def test_the_line_item_decides_what_is_granted(accounts_app, fake_stripe, make_user, edit, result, granted):
    """Stripe's record of what was sold: each unit of a pack's price grants the pack's credits; a price no
    pack has, or a quantity that is not a positive whole number, grants nothing."""
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = checkout(accounts_app, fake_stripe, user)
    session["line_items"]["data"][0].update(edit)
    payload = event("checkout.session.completed", told(session))
    response = deliver(accounts_app, payload, signed(payload))
    assert (response.status_code, response.json()["result"]) == (200, result)
    assert credits.balance(user) == 10 + granted


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), 0, -100])
def test_a_pack_without_a_finite_positive_number_of_credits_grants_nothing(accounts_app, fake_stripe, make_user,
                                                                           amount):
    """The loader refuses such a pack (next test); a Billing given one anyway still grants nothing."""
    from auth import credits
    from auth.billing import Billing
    from configs.tiers import CreditPack, Tier, Tiers

    tiers = Tiers(tiers=(Tier(name="free"),), packs=(CreditPack(id="small", credits=amount, price_id="price_small"),))
    billing = Billing(SECRET_KEY, WEBHOOK_SECRET, tiers, api_base=fake_stripe.url)
    user, _ = make_user(balance=10, api_key=False)
    payload = event("checkout.session.completed", told(checkout(accounts_app, fake_stripe, user)))
    assert billing.handle_webhook(payload.encode(), signed(payload)) == "nothing to grant"
    assert credits.balance(user) == 10


@pytest.mark.parametrize("credits", ["nan", "inf", "-inf", "0", "-5", '"100"', "true"])
def test_the_tiers_file_refuses_a_pack_without_a_finite_positive_number_of_credits(tmp_path, credits):
    from configs.tiers import load_tiers

    path = tmp_path / "tiers.toml"
    path.write_text(f'[tier.free]\n\n[[pack]]\nid = "small"\ncredits = {credits}\nprice_id = "price_small"\n')
    with pytest.raises(ValueError, match=r"\[\[pack\]\] id = 'small': credits = .*give the positive number"):
        load_tiers(path)


def test_the_tiers_file_refuses_two_packs_for_one_price(tmp_path):
    from configs.tiers import load_tiers

    path = tmp_path / "tiers.toml"
    path.write_text('[tier.free]\n\n[[pack]]\nid = "small"\ncredits = 100\nprice_id = "price_x"\n\n'
                    '[[pack]]\nid = "large"\ncredits = 1000\nprice_id = "price_x"\n')
    with pytest.raises(ValueError, match=r"more than one \[\[pack\]\] has price_id \['price_x'\]"):
        load_tiers(path)
    path.write_text('[tier.free]\n\n[[pack]]\nid = "small"\ncredits = 100\nprice_id = "price_x"\n')
    assert load_tiers(path).pack_for_price("price_x").credits == 100


def test_a_checkout_is_applied_later_when_stripe_does_not_answer(accounts_app, fake_stripe, make_user):
    """Stripe down while an event is checked: 503 and nothing changes, so Stripe delivers it again; then granted."""
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    payload = event("checkout.session.completed", told(checkout(accounts_app, fake_stripe, user)))
    fake_stripe.down = True
    try:
        response = deliver(accounts_app, payload, signed(payload))
    finally:
        fake_stripe.down = False
    assert response.status_code == 503 and credits.balance(user) == 10
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "granted"
    assert credits.balance(user) == 110


def test_subscription_events_set_the_tier_and_are_audited(accounts_app, fake_stripe, make_user):
    from storage.models import AuditEvent, User

    user, _ = make_user(api_key=False)
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    url = accounts_app.account.subscribe(user, "pro", accounts_app.url)
    session = fake_stripe.complete(url.rsplit("/", 1)[1], customer=customer)
    assert session["mode"] == "subscription"
    subscription = fake_stripe.subscriptions[session["subscription"]]     # the checkout started it
    assert (subscription["customer"], subscription["status"]) == (customer, "active")
    assert subscription["metadata"] == {"user_id": str(user.id)}
    linked = event("checkout.session.completed", told(session))
    assert deliver(accounts_app, linked, signed(linked)).json()["result"] == "customer linked"
    assert User.get_by_id(user.id).stripe_customer == customer

    created = event("customer.subscription.created", subscription)
    assert deliver(accounts_app, created, signed(created)).json()["result"] == "tier pro"
    assert fake_stripe.requests[-1]["path"] == f"/v1/subscriptions/{subscription['id']}"   # read back from Stripe
    assert User.get_by_id(user.id).tier == "pro"
    change = AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier")).get()
    details = json.loads(change.details)
    assert (details["before"], details["after"], details["source"]) == ("free", "pro", "stripe")

    fake_stripe.cancel_subscription(subscription["id"])
    deleted = event("customer.subscription.deleted", subscription)
    assert deliver(accounts_app, deleted, signed(deleted)).json()["result"] == "tier free"
    assert User.get_by_id(user.id).tier == "free"
    assert AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier")).count() == 2


def test_an_old_subscription_ending_keeps_the_newer_ones_tier(accounts_app, fake_stripe, make_user):
    from storage.models import User

    user, _ = make_user(api_key=False)
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    old, new = (subscribed(fake_stripe, user, price, customer=customer) for price in ("price_standard", "price_pro"))
    for kind, subscription in (("created", old), ("created", new), ("deleted", old)):
        if kind == "deleted":
            fake_stripe.cancel_subscription(subscription["id"])
        payload = event(f"customer.subscription.{kind}", subscription)
        assert deliver(accounts_app, payload, signed(payload)).status_code == 200
    assert User.get_by_id(user.id).tier == "pro"
    fake_stripe.cancel_subscription(new["id"])
    ended = event("customer.subscription.deleted", new)
    assert deliver(accounts_app, ended, signed(ended)).json()["result"] == "tier free"
    assert User.get_by_id(user.id).tier == "free"


def test_a_subscription_for_an_unknown_customer_or_price_changes_nothing(accounts_app, fake_stripe, make_user):
    """A subscription whose customer no user has, one for a price no tier sells, and one whose metadata
    names a user who is already another customer: nobody's tier changes."""
    from storage.models import User

    user, _ = make_user(api_key=False)
    stranger = fake_stripe.subscribe("cus_nobody", "price_pro")
    payload = event("customer.subscription.created", stranger)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "unknown customer"

    odd_price = subscribed(fake_stripe, user, "price_unknown")
    payload = event("customer.subscription.updated", odd_price)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "unknown price"
    assert User.get_by_id(user.id).tier == "free"

    linked, _ = make_user(api_key=False)
    User.update(stripe_customer=f"cus_{uuid.uuid4().hex[:14]}").where(User.id == linked.id).execute()
    elsewhere = subscribed(fake_stripe, linked)          # another customer's subscription naming `linked`
    payload = event("customer.subscription.created", elsewhere)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "wrong user"
    assert User.get_by_id(linked.id).tier == "free"


def test_a_delayed_payment_grants_its_credits_when_it_succeeds(accounts_app, fake_stripe, make_user):
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = checkout(accounts_app, fake_stripe, user, payment_status="unpaid")
    completed = event("checkout.session.completed", told(session))
    assert deliver(accounts_app, completed, signed(completed)).json()["result"] == "not paid yet"
    assert credits.balance(user) == 10

    fake_stripe.complete(session["id"])                   # the bank debit went through
    succeeded = event("checkout.session.async_payment_succeeded", told(session))
    assert deliver(accounts_app, succeeded, signed(succeeded)).json()["result"] == "granted"
    assert deliver(accounts_app, succeeded, signed(succeeded)).json()["result"] == "already granted"
    assert credits.balance(user) == 110


@pytest.mark.parametrize("amount", ["lots", "nan", "-5", None])
def test_the_metadata_credits_are_never_read(accounts_app, fake_stripe, make_user, amount):
    """Metadata the customer's browser can see and a key holder can write: whatever it says, the pack's 100."""
    from auth import credits

    user, _ = make_user(balance=10, api_key=False)
    session = checkout(accounts_app, fake_stripe, user)
    session["metadata"] = {"credits": amount}             # even Stripe's own copy
    payload = event("checkout.session.completed", told(session))
    response = deliver(accounts_app, payload, signed(payload))
    assert (response.status_code, response.json()["result"]) == (200, "granted")
    assert credits.balance(user) == 110


def test_a_stale_subscription_event_does_not_restore_a_cancelled_plan(accounts_app, fake_stripe, make_user):
    """Issue 11: updated (pro) -> deleted (free) -> the first event delivered again -> still free. Events
    apply in Stripe's `created` order, whatever order they arrive in, and a canceled subscription's own
    state never puts a tier back."""
    from storage.models import AuditEvent, User

    user, _ = make_user(api_key=False)
    subscription = subscribed(fake_stripe, user)
    now = int(time.time())
    updated = event("customer.subscription.updated", subscription, created=now - 60)
    assert deliver(accounts_app, updated, signed(updated)).json()["result"] == "tier pro"
    fake_stripe.cancel_subscription(subscription["id"])
    deleted = event("customer.subscription.deleted", subscription, created=now - 30)
    assert deliver(accounts_app, deleted, signed(deleted)).json()["result"] == "tier free"
    response = deliver(accounts_app, updated, signed(updated))                  # Stripe retries the first one
    assert (response.status_code, response.json()["result"]) == (200, "stale event")
    assert User.get_by_id(user.id).tier == "free"

    canceled = event("customer.subscription.updated", subscription, created=now)
    assert deliver(accounts_app, canceled, signed(canceled)).json()["result"] == "tier free"
    undated = json.dumps(json.loads(event("customer.subscription.updated", subscription)) | {"created": None})
    assert deliver(accounts_app, undated, signed(undated)).json()["result"] == "no event time"
    assert User.get_by_id(user.id).tier == "free"
    changes = AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier"))
    assert [json.loads(c.details)["after"] for c in changes.order_by(AuditEvent.id)] == ["pro", "free"]

    late, _ = make_user(api_key=False)                   # the same two events arriving in the wrong order
    other = subscribed(fake_stripe, late)
    updated = event("customer.subscription.updated", other, created=now - 60)
    fake_stripe.cancel_subscription(other["id"])
    deleted = event("customer.subscription.deleted", other, created=now - 30)
    assert deliver(accounts_app, deleted, signed(deleted)).json()["result"] == "tier free"
    assert deliver(accounts_app, updated, signed(updated)).json()["result"] == "stale event"
    assert User.get_by_id(late.id).tier == "free"


def test_a_cancelled_plan_stays_cancelled_when_an_older_event_comes_again_in_the_same_second(accounts_app,
                                                                                             fake_stripe, make_user):
    """Issue 11, where the `created` order cannot tell: updated (pro) and deleted (free) created in the same
    second, then the first delivered again. It is applied, but with the subscription as Stripe holds it
    now (canceled), so the user stays free."""
    from storage.models import AuditEvent, User

    user, _ = make_user(api_key=False)
    subscription = subscribed(fake_stripe, user)
    now = int(time.time())
    updated = event("customer.subscription.updated", subscription, created=now)
    assert deliver(accounts_app, updated, signed(updated)).json()["result"] == "tier pro"
    fake_stripe.cancel_subscription(subscription["id"])
    deleted = event("customer.subscription.deleted", subscription, created=now)
    assert deliver(accounts_app, deleted, signed(deleted)).json()["result"] == "tier free"
    response = deliver(accounts_app, updated, signed(updated))       # its body still says active and pro
    assert (response.status_code, response.json()["result"]) == (200, "tier free")
    assert User.get_by_id(user.id).tier == "free"
    changes = AuditEvent.select().where((AuditEvent.target == user.id) & (AuditEvent.action == "set_tier"))
    assert [json.loads(c.details)["after"] for c in changes.order_by(AuditEvent.id)] == ["pro", "free"]


def test_a_forged_subscription_event_for_a_subscription_stripe_does_not_have_changes_nothing(accounts_app,
                                                                                             fake_stripe, make_user):
    """Issue 11: a `customer.subscription.created` signed with a stolen webhook secret, naming the signer's
    own user and the pro price, for a subscription nobody paid for."""
    from storage.models import User

    user, _ = make_user(api_key=False)
    forged = {"id": f"sub_{uuid.uuid4().hex[:24]}", "object": "subscription", "customer": None, "status": "active",
              "items": {"data": [{"price": {"id": "price_pro"}}]}, "metadata": {"user_id": str(user.id)}}
    payload = event("customer.subscription.created", forged)
    response = deliver(accounts_app, payload, signed(payload))
    assert (response.status_code, response.json()["result"]) == (200, "unknown subscription")
    assert fake_stripe.requests[-1]["path"] == f"/v1/subscriptions/{forged['id']}"      # Stripe was asked
    no_id = event("customer.subscription.created", forged | {"id": None})
    assert deliver(accounts_app, no_id, signed(no_id)).json()["result"] == "unknown subscription"
    after = User.get_by_id(user.id)
    assert (after.tier, after.stripe_customer, after.stripe_subscription, after.stripe_event_id) == ("free", "", "", "")


def test_a_forged_subscription_event_naming_another_user_changes_nothing_for_them(accounts_app, fake_stripe,
                                                                                  make_user):
    """Real subscriptions, sent by someone holding the webhook secret as someone else's: the owner's pro
    plan named for the signer, and the signer's own standard plan sent as the owner's, ended. Stripe's copy
    decides whose it is and what it is, so each user keeps what they pay for."""
    from storage.models import AuditEvent, User

    owner, _ = make_user(api_key=False)
    signer, _ = make_user(api_key=False)
    real = subscribed(fake_stripe, owner)
    genuine = event("customer.subscription.created", real)
    assert deliver(accounts_app, genuine, signed(genuine)).json()["result"] == "tier pro"

    for customer in (None, f"cus_{uuid.uuid4().hex[:14]}"):
        forged = event("customer.subscription.updated", real | {"customer": customer,
                                                               "metadata": {"user_id": str(signer.id)}})
        assert deliver(accounts_app, forged, signed(forged)).json()["result"] == "tier pro"     # the owner's, again
    after = User.get_by_id(signer.id)
    assert (after.tier, after.stripe_customer, after.stripe_subscription) == ("free", "", "")

    own = subscribed(fake_stripe, signer, "price_standard")
    forged = event("customer.subscription.deleted", own | {"customer": real["customer"], "status": "canceled",
                                                          "metadata": {"user_id": str(owner.id)}})
    assert deliver(accounts_app, forged, signed(forged)).json()["result"] == "tier standard"   # the signer's own
    after = User.get_by_id(owner.id)
    assert (after.tier, after.stripe_customer, after.stripe_subscription) == ("pro", real["customer"], real["id"])
    changes = AuditEvent.select().where((AuditEvent.target == owner.id) & (AuditEvent.action == "set_tier"))
    assert [json.loads(c.details)["after"] for c in changes] == ["pro"]


def test_a_subscription_event_is_applied_later_when_stripe_does_not_answer(accounts_app, fake_stripe, make_user):
    """Stripe down while a subscription event is checked: 503 and nothing changes, so Stripe delivers it
    again; then applied."""
    from storage.models import User

    user, _ = make_user(api_key=False)
    payload = event("customer.subscription.created", subscribed(fake_stripe, user))
    fake_stripe.down = True
    try:
        response = deliver(accounts_app, payload, signed(payload))
    finally:
        fake_stripe.down = False
    assert response.status_code == 503
    after = User.get_by_id(user.id)
    assert (after.tier, after.stripe_customer, after.stripe_subscription, after.stripe_event_id) == ("free", "", "", "")
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "tier pro"
    assert User.get_by_id(user.id).tier == "pro"


def test_a_subscription_waiting_for_its_first_payment_keeps_the_current_tier(accounts_app, fake_stripe, make_user):
    from storage.models import User

    user, _ = make_user(tier="standard", api_key=False)
    waiting = subscribed(fake_stripe, user, status="incomplete")
    payload = event("customer.subscription.created", waiting)
    assert deliver(accounts_app, payload, signed(payload)).json()["result"] == "not started"
    assert User.get_by_id(user.id).tier == "standard"
