"""`aio mcp`: an MCP server on stdin/stdout for desktop agents, proxying to a server's `/mcp`
with the CLI's profile (URL and API key). Tools, resources and prompts are the server's, for
that key: the same roles, tenant, audit trail and list-changed notifications (the remote
`subscriptions/listen` stream is relayed to local listeners)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared._httpx_utils import create_mcp_http_client

from aionix import __version__

log = logging.getLogger("aionix.mcp")


def build_proxy(remote: Client, bus: InMemorySubscriptionBus) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> Any:
        return await remote.list_tools()

    async def call_tool(ctx: Any, params: Any) -> Any:
        return await remote.call_tool(params.name, dict(params.arguments or {}))

    async def list_resources(ctx: Any, params: Any) -> Any:
        return await remote.list_resources()

    async def list_templates(ctx: Any, params: Any) -> Any:
        return await remote.list_resource_templates()

    async def read_resource(ctx: Any, params: Any) -> Any:
        return await remote.read_resource(str(params.uri))

    async def list_prompts(ctx: Any, params: Any) -> Any:
        return await remote.list_prompts()

    async def get_prompt(ctx: Any, params: Any) -> Any:
        return await remote.get_prompt(params.name, dict(params.arguments or {}))

    return Server(
        "aionix",
        version=__version__,
        instructions=remote.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_subscriptions_listen=ListenHandler(bus),
    )


async def serve_stdio(url: str, api_key: str, tenant: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "aio-mcp"}
    if tenant:
        headers["X-Aionix-Tenant"] = tenant
    http = create_mcp_http_client(headers=headers)
    bus = InMemorySubscriptionBus()
    async with http, Client(streamable_http_client(url.rstrip("/") + "/mcp", http_client=http), cache=None) as remote:
        server = build_proxy(remote, bus)

        async def relay() -> None:
            async with remote.listen(tools_list_changed=True, resources_list_changed=True) as sub:
                async for event in sub:
                    await bus.publish(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(relay)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
            tg.cancel_scope.cancel()
