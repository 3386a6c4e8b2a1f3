"""Registers the AI service: its routes and the `ai` action kind / `trn:ai:{tenant}:intent/NAME`
bus executors (AI steps in workflows)."""

from __future__ import annotations

from aionix.ai.routes import api
from aionix.ai.service import AiService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = AiService(rt)
    rt.bus.register_kind("ai", svc.execute_kind)
    rt.bus.register_trn("ai", "intent", svc.execute_trn)
    return ServicePlugin(name="ai", service=svc, api=api, start=svc.start, stop=svc.stop)
