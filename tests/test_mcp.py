"""Gradio's MCP server on the served app (issue 15, item 5), driven by the `mcp` client package over streamable
HTTP: the generation, job, artifact and PNG Info endpoints are tools, each parameter described; keys, share
links, admin and delete are not; a txt2img call returns the stored image; in accounts mode the MCP server asks
for an API key as the API does."""
import ast
import asyncio
import base64
import datetime
import hashlib
import io
import re
import urllib.request

import httpx
import pytest
from PIL import Image

from tests.conftest import wait_until

mcp = pytest.importorskip("mcp", reason="the mcp package is not installed (pip install -r requirements.txt)")
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

GENERATION = {"txt2img", "img2img", "inpaint", "outpaint", "upscale", "edit", "img2vid", "txt2vid", "interpolate"}
JOBS = {"submit", "job_status", "jobs", "cancel_job"}
ARTIFACTS = {"artifact_info", "replay", "gallery"}
# Offered besides: read-only or pricing tools an agent may use (a new tool must be added here on purpose).
ALSO_OFFERED = {"quote", "account", "export_video", "png_info", "run_workflow", "import_comfyui", "export_comfyui",
                "workflows", "save_workflow"}
NEVER = re.compile(r"key|share|link|admin|delete|revoke|role|tier|credit|grant|billing|checkout|subscri", re.I)
LONG = datetime.timedelta(seconds=600)       # a busy machine makes a tiny image slowly


def mcp_url(app) -> str:
    return app.url + "gradio_api/mcp/"


async def in_session(app, work, key: str | None = None):
    """Run `work(session)` in an MCP session with `app` (sending `key` as a Bearer API key)."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with streamablehttp_client(mcp_url(app), headers=headers, timeout=60, sse_read_timeout=600) as (r, w, _):
        async with ClientSession(r, w, read_timeout_seconds=LONG) as session:
            await session.initialize()
            return await work(session)


def tools_of(app, key: str | None = None) -> dict:
    async def listed(session):
        return {tool.name: tool for tool in (await session.list_tools()).tools}
    return asyncio.run(in_session(app, listed, key))


def call(app, name: str, arguments: dict, key: str | None = None):
    async def called(session):
        return await session.call_tool(name, arguments)
    return asyncio.run(in_session(app, called, key))


def outputs_of(result) -> list:
    """A tool result's outputs: Gradio's MCP server sends an endpoint's outputs as one text, their Python repr
    (a tuple for several, like a generation's files and info), each file a FileData dict whose url the app
    serves."""
    assert not result.isError, result.content
    text, = (c.text for c in result.content if c.type == "text")
    return ast.literal_eval(text)


def test_the_tools_are_generation_jobs_artifacts_and_png_info(atelier):
    tools = tools_of(atelier)
    names = set(tools)
    assert GENERATION | JOBS | ARTIFACTS | {"png_info"} <= names, sorted(names)
    assert names <= GENERATION | JOBS | ARTIFACTS | ALSO_OFFERED, sorted(names - GENERATION - JOBS - ARTIFACTS)
    assert not [n for n in names if NEVER.search(n)], sorted(names)
    for name in sorted(GENERATION | JOBS | ARTIFACTS | {"png_info"}):
        properties = tools[name].inputSchema["properties"]
        assert properties or name == "jobs", name
        undescribed = [p for p, schema in properties.items() if not schema.get("description")]
        assert not undescribed, f"{name}: {undescribed}"
    txt2img = tools["txt2img"]
    assert txt2img.description.startswith("Text to image.")
    assert "Args:" not in txt2img.description
    assert "steps" in txt2img.inputSchema["properties"]["steps"]["description"].lower()
    assert txt2img.inputSchema["properties"]["prompt"]["type"] == "string"


def test_gradio_client_still_calls_what_mcp_does_not_offer(client):
    """Left out of MCP, /delete_artifact stays an endpoint of the API (API.md)."""
    with pytest.raises(Exception, match="not found|Not found|no artifact|No artifact"):
        client.predict(artifact_id="0" * 64, api_name="/delete_artifact")


def test_txt2img_returns_the_stored_image(atelier):
    from storage.models import Artifact

    files, info = outputs_of(call(atelier, "txt2img", {"prompt": "a lighthouse at dusk, from an agent", "seed": 7}))
    artifact_id, = info["artifact_ids"]
    assert info["seeds"] == [7] and info["settings"]["prompt"] == "a lighthouse at dusk, from an agent"
    image, = (item["image"] for item in files)
    with urllib.request.urlopen(image["url"], timeout=60) as response:
        served = response.read()
    assert hashlib.sha256(served).hexdigest() == artifact_id
    assert served == atelier.service.blobs.get(Artifact.get_by_id(artifact_id).blob_key)
    assert Image.open(io.BytesIO(served)).size == (64, 64)

    status = outputs_of(call(atelier, "job_status", {"job_id": info["job_id"]}))
    assert status["status"] == "succeeded" and status["artifact_ids"] == [artifact_id]

    # PNG Info on the image sent as a data URL, as MCP clients send files (Gradio fetches no URL on 127.0.0.1).
    data_url = "data:image/png;base64," + base64.b64encode(served).decode()
    read = outputs_of(call(atelier, "png_info", {"image": data_url}))
    assert read["prompt"] == "a lighthouse at dusk, from an agent" and read["seed"] == 7, read


def test_a_tool_call_naming_a_server_file_is_refused(atelier):
    """Gradio's MCP server would have its own client read and upload a FileData's path on the server."""
    stored = next(atelier.settings.data_dir.rglob("*.png"))
    named = {"path": str(stored), "meta": {"_type": "gradio.FileData"}}
    refused = httpx.post(mcp_url(atelier), headers={"Accept": "application/json, text/event-stream"}, timeout=60,
                         json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": {"name": "png_info", "arguments": {"image": named}}})
    assert refused.status_code == 400 and "data: URL" in refused.json()["error"], refused.text


def test_accounts_mode_refuses_mcp_without_an_api_key(accounts_app, make_user):
    for headers, says in (({}, "needs an API key"), ({"Authorization": "Bearer atl_not-a-real-key"}, "not valid")):
        refused = httpx.post(mcp_url(accounts_app), headers={**headers, "Accept": "application/json, text/event-stream"},
                             json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=60)
        assert refused.status_code == 401, refused.text
        assert says in refused.json()["error"]
    with pytest.raises(BaseException):      # the client gives up at the 401 (as an exception group)
        tools_of(accounts_app)


def test_accounts_mode_runs_tools_as_the_key_s_owner(accounts_app, make_user):
    from storage.models import Job

    user, key = make_user(balance=10)
    tools = tools_of(accounts_app, key)
    assert "txt2img" in tools and not [n for n in tools if NEVER.search(n)], sorted(tools)
    assert set(tools) <= GENERATION | JOBS | ARTIFACTS | ALSO_OFFERED, sorted(tools)    # no Admin, no billing
    _, info = outputs_of(call(accounts_app, "txt2img", {"prompt": "an agent's picture", "seed": 3}, key))
    wait_until(lambda: Job.get_by_id(info["job_id"]).status == "succeeded", "the agent's job to succeed", 600)
    assert Job.get_by_id(info["job_id"]).owner_id == user.id and info["credits"] > 0

    _, someone_else = make_user(balance=10)
    theirs = call(accounts_app, "job_status", {"job_id": info["job_id"]}, someone_else)
    assert theirs.isError and theirs.content[0].text.startswith("No job"), theirs.content     # "not found"


def test_the_setting_turns_it_off_and_is_on_by_default():
    from configs import load_settings

    assert load_settings(environ={}).mcp is True
    assert load_settings(environ={"ATELIER_MCP": "0"}).mcp is False
