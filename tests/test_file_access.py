"""Nobody reads a server file through the app (issue 11, doors 1 and 3), on the app as users run it:
mounted on FastAPI by app.make_fastapi, served by uvicorn, never `launch()`ed.

1. The raw-queue attack: every event handler of the Blocks config, named or not, is called through
   Gradio's queue with a FileData naming a server file in each input. Gradio must refuse them all, and
   no copy of the file may appear in its upload folder or be served back.
2. Every route of the mounted app is listed and classified; each one that serves a file named by the
   caller is tried in several spellings as the file's owner, another user, a guest and nobody.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
import time
import uuid

import httpx
import pytest

from auth.file_access import FILE_ROUTES, URL_ROUTES
from tests.conftest import api_client

# Routes of Gradio 6.31 (and ours) that serve no file named by the caller. A route missing from this
# list and from auth.file_access.FILE_ROUTES / URL_ROUTES fails test_every_route_is_classified.
SERVES_NO_NAMED_FILE = {
    # Gradio's own pages, API and queue
    "/", "/config", "/config/", "/gradio_api/info", "/gradio_api/info/", "/gradio_api/openapi.json",
    "/gradio_api/queue/join", "/gradio_api/queue/data", "/gradio_api/cancel", "/gradio_api/upload",
    "/gradio_api/upload_progress", "/gradio_api/heartbeat/{session_hash}", "/gradio_api/startup-events",
    "/gradio_api/app_id", "/gradio_api/app_id/", "/gradio_api/user", "/gradio_api/user/",
    "/gradio_api/login_check", "/gradio_api/login_check/", "/gradio_api/token", "/gradio_api/token/",
    "/gradio_api/reset", "/gradio_api/reset/", "/gradio_api/deep_link", "/gradio_api/dev/reload",
    "/gradio_api/run/{api_name}", "/gradio_api/run/{api_name}/", "/gradio_api/api/{api_name}",
    "/gradio_api/api/{api_name}/", "/gradio_api/call/{api_name}", "/gradio_api/call/{api_name}/",
    "/gradio_api/call/v2/{api_name}", "/gradio_api/call/v2/{api_name}/",
    "/gradio_api/call/{api_name}/{event_id}", "/gradio_api/call/v2/{api_name}/{event_id}",
    "/gradio_api/queue/status", "/gradio_api/process_recording", "/gradio_api/vibe-starter-queries",
    "/gradio_api/vibe-starter-queries/",
    # Gradio's MCP server (issue 15): its tools call the endpoints above through Gradio's client; the schema
    # route lists them
    "/gradio_api/mcp/schema", "/gradio_api/mcp/sse",
    # A component's server functions: of ours, only ImageEditor.accept_blobs, which takes uploaded bytes
    "/gradio_api/component_server", "/gradio_api/component_server/",
    "/login", "/login/", "/logout", "/theme.css", "/gradio_api/theme.css", "/robots.txt", "/manifest.json",
    "/favicon.ico", "/pwa_icon", "/pwa_icon/{size}", "/monitoring", "/monitoring/summary", "/monitoring/{key}",
    "/gradio_api/vibe-edit", "/gradio_api/vibe-edit/", "/gradio_api/undo-vibe-edit",
    "/gradio_api/undo-vibe-edit/", "/gradio_api/vibe-code", "/gradio_api/vibe-code/",
    "/gradio_api/runs", "/gradio_api/runs/", "/gradio_api/run-history/connect", "/gradio_api/run-history/buckets",
    "/gradio_api/run-history/records",
    # Files inside Gradio's own package folders, joined safely (safe_join); never a caller's path
    "/static/{path:path}", "/assets/{path:path}", "/svelte/{path:path}",
    "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}",
    # A session's own media stream, looked up by its random session hash, and stored run-history assets
    # (off unless run history is configured)
    "/gradio_api/stream/{event_id}", "/gradio_api/stream/{event_id}/close",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file",
    "/gradio_api/run-history/records/{endpoint}/{record_id}/assets/{asset_id}",
    # Ours: pages, accounts, billing, operations; share links check their token and the owner's holding
    "/signup", "/share/{token}", "/share/{token}/file/{artifact_id}", "/webhooks/stripe", "/auth/{name}",
    "/login/{name}", "/healthz", "/readyz", "/metrics",
    # AUTOMATIC1111's API (web/a1111.py): images come in as base64 bytes and go out as the caller's own job's
    # stored PNGs, read by artifact id; no route takes a path
    *(f"/sdapi/v1/{name}" for name in ("txt2img", "img2img", "progress", "interrupt", "skip", "sd-models",
                                       "samplers", "schedulers", "upscalers", "loras", "scripts", "options",
                                       "png-info")),
    # FastAPI's own documentation pages
    "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
}


def all_routes(asgi) -> set[str]:
    """The path template of every route the ASGI app answers, mounted sub-apps included."""
    from starlette.routing import Mount

    found = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if hasattr(route, "effective_candidates"):        # FastAPI's include_router(prefix=...)
                walk(route.effective_candidates() + route.effective_low_priority_routes(), prefix)
            elif isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            else:
                found.add(prefix + route.path)
    walk(asgi.routes, "")
    return found


def test_every_route_is_classified(accounts_app):
    routes = all_routes(accounts_app.asgi)
    assert set(FILE_ROUTES) <= routes, "a route auth.file_access guards is gone: check Gradio's file routes"
    unknown = routes - set(FILE_ROUTES) - set(URL_ROUTES) - SERVES_NO_NAMED_FILE
    assert not unknown, (f"routes nobody classified (does one serve a file the caller names? add it to "
                         f"auth/file_access.py or, if not, to SERVES_NO_NAMED_FILE here): {sorted(unknown)}")


@pytest.fixture
def canary(settings) -> pathlib.Path:
    """A server file nobody may read: random bytes in the data folder, beside the database."""
    path = settings.data_dir / f"canary-{uuid.uuid4().hex}.txt"
    path.write_bytes(secrets.token_hex(24).encode())
    yield path
    path.unlink()


@contextlib.contextmanager
def guest(app):
    """A first-time visitor: GET / makes a guest session, whose cookie the client keeps."""
    with httpx.Client(base_url=app.url, timeout=60) as client:
        assert client.get("/").status_code == 200 and "atelier_session" in client.cookies
        yield client


def file_data(path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def attack_every_handler(client: httpx.Client, path) -> dict[int, dict]:
    """Call every backend handler of the app's Blocks config through the queue, with a FileData naming
    `path` in each of its inputs; returns fn_index -> the completion message."""
    config = client.get("/config").json()
    state = {c["id"] for c in config["components"] if c.get("type") == "state"}
    session = uuid.uuid4().hex
    pending = {}
    for dependency in config["dependencies"]:
        if not dependency.get("backend_fn", True) or not set(dependency["inputs"]) - state:
            continue
        trigger = dependency["targets"][0][0] if dependency["targets"] else None
        joined = client.post("/gradio_api/queue/join", json={
            "data": [file_data(path) for _ in dependency["inputs"]], "fn_index": dependency["id"],
            "trigger_id": trigger, "session_hash": session, "event_data": None})
        assert joined.status_code == 200, joined.text
        pending[joined.json()["event_id"]] = dependency["id"]
    assert len(pending) > 20, "the Blocks config lists fewer handlers than the app has"
    done = {}
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session},
                           timeout=httpx.Timeout(60, read=120)) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed" and message.get("event_id") in pending:
                    done[pending.pop(message["event_id"])] = message
                if not pending or message.get("msg") == "close_stream":
                    break
    assert not pending, f"{len(pending)} handlers never answered"
    return done


def copies_of(data: bytes, folder: str, since: float) -> list[str]:
    """Files under `folder` written since `since` (Unix time) whose bytes are `data`."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
                if (stat.st_size == len(data) and max(stat.st_mtime, stat.st_ctime) >= since
                        and pathlib.Path(path).read_bytes() == data):
                    found.append(path)
            except OSError:
                continue
    return found


def test_no_handler_input_can_name_a_server_file(accounts_app, canary):
    from gradio.utils import get_upload_folder

    secret, started = canary.read_bytes(), time.time() - 1
    with guest(accounts_app) as visitor:
        outcomes = attack_every_handler(visitor, canary)
        refused = {fn: m for fn, m in outcomes.items() if not m.get("success", True)}
        assert refused == outcomes, f"handlers that took a server path: {sorted(set(outcomes) - set(refused))}"
        for message in outcomes.values():
            text = json.dumps(message)
            assert secret.decode() not in text
            assert "not uploaded by a user" in text or "Cannot move" in text, text[:300]
        assert copies_of(secret, get_upload_folder(), started) == []
        assert visitor.get(f"/gradio_api/file={canary}").status_code == 404


def test_no_handler_input_can_name_a_server_file_in_local_mode(atelier, canary):
    """Local mode has no login; with ATELIER_SHARE its port is public, so the same rules hold."""
    from gradio.utils import get_upload_folder

    started = time.time() - 1
    with httpx.Client(base_url=atelier.url, timeout=60) as anyone:
        outcomes = attack_every_handler(anyone, "/etc/passwd")
        assert all(not m.get("success", True) for m in outcomes.values())
        assert all("root:" not in json.dumps(m) for m in outcomes.values())
        assert anyone.get("/gradio_api/file=/etc/passwd").status_code == 404
    assert copies_of(pathlib.Path("/etc/passwd").read_bytes(), get_upload_folder(), started) == []


def spellings(path: str) -> list[str]:
    """URLs of every file route for the absolute `path`, in the spellings a router accepts: plain, with
    a doubled slash, with an encoded `..` detour, and with every slash encoded."""
    parent, name = os.path.split(path)
    variants = (path, "/" + path, f"{parent}/%2E%2E/{os.path.basename(parent)}/{name}", path.replace("/", "%2F"))
    return [prefix + variant for prefix in ("/gradio_api/file=", "/gradio_api/file/") for variant in variants]


@pytest.fixture(scope="module")
def owners_image(accounts_app):
    """A user with a finished image: (user, their API key, the stored file's path and bytes)."""
    from auth import api_keys, credits

    user = accounts_app.web_auth.accounts.create_user(f"{uuid.uuid4().hex[:10]}@files.example", "correct horse battery")
    credits.grant(user, 10, f"test:files:{user.id}")
    key = api_keys.create_key(user)[1]
    _, info = api_client(accounts_app, key).predict(prompt="only mine", seed=11, api_name="/txt2img")
    artifacts = accounts_app.artifacts
    path = artifacts.artifact_path(artifacts.artifact(user, info["artifact_ids"][0]))
    return user, key, path, pathlib.Path(path).read_bytes()


def test_every_file_route_serves_a_stored_file_to_its_holder_only(accounts_app, make_user, owners_image):
    _, owners_key, path, data = owners_image
    _, strangers_key = make_user()
    with httpx.Client(base_url=accounts_app.url, timeout=60) as http, guest(accounts_app) as visitor:
        for url in spellings(path):
            for method in ("GET", "HEAD"):
                mine = http.request(method, url, headers={"Authorization": f"Bearer {owners_key}"})
                # Gradio itself refuses some spellings (403: "//tmp" is not "/tmp" to it) and has no
                # HEAD on /file/...; the owner gets the file on the plain ones.
                gradios_own = {403} if "//" in url else set()
                gradios_own |= {405} if method == "HEAD" and url.startswith("/gradio_api/file/") else set()
                assert mine.status_code in {200} | gradios_own, (method, url, mine.status_code)
                assert method == "HEAD" or mine.status_code != 200 or mine.content == data
                theirs = http.request(method, url, headers={"Authorization": f"Bearer {strangers_key}"})
                assert theirs.status_code == 404, (method, url, "another user")
                assert visitor.request(method, url).status_code == 404, (method, url, "a guest")
                assert http.request(method, url).status_code in (401, 404), (method, url, "nobody")
        plain = http.get(f"/gradio_api/file={path}", headers={"Authorization": f"Bearer {owners_key}"})
        assert plain.status_code == 200 and plain.content == data


def test_file_routes_serve_no_other_server_file_even_to_a_logged_in_user(accounts_app, owners_image, canary,
                                                                         settings):
    _, key, _, _ = owners_image
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=accounts_app.url, timeout=60, headers=headers) as http:
        for target in (str(canary), str(settings.data_dir / "atelier.db"), "/etc/passwd", "/proc/self/environ"):
            for url in spellings(target):
                response = http.get(url)
                assert response.status_code == 404, url
                assert b"root:" not in response.content and b"ATELIER" not in response.content
        assert http.get("/gradio_api/proxy=http://127.0.0.1:1/x").status_code == 404
        assert http.get("/gradio_api/file=http://example.com/x.png").status_code == 404
