"""A stand-in for Stripe's API on 127.0.0.1, for what Atelier calls: creating Checkout Sessions.

Stripe's own mock server is not installable here and localstripe has no Checkout, so this answers
POST /v1/checkout/sessions the way Stripe does (form-encoded in, JSON out) and keeps what it was sent.
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


class FakeStripe:
    """Serves the fake on a free port; `sessions` holds every Checkout Session created."""

    def __init__(self):
        import uvicorn
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        self.sessions: list[dict] = []
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/v1/checkout/sessions")
        async def create_session(request: Request):
            body = (await request.body()).decode()
            self.requests.append({"headers": dict(request.headers), "body": body})
            if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
                return JSONResponse({"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}, 401)
            params = _nest(urllib.parse.parse_qsl(body))
            session_id = "cs_test_" + secrets.token_hex(12)
            session = {"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.test/{session_id}",
                       "mode": params.get("mode", "payment"), "client_reference_id": params.get("client_reference_id"),
                       "metadata": params.get("metadata", {}), "success_url": params.get("success_url"),
                       "cancel_url": params.get("cancel_url"), "line_items": params.get("line_items", {}),
                       "customer": params.get("customer"), "created": int(time.time()), "status": "open"}
            self.sessions.append(session)
            return session

        from tests.conftest import free_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

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
