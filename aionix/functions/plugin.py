"""Wires the functions service into the runtime: routes, the bus executor, start/stop."""

from __future__ import annotations

from aionix.functions.routes import api
from aionix.functions.service import FunctionsService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = FunctionsService(rt)
    rt.bus.register_trn("aionixfn", "function", svc.execute)
    return ServicePlugin(name="functions", service=svc, api=api, start=svc.start, stop=svc.stop)
