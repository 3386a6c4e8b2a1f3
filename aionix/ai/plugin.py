"""Registers the AI service: its routes (HTTP, and the WebSocket `GET /api/v1/ws`), the optional
gRPC server (`[ai] grpc_port`, extra aionix[grpc]) and the `ai` action kind /
`trn:ai:{tenant}:intent/NAME` bus executors (AI steps in workflows)."""

from __future__ import annotations

from aionix.ai import ws
from aionix.ai.routes import api
from aionix.ai.service import AiService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = AiService(rt)
    rt.bus.register_kind("ai", svc.execute_kind)
    rt.bus.register_trn("ai", "intent", svc.execute_trn)
    return ServicePlugin(name="ai", service=svc, api=api, routes=ws.routes, start=svc.start, stop=svc.stop)
