"""`aio mcp`: the SDK's own client over stdio, against the CLI's MCP proxy to a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import unique

WF = {"entry": "Echo", "states": {"Echo": {"type": "set", "value": "{% input %}", "end": True}}}


@asynccontextmanager
async def stdio_client(url: str, key: str) -> Any:
    from mcp import Client, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update({"AIONIX_URL": url, "AIONIX_API_KEY": key, "AIONIX_SECURITY_CREDENTIALS_FILE": os.devnull})
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "aio"), args=["mcp"], env=env)
    async with Client(params, cache=None) as client:
        yield client


async def test_stdio_tools_per_role_and_calls(mcp_server, keys, admin_http):
    name = unique("stdiowf")
    assert admin_http.post("/api/v1/workflows", json={"name": name, "definition": WF}).status_code == 201
    async with stdio_client(mcp_server.url, keys["viewer"]) as viewer:
        names = {t.name for t in (await viewer.list_tools()).tools}
        assert "resources.list" in names and f"workflow.{name}" not in names
    async with stdio_client(mcp_server.url, keys["operator"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert f"workflow.{name}" in names
        result = await client.call_tool(f"workflow.{name}", {"input": {"n": 7}, "mode": "sync"})
        assert not result.is_error and result.structured_content["output"] == {"n": 7}
        schema = await client.read_resource("aionix://schema/dsl")
        assert "StepFlow" in schema.contents[0].text
        # list changes on the server reach the stdio client
        later = unique("stdionew")
        async with client.listen(tools_list_changed=True) as sub:
            assert admin_http.post("/api/v1/workflows", json={"name": later, "definition": WF}).status_code == 201
            with anyio.fail_after(15):
                async for event in sub:
                    if type(event).__name__ == "ToolsListChanged":
                        break
        assert f"workflow.{later}" in {t.name for t in (await client.list_tools()).tools}
    audit = admin_http.get("/api/v1/audit", params={"limit": 500}).json()["items"]
    assert any(a["action"] == f"mcp tools/call workflow.{name}" for a in audit)


async def test_stdio_bad_key_fails_cleanly(mcp_server):
    with pytest.raises(BaseException):  # noqa: B017 - the proxy exits: the SDK raises a connection error group
        async with stdio_client(mcp_server.url, "aio_" + "y" * 43) as client:
            await client.list_tools()
    # run directly, `aio mcp` says why in one line and exits with the CLI's auth status (3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update(
        {
            "AIONIX_URL": mcp_server.url,
            "AIONIX_API_KEY": "aio_" + "y" * 43,
            "AIONIX_SECURITY_CREDENTIALS_FILE": os.devnull,
        }
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "aio"), "mcp"], input="", capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.startswith("aio: error 401 unauthorized") and proc.stderr.count("\n") == 1
    env["AIONIX_URL"] = "http://127.0.0.1:1"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "aio"), "mcp"], input="", capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 5 and "cannot reach the server" in proc.stderr
