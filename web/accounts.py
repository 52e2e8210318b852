"""The account routes beside the Gradio app: login, sign-up, logout, guests, share links, and the session
middleware that carries the login cookie.

Login and sign-up happen in the tab the person was in, and bring them back where they were: the
page's links send `/login?next=/?tab=account`, the forms carry `next` along, and a login or sign-up
ends with a redirect to it. `next` is only ever a path on this site (`local_path`): anything else
(another host, `//host`, a scheme) becomes "/", so a link cannot use the login page to send someone
elsewhere.

Who a request comes from (its session cookie or API key) is `auth.WebAuth`'s business; these routes
start and end sessions through it and render `web.pages`.
"""
from __future__ import annotations

import logging
import pathlib
import urllib.parse
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from auth import sharing
from auth.callers import WebAuth
from pipelines.errors import AtelierError
from storage.artifacts import without_recipe
from storage.models import Artifact, ArtifactOwner
from web.pages import login_page, not_found_page, share_page

logger = logging.getLogger(__name__)

SESSION_COOKIE = "atelier_session"


def install_account_routes(app, web_auth: WebAuth, secret: str, file_path: Callable[[Artifact], str],
                           providers: tuple[tuple[str, str], ...] = (), https_only: bool = False,
                           max_age: int = 30 * 86400, public_url: str = "") -> None:
    """Add the account and share routes and the session middleware to a FastAPI app (before Gradio is
    mounted at "/").

    Args:
        app: the FastAPI app.
        web_auth: who is calling; the login routes exist only in its accounts mode.
        secret: the key that signs the session cookie (auth.session_secret).
        file_path: the local path of an artifact's file (for share links).
        providers: (name, label) of the OAuth providers offered on the login page (default none).
        https_only: send the session cookie over HTTPS only (default False).
        max_age: seconds the session cookie lives (default 30 days).
        public_url: the site's own address, for the same-origin check on the login forms ("" = the
            address each request came to).
    """
    def back_to_login(error: str, after: str) -> RedirectResponse:
        return RedirectResponse(login_address(after, error), status_code=303)

    def log_in_then(log_in: Callable[[], None], after: str) -> RedirectResponse:
        """Run `log_in` (in a worker thread: argon2 is slow on purpose); then to `after` (a local path),
        or back to the login page with its error."""
        try:
            log_in()
        except AtelierError as e:
            logger.info("login refused (%s): %s", e.code, e.message)
            return back_to_login(e.message, after)
        return RedirectResponse(after, status_code=303)

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

    if web_auth.accounts_mode:
        @app.get("/login", response_class=HTMLResponse)
        def login_form(request: Request, error: str = "", next: str = "/"):
            return login_page(error[:300], providers, guest=web_auth.guest_of(request) is not None,
                              after=local_path(next))

        @app.post("/login")
        async def login(request: Request):
            if cross_site(request):
                return refused
            form = await request.form()
            after = local_path(form.get("next"))

            def log_in():
                user = web_auth.accounts.authenticate(form.get("email"), form.get("password"))
                web_auth.accounts.absorb_guest(web_auth.guest_of(request), user)
                web_auth.log_in(request, user)
                logger.info("user %s: logged in", user.id)

            return await run_in_threadpool(log_in_then, log_in, after)

        @app.post("/signup")
        async def signup(request: Request):
            if cross_site(request):
                return refused
            form = await request.form()
            after = local_path(form.get("next"))

            def sign_up():
                user = web_auth.accounts.sign_up(form.get("email"), form.get("password"),
                                                 guest=web_auth.guest_of(request))
                web_auth.log_in(request, user)

            return await run_in_threadpool(log_in_then, sign_up, after)

        @app.api_route("/logout", methods=["GET", "POST"])
        def logout(request: Request):
            if request.method == "POST" and cross_site(request):
                return refused
            web_auth.accounts.end_session(request.session.get("token"))
            request.session.clear()
            return RedirectResponse("/login", status_code=303)

        @app.middleware("http")
        async def guest_session(request: Request, call_next):
            # A visitor's first page view: a guest account with a few credits, so they can try it.
            if (request.method == "GET" and request.url.path == "/" and "authorization" not in request.headers
                    and await run_in_threadpool(web_auth.user_from_request, request) is None):
                guest = await run_in_threadpool(web_auth.accounts.create_guest)
                await run_in_threadpool(web_auth.log_in, request, guest)
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
            return FileResponse(file_path(artifact), media_type=artifact.mime)
        try:        # the recipe stays private: the same pictures, without the text inside the file
            data = without_recipe(pathlib.Path(file_path(artifact)).read_bytes(), artifact.mime)
        except (ValueError, RuntimeError) as e:
            logger.warning("share link %s: artifact %s could not be served without its recipe: %s",
                           found[0].id, artifact.id, e)
            return HTMLResponse(not_found_page(), status_code=404)
        return Response(data, media_type=artifact.mime)

    if web_auth.files is not None:
        @app.middleware("http")
        async def named_files_checked(request: Request, call_next):
            # Gradio serves whatever its file routes name that its own rules allow; a stored file
            # is someone's, and nothing else on the server is anyone's (auth.file_access).
            path = request.scope["path"]          # decoded, as Gradio's router matches it
            if web_auth.files.named_file(path) is not None and not await run_in_threadpool(
                    web_auth.files.may_read, request, path):
                return HTMLResponse(not_found_page(), status_code=404)
            return await call_next(request)

    # Added last, so it is the outermost middleware and every route above sees request.session.
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE, max_age=max_age,
                       same_site="lax", https_only=https_only)


def local_path(next_path) -> str:
    """`next_path` if it is a path on this site ("/", "/?tab=account"), else "/": no scheme, no host,
    no "//host" or "/\\host" (browsers read both as another site), no control characters."""
    if not isinstance(next_path, str) or not next_path.startswith("/") or len(next_path) > 500:
        return "/"
    if next_path.startswith("//") or any(ord(c) < 32 or c == "\\" for c in next_path):
        return "/"
    parts = urllib.parse.urlsplit(next_path)
    if parts.scheme or parts.netloc:
        return "/"
    return next_path


def login_address(after: str = "/", error: str = "") -> str:
    """/login with `error` to show and `after` (a local path) to come back to, each only when there is one."""
    query = {k: v for k, v in (("error", error), ("next", after if after != "/" else "")) if v}
    return "/login" + ("?" + urllib.parse.urlencode(query) if query else "")


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _recipe_summary(holding: ArtifactOwner) -> dict:
    """What a visitor of a share link sees of how an image was made: the summary of the link owner's job
    that made it (`sharing.recipe_source`), settings only, with this image's own seed."""
    from pipelines.plan import ExecutionPlan     # here: `import web` loads no engine module (tests/test_rooms.py)

    return {**ExecutionPlan.from_json(holding.job.plan).summary(), "seed": holding.seed}
