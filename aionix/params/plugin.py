"""Registers ParamStore: its routes, the `paramstore:param` bus executor and resolver."""

from __future__ import annotations

from aionix.params.routes import api
from aionix.params.service import ParamsService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    svc = ParamsService(rt)
    rt.bus.register_trn("paramstore", "param", svc.execute)
    rt.resolvers[("paramstore", "param")] = svc.resolve_metadata
    return ServicePlugin(name="params", service=svc, api=api, start=svc.start, stop=svc.stop)
