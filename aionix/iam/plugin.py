"""Registers identity: users and groups, sign-in (local and OIDC) and access tokens.

Loaded right after the vault (its signing keys are sealed by a system key); once the keys are
loaded, the API's authenticator accepts access tokens beside API keys.
"""

from __future__ import annotations

import asyncio
import logging

from aionix.api.endpoint import Api
from aionix.iam.oidc import OidcFlow
from aionix.iam.tokens import AuthConfig, TokenService
from aionix.iam.tokens_routes import api as auth_api
from aionix.iam.users import UsersService
from aionix.iam.users_routes import api as users_api
from aionix.runtime import Runtime, ServicePlugin

log = logging.getLogger("aionix.iam")


class IamService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cfg: AuthConfig = rt.config.service_section("auth", AuthConfig)
        self.tokens = TokenService(rt, self.cfg)
        self.users = UsersService(rt, self.cfg, self.tokens)
        self.oidc = OidcFlow(rt, self.cfg.oidc, self.users, self.tokens)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.tokens.load_keys()
        self.rt.authenticator.tokens = self.tokens
        self._task = self.rt.spawn(self._housekeeping(), "aionix-iam-housekeeping")

    async def stop(self) -> None:
        self.rt.authenticator.tokens = None
        if self._task is not None:
            self._task.cancel()

    async def _housekeeping(self) -> None:
        """Rotate the signing key when due; drop refresh tokens a day past their expiry."""
        while True:
            await asyncio.sleep(min(3600.0, self.cfg.signing_key_rotation_days * 86_400 / 4))
            try:
                await self.tokens.load_keys()
                await self.tokens.prune()
            except Exception:
                log.exception("identity housekeeping failed")


def create(rt: Runtime) -> ServicePlugin:
    from aionix.iam import tags

    tags.register(rt)  # the tags policies' `tags` condition reads (aionix/iam/tags.py)
    svc = IamService(rt)
    api = Api("iam")
    api.endpoints = [*auth_api.endpoints, *users_api.endpoints]
    return ServicePlugin(name="iam", service=svc, api=api, start=svc.start, stop=svc.stop)
