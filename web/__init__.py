"""The HTTP surface beside the Gradio app: the routes and pages that browsers, Stripe and a load
balancer call outside Gradio (login, sign-up, logout, guests, share links, the OAuth callback, the
Stripe webhook, /metrics, /healthz, /readyz), and how a process sets up its log handler.

A room of its own because these are neither accounts (`auth/` decides who is calling and keeps the
ledger) nor jobs (`queueing/` runs them and says how ready it is): each route here reads a request,
asks those rooms, and answers HTTP. Arrows point one way: web imports auth, queueing and storage;
none of them imports web. Only the entry points (app.py, and the worker's `main` for its log
handler) import it.

Importing the package loads no engine module, no Stripe and no authlib: the Stripe webhook route is
`web.billing` and the OAuth routes are `web.oauth`, imported only where they are configured.
"""
from web.accounts import install_account_routes
from web.logs import configure_logging
from web.ops import install_ops_routes

__all__ = ["configure_logging", "install_account_routes", "install_ops_routes"]
