"""Wiring the triggers service into the runtime."""

from __future__ import annotations

from aionix.runtime import Runtime, ServicePlugin
from aionix.triggers.routes import api
from aionix.triggers.service import TriggerService


def create(rt: Runtime) -> ServicePlugin:
    svc = TriggerService(rt)
    return ServicePlugin(name="triggers", service=svc, api=api, start=svc.start, stop=svc.stop)
