"""Registers the AI service: its routes (HTTP, and the WebSocket `GET /api/v1/ws`), the optional
gRPC server (`[ai] grpc_port`, extra aionix[grpc]) and the `ai` action kind /
`trn:ai:{tenant}:intent/NAME` bus executors (AI steps in workflows)."""

from __future__ import annotations

from typing import Any

from aionix.ai import ws
from aionix.ai.routes import api
from aionix.ai.service import AiService
from aionix.errors import ConfigError
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = AiService(rt)
    rt.bus.register_kind("ai", svc.execute_kind)
    rt.bus.register_trn("ai", "intent", svc.execute_trn)
    grpc_server: list[Any] = []

    async def start() -> None:
        await svc.start()
        if svc.config.grpc_port:
            try:
                from aionix.ai import grpc_server as grpc_api
            except ModuleNotFoundError as exc:
                if (exc.name or "").split(".")[0] not in ("grpc", "google"):
                    raise
                raise ConfigError(
                    "config error: ai.grpc_port is set but gRPC is not installed (pip install 'aionix[grpc]')"
                ) from None
            grpc_server.append(await grpc_api.serve(svc))

    async def stop() -> None:
        if grpc_server:
            from aionix.ai import grpc_server as grpc_api

            await grpc_api.stop(grpc_server.pop())
        await svc.stop()

    return ServicePlugin(name="ai", service=svc, api=api, routes=ws.routes, start=start, stop=stop)
