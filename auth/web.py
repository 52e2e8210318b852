"""Who is calling, and the routes beside the Gradio app: login, sign-up, logout, guests, share links.

A caller is a session cookie (signed by Starlette's SessionMiddleware, HttpOnly, carrying a random
token whose sha256 is a Session row) or an API key (`Authorization: Bearer atl_...`). A bad key is
refused, never treated as "no key". In local mode nobody logs in: every request is the local owner.
"""
from __future__ import annotations

import json
import logging
import pathlib
import secrets
import urllib.parse
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from auth import api_keys, sharing
from auth.file_access import FileGuard
from auth.accounts import Accounts, AuthError
from auth.pages import login_page, not_found_page, share_page
from auth.users import local_owner
from pipelines.errors import AtelierError
from storage.artifacts import find_artifact, without_recipe
from storage.models import Artifact, ArtifactOwner, User

logger = logging.getLogger(__name__)

SESSION_COOKIE = "atelier_session"


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


class WebAuth:
    """Request -> user, and the account routes.

    Args:
        accounts: sign-up, login and sessions.
        accounts_mode: False in local mode (no login; everyone is the local owner).
        file_path: the local path of an artifact's file (for share links).
        providers: (name, label) of the OAuth providers offered on the login page.
        blob_root: the folder of stored files; Gradio's file routes serve one of them only to a user
            who holds its artifact.
        gradio_folders: Gradio's upload folder (and any other of its own folders whose files it hands
            out under secret names); the file routes serve nothing else (auth.file_access).
    """

    def __init__(self, accounts: Accounts, accounts_mode: bool, file_path: Callable[[Artifact], str],
                 providers: tuple[tuple[str, str], ...] = (), blob_root: str = "",
                 gradio_folders: tuple[str, ...] = ()):
        self.accounts = accounts
        self.accounts_mode = accounts_mode
        self.file_path = file_path
        self.providers = providers
        self.files = FileGuard(blob_root, gradio_folders, self._holds) if blob_root else None

    # -- who is calling ----------------------------------------------------------------------------

    def user_from_request(self, request) -> User | None:
        """The user of a Starlette request: its API key if it sends one (a bad key is None), else its
        session cookie."""
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            return api_keys.user_for_key(authorization[7:].strip())
        token = request.session.get("token") if "session" in request.scope else None
        return self.accounts.session_user(token)

    async def dependency(self, request) -> str | None:
        """Gradio's auth_dependency: the caller's user id as text, or None (401). Gradio awaits it on the
        event loop for every request (each file, each progress stream), so the look-up in the database,
        which may wait on a lock, runs in a worker thread rather than stalling every connection."""
        user = await run_in_threadpool(self.user_from_request, request)
        return str(user.id) if user is not None else None

    def current_user(self, request) -> User:
        """The user behind a gr.Request (whose `username` is what `dependency` returned)."""
        if not self.accounts_mode:
            return local_owner()
        username = getattr(request, "username", None)
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

    # -- routes ------------------------------------------------------------------------------------

    def install(self, app, secret: str, https_only: bool = False, max_age: int = 30 * 86400,
                public_url: str = "") -> None:
        """Add the account and share routes and the session middleware to a FastAPI app (before
        Gradio is mounted at "/"). `public_url` is the site's own address, for the same-origin check
        on the login forms ("" = the address each request came to)."""
        def back_to_login(error: str) -> RedirectResponse:
            return RedirectResponse("/login?" + urllib.parse.urlencode({"error": error}), status_code=303)

        def home_after(log_in: Callable[[], None]) -> RedirectResponse:
            """Run `log_in` (in a worker thread: argon2 is slow on purpose); home, or back with its error."""
            try:
                log_in()
            except AtelierError as e:
                return back_to_login(e.message)
            return RedirectResponse("/", status_code=303)

        def cross_site(request: Request) -> bool:
            """A form posted from another site (login CSRF: logging a visitor in as someone else).
            Browsers send Origin with every cross-site POST; scripts that send none are let through."""
            origin = request.headers.get("origin")
            if origin is None:
                return False
            own = _origin(public_url) if public_url else f"{request.url.scheme}://{request.headers.get('host', '')}"
            return origin.rstrip("/") != own

        refused = HTMLResponse("This form must be sent from the site itself.", status_code=403,
                               media_type="text/plain")

        if self.accounts_mode:
            @app.get("/login", response_class=HTMLResponse)
            def login_form(request: Request, error: str = ""):
                return login_page(error[:300], self.providers, guest=self.guest_of(request) is not None)

            @app.post("/login")
            async def login(request: Request):
                if cross_site(request):
                    return refused
                form = await request.form()

                def log_in():
                    user = self.accounts.authenticate(form.get("email"), form.get("password"))
                    self.accounts.absorb_guest(self.guest_of(request), user)
                    self.log_in(request, user)
                    logger.info("user %s: logged in", user.id)

                return await run_in_threadpool(home_after, log_in)

            @app.post("/signup")
            async def signup(request: Request):
                if cross_site(request):
                    return refused
                form = await request.form()

                def sign_up():
                    user = self.accounts.sign_up(form.get("email"), form.get("password"), guest=self.guest_of(request))
                    self.log_in(request, user)

                return await run_in_threadpool(home_after, sign_up)

            @app.api_route("/logout", methods=["GET", "POST"])
            def logout(request: Request):
                if request.method == "POST" and cross_site(request):
                    return refused
                self.accounts.end_session(request.session.get("token"))
                request.session.clear()
                return RedirectResponse("/login", status_code=303)

            @app.middleware("http")
            async def guest_session(request: Request, call_next):
                # A visitor's first page view: a guest account with a few credits, so they can try it.
                if (request.method == "GET" and request.url.path == "/" and "authorization" not in request.headers
                        and await run_in_threadpool(self.user_from_request, request) is None):
                    guest = await run_in_threadpool(self.accounts.create_guest)
                    await run_in_threadpool(self.log_in, request, guest)
                return await call_next(request)

        @app.get("/share/{token}", response_class=HTMLResponse)
        def shared(token: str):
            found = sharing.open_share(token)
            if found is None:
                return HTMLResponse(not_found_page(), status_code=404)
            link, artifacts = found
            source = sharing.recipe_source(link, artifacts[0]) if artifacts else None
            recipe = _recipe_summary(source) if source is not None else None
            return share_page(token, [{"artifact_id": a.id, "mime": a.mime} for a in artifacts], recipe)

        @app.get("/share/{token}/file/{artifact_id}")
        def shared_file(token: str, artifact_id: str):
            found = sharing.open_share(token)
            artifact = next((a for a in found[1] if a.id == artifact_id), None) if found else None
            if artifact is None:
                return HTMLResponse(not_found_page(), status_code=404)
            if found[0].show_recipe:
                return FileResponse(self.file_path(artifact), media_type=artifact.mime)
            try:        # the recipe stays private: the same pictures, without the text inside the file
                data = without_recipe(pathlib.Path(self.file_path(artifact)).read_bytes(), artifact.mime)
            except (ValueError, RuntimeError) as e:
                logger.warning("share link %s: artifact %s could not be served without its recipe: %s",
                               found[0].id, artifact.id, e)
                return HTMLResponse(not_found_page(), status_code=404)
            return Response(data, media_type=artifact.mime)

        if self.files is not None:
            @app.middleware("http")
            async def named_files_checked(request: Request, call_next):
                # Gradio serves whatever its file routes name that its own rules allow; a stored file
                # is someone's, and nothing else on the server is anyone's (auth.file_access).
                path = request.scope["path"]          # decoded, as Gradio's router matches it
                if self.files.named_file(path) is not None and not await run_in_threadpool(
                        self.files.may_read, request, path):
                    return HTMLResponse(not_found_page(), status_code=404)
                return await call_next(request)

        # Added last, so it is the outermost middleware and every route above sees request.session.
        app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE, max_age=max_age,
                           same_site="lax", https_only=https_only)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _recipe_summary(holding: ArtifactOwner) -> dict:
    """What a visitor of a share link sees of how an image was made: the last step of the link owner's
    job that made it (`sharing.recipe_source`), settings only."""
    step = json.loads(holding.job.plan)["steps"][-1]
    shown = {k: step[k] for k in ("kind", "prompt", "negative_prompt", "width", "height", "steps", "cfg_scale",
                                  "sampler", "schedule") if k in step}
    if step.get("model"):
        shown["model"] = step["model"]["id"]
    shown["seed"] = holding.seed
    return shown
