"""A stand-in for Stripe's API on 127.0.0.1, for what Atelier calls: creating Checkout Sessions and
reading them back.

Stripe's own mock server is not installable here and localstripe has no Checkout, so this answers
POST /v1/checkout/sessions and GET /v1/checkout/sessions/{id} (with `expand[]=line_items`) the way
Stripe does (form-encoded or query in, JSON out, 404 `resource_missing` for a session it never made)
and keeps what it was sent. What a customer does on the Checkout page is `complete()`. Webhooks are
not faked: tests sign events with the webhook secret exactly as Stripe does.
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
    API shows only when expanded); a test may edit one to say what Stripe's record says. `requests` holds
    every request's headers and body. `down = True` makes the API answer 500, as Stripe does in an outage.
    """

    def __init__(self):
        import uvicorn
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        self.sessions: list[dict] = []
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
                       "line_items": _line_items(session_id, params.get("line_items", {}))}
            self.sessions.append(session)
            return self._shown(session, expand=())

        @app.get("/v1/checkout/sessions/{session_id}")
        async def retrieve_session(session_id: str, request: Request):
            self.requests.append({"headers": dict(request.headers), "query": request.url.query})
            if (answer := refused(request)) is not None:
                return answer
            session = self.session(session_id)
            if session is None:
                return JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                               "param": "session",
                                               "message": f"No such checkout.session: '{session_id}'"}}, 404)
            expand = _nest(urllib.parse.parse_qsl(request.url.query)).get("expand", {}).values()
            return self._shown(session, expand)

        from tests.conftest import free_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @staticmethod
    def _shown(session: dict, expand) -> dict:
        """`session` as the API returns it: `line_items` only when the request expands it."""
        return {k: v for k, v in session.items() if k != "line_items" or "line_items" in expand}

    def session(self, session_id: str) -> dict | None:
        """The session with id `session_id` as Stripe holds it; None if it was never created."""
        return next((s for s in self.sessions if s["id"] == session_id), None)

    def complete(self, session_id: str, payment_status: str = "paid", **fields) -> dict:
        """What the customer paying on the Checkout page does to session `session_id`: it becomes
        `complete` with `payment_status` ("unpaid" for a bank debit still on its way), and any other
        `fields` Stripe fills in then (`customer`, `subscription`). Returns the session."""
        session = self.session(session_id)
        session.update(status="complete", payment_status=payment_status, **fields)
        return session

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
