"""The gate in front of Gradio's MCP server (`/gradio_api/mcp`, issue 15 item 5) in accounts mode.

Gradio mounts its MCP server as an app of its own, which its `auth_dependency` does not guard: without
this gate anyone could list the tools, and a tool call would only fail later, inside Gradio's loopback
to the queue, with a message an agent cannot act on. Here every MCP request must carry what the API
asks for (`Authorization: Bearer <api key>`, or a logged-in session cookie); one that does not is
answered 401 with what to send. The tool calls themselves then run as that caller, through the same
endpoints, queue, credits and ownership checks as a `gradio_client` call (Gradio forwards the
request's headers). In local mode nobody logs in and there is nothing to check.
"""
from __future__ import annotations

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


def install_mcp_gate(app, web_auth: WebAuth) -> None:
    """Refuse MCP requests that carry no valid API key or session, on the FastAPI `app` Gradio is mounted
    on. Call it before `install_account_routes`, whose session middleware must wrap this one so that a
    logged-in browser's cookie counts too."""
    @app.middleware("http")
    async def mcp_needs_a_caller(request: Request, call_next):
        path = request.scope["path"]
        if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            if await run_in_threadpool(web_auth.user_from_request, request) is None:
                message = BAD_KEY_MESSAGE if sends_key(request) else NO_KEY_MESSAGE
                return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
