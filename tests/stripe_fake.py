"""A stand-in for Stripe's API on 127.0.0.1, for what Atelier calls: creating Checkout Sessions and
reading them and subscriptions back.

Stripe's own mock server is not installable here and localstripe has no Checkout, so this answers
POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id} (with `expand[]=line_items`) and
GET /v1/subscriptions/{id} the way Stripe does (form-encoded or query in, JSON out, 404
`resource_missing` for an object it never made) and keeps what it was sent. What a customer does on the
Checkout page is `complete()` (which starts the subscription of a subscription-mode session); what
happens to a subscription later is `subscribe()`, `change_subscription()` and `cancel_subscription()`.
Webhooks are not faked: tests sign events with the webhook secret exactly as Stripe does.
"""

import secrets
import threading
import time
import urllib.parse

WEBHOOK_SECRET = "whsec_atelier_test"
SECRET_KEY = "sk_test_atelier"


def _nest(form: list[tuple[str, str]]) -> dict:
    """Stripe's bracket notation (metadata[credits]=100, line_items[0][price]=p) back into a dict."""
    data: dict = {}
    for key, value in form:
        parts = key.replace("]", "").split("[")
        node = data
        for part, following in zip(parts, parts[1:]):
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def _line_items(session_id: str, sent: dict) -> dict:
    """The `line_items` list Stripe keeps for a session from the `line_items[i][price|quantity]` it was sent."""
    data = [{"id": "li_" + secrets.token_hex(12), "object": "item", "description": item.get("price", ""),
             "price": {"id": item.get("price", ""), "object": "price"}, "quantity": int(item.get("quantity", 1))}
            for _, item in sorted(sent.items(), key=lambda pair: int(pair[0]))]
    return {"object": "list", "data": data, "has_more": False, "url": f"/v1/checkout/sessions/{session_id}/line_items"}


class FakeStripe:
    """Serves the fake on a free port.

    `sessions` holds every Checkout Session created, as Stripe holds it (`line_items` included, which the
    API shows only when expanded, and the `subscription_data` it was sent, which the API never shows); a
    test may edit one to say what Stripe's record says. `subscriptions` holds every subscription by id.
    `requests` holds every request's headers and body (or query, and path). `down = True` makes the API
    answer 500, as Stripe does in an outage.
    """

    def __init__(self):
        import uvicorn
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        self.sessions: list[dict] = []
        self.subscriptions: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.down = False
        app = FastAPI()

        def refused(request: Request):
            """Stripe's answer when it will not serve `request` (bad key, outage), or None."""
            if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
                return JSONResponse({"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}, 401)
            if self.down:
                return JSONResponse({"error": {"type": "api_error", "message": "Stripe is down (the fake's `down`)."}},
                                    500)
            return None

        def missing(kind: str, object_id: str, param: str):
            """Stripe's answer for an object id it never made."""
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                           "param": param, "message": f"No such {kind}: '{object_id}'"}}, 404)

        @app.post("/v1/checkout/sessions")
        async def create_session(request: Request):
            body = (await request.body()).decode()
            self.requests.append({"headers": dict(request.headers), "body": body})
            if (answer := refused(request)) is not None:
                return answer
            params = _nest(urllib.parse.parse_qsl(body))
            session_id = "cs_test_" + secrets.token_hex(12)
            session = {"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.test/{session_id}",
                       "mode": params.get("mode", "payment"), "client_reference_id": params.get("client_reference_id"),
                       "metadata": params.get("metadata", {}), "success_url": params.get("success_url"),
                       "cancel_url": params.get("cancel_url"), "customer": params.get("customer"),
                       "customer_email": params.get("customer_email"), "created": int(time.time()), "status": "open",
                       "payment_status": "unpaid", "subscription": None,
                       "line_items": _line_items(session_id, params.get("line_items", {})),
                       "subscription_data": params.get("subscription_data", {})}
            self.sessions.append(session)
            return self._shown(session, expand=())

        @app.get("/v1/checkout/sessions/{session_id}")
        async def retrieve_session(session_id: str, request: Request):
            self.requests.append({"headers": dict(request.headers), "query": request.url.query})
            if (answer := refused(request)) is not None:
                return answer
            session = self.session(session_id)
            if session is None:
                return missing("checkout.session", session_id, "session")
            expand = _nest(urllib.parse.parse_qsl(request.url.query)).get("expand", {}).values()
            return self._shown(session, expand)

        @app.get("/v1/subscriptions/{subscription_id}")
        async def retrieve_subscription(subscription_id: str, request: Request):
            self.requests.append({"headers": dict(request.headers), "query": request.url.query,
                                  "path": request.url.path})
            if (answer := refused(request)) is not None:
                return answer
            subscription = self.subscriptions.get(subscription_id)
            if subscription is None:
                return missing("subscription", subscription_id, "id")
            return subscription

        from tests.conftest import free_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @staticmethod
    def _shown(session: dict, expand) -> dict:
        """`session` as the API returns it: `line_items` only when the request expands it, never what it was
        sent as `subscription_data`."""
        return {k: v for k, v in session.items()
                if k != "subscription_data" and (k != "line_items" or "line_items" in expand)}

    def session(self, session_id: str) -> dict | None:
        """The session with id `session_id` as Stripe holds it; None if it was never created."""
        return next((s for s in self.sessions if s["id"] == session_id), None)

    def complete(self, session_id: str, payment_status: str = "paid", **fields) -> dict:
        """What the customer paying on the Checkout page does to session `session_id`: it becomes
        `complete` with `payment_status` ("unpaid" for a bank debit still on its way), and any other
        `fields` Stripe fills in then (`customer`). A subscription-mode session also starts its
        subscription (see `subscribe`): for the session's customer (a new one if it names none), its
        line item's price, the `subscription_data[metadata]` it was created with, `active` when paid and
        `incomplete` when not; the session's `subscription` is its id. Returns the session."""
        session = self.session(session_id)
        session.update(status="complete", payment_status=payment_status, **fields)
        if session["mode"] == "subscription" and not session["subscription"]:
            session["customer"] = session["customer"] or "cus_" + secrets.token_hex(7)
            [item] = session["line_items"]["data"]
            subscription = self.subscribe(session["customer"], item["price"]["id"],
                                          metadata=session["subscription_data"].get("metadata", {}),
                                          status="active" if payment_status == "paid" else "incomplete")
            session["subscription"] = subscription["id"]
        return session

    def subscribe(self, customer: str, price: str, metadata: dict | None = None, status: str = "active") -> dict:
        """A subscription as Stripe starts it: `customer` (cus_...) pays `price` (price_...) with
        `status`, carrying `metadata` (Atelier's checkout sets {"user_id": ...}). Returns it as Stripe holds
        it, which is what GET /v1/subscriptions/{id} answers."""
        subscription_id = "sub_" + secrets.token_hex(12)
        self.subscriptions[subscription_id] = {
            "id": subscription_id, "object": "subscription", "customer": customer, "status": status,
            "created": int(time.time()), "metadata": dict(metadata or {}),
            "items": {"object": "list", "data": [], "has_more": False,
                      "url": f"/v1/subscription_items?subscription={subscription_id}"}}
        return self.change_subscription(subscription_id, price=price)

    def change_subscription(self, subscription_id: str, status: str | None = None, price: str | None = None) -> dict:
        """Subscription `subscription_id` moving to `status` (past_due, unpaid, ...) and/or to one item of
        `price` (an upgrade); None leaves that as it is. Returns the subscription."""
        subscription = self.subscriptions[subscription_id]
        if status is not None:
            subscription["status"] = status
        if price is not None:
            subscription["items"]["data"] = [{"id": "si_" + secrets.token_hex(12), "object": "subscription_item",
                                              "price": {"id": price, "object": "price"}, "quantity": 1,
                                              "subscription": subscription_id}]
        return subscription

    def cancel_subscription(self, subscription_id: str) -> dict:
        """What DELETE /v1/subscriptions/{id} does: the subscription ends, and Stripe keeps it (reading it
        back still works) with status `canceled`. Returns the subscription."""
        return self.change_subscription(subscription_id, status="canceled")

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Stripe did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(5)
