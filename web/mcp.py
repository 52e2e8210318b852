"""The gate in front of Gradio's MCP server (`/gradio_api/mcp`, issue 15 item 5).

Files: Gradio's MCP server hands a tool's arguments to its own `gradio_client`, running on this server,
which uploads any FileData dict (`{"path": ...}`) it is given by reading that path here: a server file
(another user's stored image, whose path is its hash) would come back as the caller's upload. So a tool
call may send files only as what MCP clients send, `data:` URLs (or public https URLs, which Gradio
fetches itself); a call with a `path` anywhere in its arguments is refused, in every mode.

Callers, in accounts mode: Gradio mounts its MCP server as an app of its own, which its `auth_dependency` does not guard: without
this gate anyone could list the tools, and a tool call would only fail later, inside Gradio's loopback
to the queue, with a message an agent cannot act on. Here every MCP request must carry what the API
asks for (`Authorization: Bearer <api key>`, or a logged-in session cookie); one that does not is
answered 401 with what to send. The tool calls themselves then run as that caller, through the same
endpoints, queue, credits and ownership checks as a `gradio_client` call (Gradio forwards the
request's headers). In local mode nobody logs in and there is nothing to check.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from auth.callers import BAD_KEY_MESSAGE, sends_key

if TYPE_CHECKING:
    from auth.callers import WebAuth

MCP_PATH = "/gradio_api/mcp"
NO_KEY_MESSAGE = ("Atelier's MCP server needs an API key: send 'Authorization: Bearer <key>' (create one in "
                  "the Account tab).")


NAMED_PATH_MESSAGE = ("A tool call sends a file as a data: URL (data:image/png;base64,...) or an https:// URL, "
                      "never as a path on the server.")


def names_a_path(value) -> bool:
    """Whether a JSON value holds, at any depth, a dict with a "path" (a FileData naming a file)."""
    if isinstance(value, dict):
        return "path" in value or any(names_a_path(v) for v in value.values())
    if isinstance(value, list):
        return any(names_a_path(v) for v in value)
    return False


def install_mcp_gate(app, web_auth: WebAuth | None) -> None:
    """On the FastAPI `app` Gradio is mounted on, refuse MCP tool calls that name a file by path (400) and,
    given `web_auth` (accounts mode), MCP requests that carry no valid API key or session (401). Call it
    before `install_account_routes`, whose session middleware must wrap this one so that a logged-in
    browser's cookie counts too."""
    @app.middleware("http")
    async def mcp_gate(request: Request, call_next):
        path = request.scope["path"]
        if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            if web_auth is not None and await run_in_threadpool(web_auth.user_from_request, request) is None:
                message = BAD_KEY_MESSAGE if sends_key(request) else NO_KEY_MESSAGE
                return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            if request.method == "POST":
                try:
                    sent = json.loads(await request.body() or b"null")
                except ValueError:
                    sent = None             # not JSON: the MCP server answers it
                calls = sent if isinstance(sent, list) else [sent]
                if any(isinstance(m, dict) and m.get("method") == "tools/call" and names_a_path(m.get("params"))
                       for m in calls):
                    return JSONResponse({"error": NAMED_PATH_MESSAGE}, status_code=400)
        return await call_next(request)
