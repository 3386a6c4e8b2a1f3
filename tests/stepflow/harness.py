"""In-process StepFlow harness: a real SQLite store and bus, no HTTP (engine tests)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pgstore

from aionix import config as configlib
from aionix.bus import BusError
from aionix.runtime import Runtime
from aionix.stepflow.service import StepFlowService

_names = itertools.count()


class Harness:
    def __init__(self, root: Path, **stepflow: Any) -> None:
        cfg = configlib.load(env=pgstore.store_env(str(root)), overrides={"database.data_path": str(root)})
        cfg.stepflow = stepflow
        self.rt = Runtime(cfg)
        self.svc: StepFlowService | None = None
        self.calls: list[tuple[str, Any, str | None]] = []
        self.events: list[tuple[str, str, Any]] = []

    async def start(self) -> Harness:
        self.rt.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.rt.store.start()
        self.svc = StepFlowService(self.rt)
        self.rt.services["stepflow"] = self.svc
        self.rt.bus.register_trn("stepflow", "template", self.svc.execute)

        async def sink(tenant: str, source: str, type_: str, detail: Any) -> None:
            self.events.append((type_, detail["status"], detail))

        self.rt.event_sinks.append(sink)
        self._register_actions()
        await self.svc.startup()
        return self

    def _register_actions(self) -> None:
        bus = self.rt.bus

        async def echo(target: Any, payload: Any, ctx: Any) -> Any:
            self.calls.append(("echo", payload, ctx.idempotency_key))
            return payload

        async def fail(target: Any, payload: Any, ctx: Any) -> Any:
            self.calls.append(("fail", payload, ctx.idempotency_key))
            p = payload if isinstance(payload, dict) else {}
            raise BusError(p.get("error", "Test.Boom"), p.get("cause", "it broke"))

        async def flaky(target: Any, payload: Any, ctx: Any) -> Any:
            """Fails until its attempt number reaches payload.succeed_on."""
            self.calls.append(("flaky", payload, ctx.idempotency_key))
            attempt = ctx.extra["attempt"]
            if attempt < payload.get("succeed_on", 2):
                raise BusError("Test.Flaky", f"attempt {attempt}")
            return {"attempt": attempt}

        async def sleep(target: Any, payload: Any, ctx: Any) -> Any:
            self.calls.append(("sleep", payload, ctx.idempotency_key))
            await asyncio.sleep(payload.get("seconds", 10))
            return {"slept": payload.get("seconds", 10)}

        for name, fn in {"echo": echo, "fail": fail, "flaky": flaky, "sleep": sleep}.items():
            bus.register_kind(name, fn)

    async def stop(self) -> None:
        assert self.svc is not None
        await self.svc.shutdown()
        for task in list(self.rt._tasks):
            task.cancel()
        await asyncio.gather(*self.rt._tasks, return_exceptions=True)
        await self.rt.store.close()

    async def define(self, definition: dict[str, Any], name: str | None = None) -> str:
        name = name or f"wf{next(_names)}"
        assert self.svc is not None
        await self.svc.create_template("default", name, definition, None)
        return name

    async def run(self, definition_or_name: Any, input: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        name = definition_or_name if isinstance(definition_or_name, str) else await self.define(definition_or_name)
        assert self.svc is not None
        envelope, _ = await self.svc.start("default", name, input, mode="async")
        return await self.wait(envelope["execution_id"], timeout)

    async def wait(self, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.svc is not None
        return await asyncio.wait_for(self.svc.wait_terminal(execution_id), timeout)

    async def history(self, execution_id: str) -> list[dict[str, Any]]:
        assert self.svc is not None
        return (await self.svc.history("default", execution_id, 0, 10_000))["items"]
