"""Wires StepFlow into the runtime: routes, the template executor on the bus, TRN resolvers."""

from __future__ import annotations

from aionix.runtime import Runtime, ServicePlugin
from aionix.stepflow.routes import api
from aionix.stepflow.service import StepFlowService


def create(rt: Runtime) -> ServicePlugin:
    svc = StepFlowService(rt)
    rt.bus.register_trn("stepflow", "template", svc.execute)
    rt.resolvers[("stepflow", "template")] = svc.resolve
    rt.resolvers[("stepflow", "execution")] = svc.resolve
    return ServicePlugin(name="stepflow", service=svc, api=api, start=svc.startup, stop=svc.shutdown)
