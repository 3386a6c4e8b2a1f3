"""Registers CredVault: its routes, the `credvault:credential` bus executor and resolver."""

from __future__ import annotations

from aionix.runtime import Runtime, ServicePlugin
from aionix.vault.routes import api
from aionix.vault.service import VaultService


def create(rt: Runtime) -> ServicePlugin:
    svc = VaultService(rt)
    rt.bus.register_trn("credvault", "credential", svc.execute)
    rt.resolvers[("credvault", "credential")] = svc.resolve_metadata
    return ServicePlugin(name="vault", service=svc, api=api, start=svc.start, stop=svc.stop)
