"""Wires the modules service into the runtime: routes and the `trn:modules:{tenant}:module/NAME[:VERSION]`
bus executor (workflow tasks, the AI router's local route)."""

from __future__ import annotations

from aionix.modules.routes import api
from aionix.modules.service import ModulesService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = ModulesService(rt)
    rt.bus.register_trn("modules", "module", svc.execute)
    return ServicePlugin(name="modules", service=svc, api=api, start=svc.start, stop=svc.stop)
