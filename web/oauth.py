"""Log in with an OAuth 2 / OpenID Connect provider (authlib's Starlette client).

`GET /login/NAME` sends the browser to the provider (authorization code flow with PKCE, and a nonce
for OpenID Connect); `GET /auth/NAME` takes the code back, checks the ID token against the issuer's
keys, and logs in the account linked to the provider's subject. A first login links the account
with the same email only when the provider says the email is verified; otherwise it makes a new
account (a guest's session becomes that account, keeping what the guest made). Which account a
provider's subject is, and that linking, are `auth.Accounts.oauth_user`'s business; this module is the
HTTP side of the flow. `/login/NAME?next=/path` keeps the local path in the session and the callback
ends there, as the login form does.
"""
from __future__ import annotations

import logging

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from auth.callers import WebAuth
from configs import OAuthProvider
from pipelines.errors import AtelierError
from web.accounts import local_path, login_address

logger = logging.getLogger(__name__)


def make_oauth(providers: tuple[OAuthProvider, ...]) -> OAuth:
    oauth = OAuth()
    for p in providers:
        endpoints = ({"server_metadata_url": p.server_metadata_url} if p.server_metadata_url else
                     {"authorize_url": p.authorize_url, "access_token_url": p.access_token_url,
                      "userinfo_endpoint": p.userinfo_url})
        oauth.register(p.name, client_id=p.client_id, client_secret=p.client_secret,
                       client_kwargs={"scope": p.scope, "code_challenge_method": "S256"}, **endpoints)
    return oauth


def install_oauth_routes(app, web: WebAuth, providers: tuple[OAuthProvider, ...], public_url: str = "") -> None:
    """Add /login/NAME and /auth/NAME for each provider (before Gradio is mounted at "/")."""
    oauth = make_oauth(providers)

    def unknown(name: str) -> PlainTextResponse:
        # Plain text: the name comes from the URL, and echoing it as HTML would let a link run script here.
        return PlainTextResponse(f"No login provider {name!r}.", status_code=404)

    def failed(message: str, after: str = "/") -> RedirectResponse:
        return RedirectResponse(login_address(after, message), status_code=303)

    @app.get("/login/{name}")
    async def oauth_login(name: str, request: Request):
        client = oauth.create_client(name)
        if client is None:
            return unknown(name)
        request.session["next"] = local_path(request.query_params.get("next"))
        callback = (f"{public_url.rstrip('/')}/auth/{name}" if public_url
                    else str(request.url_for("oauth_callback", name=name)))
        try:
            return await client.authorize_redirect(request, callback)
        except httpx.HTTPError as e:          # its discovery document did not load
            logger.warning("oauth %s: provider unreachable: %s", name, e)
            return failed(f"{name} did not answer; try again in a minute.", request.session["next"])

    @app.get("/auth/{name}", name="oauth_callback")
    async def oauth_callback(name: str, request: Request):
        client = oauth.create_client(name)
        if client is None:
            return unknown(name)
        after = local_path(request.session.pop("next", "/"))
        try:
            token = await client.authorize_access_token(request)
            claims = token.get("userinfo") or (await client.userinfo(token=token))
        except AuthlibBaseError as e:          # OAuthError, and JoseError for an ID token that does not check out
            logger.info("oauth %s: login refused: %s", name, e)
            return failed(f"{name} did not log you in ({e.error}); try again.", after)
        except httpx.HTTPError as e:
            logger.warning("oauth %s: provider unreachable: %s", name, e)
            return failed(f"{name} did not answer; try again in a minute.", after)
        subject = str(claims.get("sub") or claims.get("id") or "")
        if not subject:
            return failed(f"{name} did not say who you are; try another way to log in.", after)

        def log_in():
            guest = web.guest_of(request)
            user = web.accounts.oauth_user(name, subject, claims.get("email") or "",
                                           email_verified=claims.get("email_verified") is True, guest=guest)
            web.log_in(request, user)
            return user

        try:
            user = await run_in_threadpool(log_in)
        except AtelierError as e:
            logger.info("oauth %s: login refused (%s): %s", name, e.code, e.message)
            return failed(e.message, after)
        logger.info("user %s: logged in with %s", user.id, name)
        return RedirectResponse(after, status_code=303)
