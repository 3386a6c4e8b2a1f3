"""Wires OpenAct into the runtime: bus executors for every kind and for action/connection TRNs."""

from __future__ import annotations

import logging

from aionix.connectors.routes import api
from aionix.connectors.service import ConnectorsService
from aionix.runtime import Runtime, ServicePlugin


def create(rt: Runtime) -> ServicePlugin:
    # httpx logs every request's full URL at INFO; outbound URLs can carry credentials (a
    # webhook URL, an API key query parameter), which must never reach the logs (S3).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    svc = ConnectorsService(rt)
    for kind in svc.kinds:
        rt.bus.register_kind(kind, svc.execute_kind)
    rt.bus.register_trn("openact", "action", svc.execute_action_trn)
    rt.bus.register_trn("openact", "connection", svc.execute_connection)
    rt.resolvers[("openact", "connection")] = svc.resolve_connection
    rt.resolvers[("openact", "action")] = svc.resolve_action
    return ServicePlugin(name="connectors", service=svc, api=api, start=svc.start, stop=svc.stop)
