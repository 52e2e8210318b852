"""Who is calling: a request's session cookie or API key, turned into a user.

A caller is a session cookie (signed by Starlette's SessionMiddleware, HttpOnly, carrying a random
token whose sha256 is a Session row) or an API key (`Authorization: Bearer atl_...`). A bad key is
refused, never treated as "no key": a call that sends no credentials at all gets Gradio's 401, while a
call that sends a revoked or mistyped key is let past Gradio's gate as `REFUSED_KEY` and each of its
calls is answered with `BAD_KEY_MESSAGE`, which is the only way a `gradio_client` user reads why (the
client turns every 401 into "credentials were not provided"). Let past the gate, such a caller reaches
no more than an anonymous visitor does (the page's layout; no stored file, no job, no account). In
local mode nobody logs in: every request is the local owner.
The routes that log people in and out, and the middleware that carries the cookie, are in
`web.accounts`.
"""
from __future__ import annotations

import pathlib
import secrets

from starlette.concurrency import run_in_threadpool

from auth import api_keys
from auth.accounts import Accounts, AuthError
from auth.file_access import FileGuard
from auth.users import local_owner
from storage.artifacts import find_artifact
from storage.models import User

# What `WebAuth.dependency` answers for a request whose API key is revoked or mistyped: not a user id
# (those are digits), so `current_user` knows to say why rather than who.
REFUSED_KEY = "refused-api-key"
BAD_KEY_MESSAGE = "This API key is not valid (revoked or mistyped); create one in the Account tab."
# What it answers for a request without credentials from the client Gradio's MCP server makes to call the
# app (it sends `x-gradio-user: mcp` and no key while it loads the app's config): let past the gate as far
# as REFUSED_KEY is (the layout), a user of nobody. Each tool call it then makes carries the agent's own
# credentials, which `web.mcp` made sure of.
MCP_LOOPBACK = "mcp-loopback"


def session_secret(configured: str, data_dir: pathlib.Path) -> str:
    """The configured secret, or a random one kept in <data_dir>/session_secret (made once)."""
    if configured:
        return configured
    path = pathlib.Path(data_dir) / "session_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def sends_key(request) -> bool:
    """Whether a request sends an API key (`Authorization: Bearer ...`), good or bad."""
    return request.headers.get("authorization", "")[:7].lower() == "bearer "


class WebAuth:
    """Request -> user.

    Args:
        accounts: sign-up, login and sessions.
        accounts_mode: False in local mode (no login; everyone is the local owner).
        blob_root: the folder of stored files; Gradio's file routes serve one of them only to a user
            who holds its artifact ("" = no file guard).
        gradio_folders: Gradio's upload folder (and any other of its own folders whose files it hands
            out under secret names); the file routes serve nothing else (auth.file_access).
    """

    def __init__(self, accounts: Accounts, accounts_mode: bool, blob_root: str = "",
                 gradio_folders: tuple[str, ...] = ()):
        self.accounts = accounts
        self.accounts_mode = accounts_mode
        self.files = FileGuard(blob_root, gradio_folders, self._holds) if blob_root else None

    def user_from_request(self, request) -> User | None:
        """The user of a Starlette request: its API key if it sends one (a bad key is None), else its
        session cookie."""
        if sends_key(request):
            return api_keys.user_for_key(request.headers["authorization"][7:].strip())
        token = request.session.get("token") if "session" in request.scope else None
        return self.accounts.session_user(token)

    async def dependency(self, request) -> str | None:
        """Gradio's auth_dependency: the caller's user id as text, or None (401). Gradio awaits it on the
        event loop for every request (each file, each progress stream), so the look-up in the database,
        which may wait on a lock, runs in a worker thread rather than stalling every connection."""
        user = await run_in_threadpool(self.user_from_request, request)
        if user is not None:
            return str(user.id)
        if sends_key(request):
            return REFUSED_KEY
        return MCP_LOOPBACK if request.headers.get("x-gradio-user") == "mcp" else None

    def current_user(self, request) -> User:
        """The user behind a gr.Request (whose `username` is what `dependency` returned)."""
        if not self.accounts_mode:
            return local_owner()
        username = getattr(request, "username", None)
        if username == REFUSED_KEY:
            raise AuthError(BAD_KEY_MESSAGE, code="bad_api_key", field="authorization")
        user = User.get_or_none(User.id == int(username)) if isinstance(username, str) and username.isdigit() else None
        if user is None:
            raise AuthError("Log in first, or send an API key as 'Authorization: Bearer <key>'.")
        return user

    def log_in(self, request, user: User) -> None:
        """Start a session for `user` in this browser (replacing any earlier one)."""
        self.accounts.end_session(request.session.get("token"))
        request.session["token"] = self.accounts.start_session(user)

    def _holds(self, request, artifact_id: str) -> bool:
        user = self.user_from_request(request) if self.accounts_mode else local_owner()
        return user is not None and find_artifact(user, artifact_id) is not None

    def guest_of(self, request) -> User | None:
        """The guest this browser is logged in as, if it is a guest."""
        user = self.accounts.session_user(request.session.get("token"))
        return user if user is not None and user.is_guest else None
