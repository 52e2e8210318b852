"""Which API endpoints Gradio's MCP server offers AI agents as tools (issue 15, item 5).

Gradio's MCP server (`mount_gradio_app(..., mcp_server=True)`, served at /gradio_api/mcp) lists as a tool
every public named endpoint whose function is unmarked or marked a tool (`gr.mcp.tool` marks it with
`_mcp_type = "tool"`); a function marked anything else is on none of its lists (tools, resources, prompts).
Making an endpoint "undocumented" would also hide it, but gradio_client then refuses to call it by
keyword, which scripts rely on (../shared/API.md); the mark below keeps the endpoint whole for them.
An endpoint kept from agents is still reachable with the same credentials through gradio_client: this
decides what agents are offered, not what a caller may do (the handlers check that).
"""
from __future__ import annotations

from typing import Callable

# What `kept_from_agents` marks a function with: not "tool", "resource" or "prompt", so on no MCP list.
NOT_FOR_AGENTS = "not_for_agents"


def kept_from_agents(fn: Callable) -> Callable:
    """Mark endpoint function `fn` so that Gradio's MCP server does not offer it to AI agents (API keys,
    share links, admin and account changes, deletes); returns `fn`."""
    fn._mcp_type = NOT_FOR_AGENTS
    return fn
