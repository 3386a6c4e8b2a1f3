"""The executor-bus contract, in process: `trn:aionixfn:{tenant}:function/{name}[:{qualifier}]`
returns the handler's result, raises `BusError` with the function error names, passes the
caller's idempotency key, and publishes `Function Invocation Failed` events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from aionix.bus import BusError, CallContext
from aionix.config import load
from aionix.functions.models import CreateFunction
from aionix.runtime import Runtime

SOURCE = """
import time

def handler(event, context):
    if event.get("fail"):
        raise LookupError("nothing here")
    if event.get("slow"):
        time.sleep(5)
    return {"key": context.idempotency_key, "version": context.function_version, "echo": event}
"""


def test_bus_executor_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "credentials"))

    async def scenario() -> None:
        env = {"AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp_path / "credentials")}
        rt = Runtime(load(None, env=env, overrides={"database.data_path": str(tmp_path / "data")}))
        await rt.start()
        events: list[tuple[str, str, str, Any]] = []

        async def sink(tenant: str, source: str, type: str, detail: Any) -> None:
            events.append((tenant, source, type, detail))

        rt.event_sinks.append(sink)
        try:
            svc = rt.services["functions"]
            await svc.create(
                "default",
                CreateFunction.model_validate(
                    {"name": "busfn", "runtime": "python", "code": {"source": SOURCE}, "limits": {"timeout_seconds": 1}}
                ),
            )
            ctx = CallContext(tenant="default", idempotency_key="exec-9:Task:2")
            result = await rt.bus.invoke("trn:aionixfn:default:function/busfn:1", {"a": 1}, ctx)
            assert result == {"key": "exec-9:Task:2", "version": "1", "echo": {"a": 1}}
            assert (await rt.bus.invoke("trn:aionixfn:default:function/busfn", {}, ctx))["version"] == "$LATEST"
            with pytest.raises(BusError) as failed:
                await rt.bus.invoke("trn:aionixfn:default:function/busfn", {"fail": True}, ctx)
            assert failed.value.error == "Function.Error.LookupError" and "nothing here" in failed.value.cause
            with pytest.raises(BusError) as slow:
                await rt.bus.invoke("trn:aionixfn:default:function/busfn", {"slow": True}, ctx)
            assert slow.value.error == "Function.Timeout"
            with pytest.raises(Exception, match="not found"):
                await rt.bus.invoke("trn:aionixfn:default:function/absent", {}, ctx)
            failures = [e for e in events if e[2] == "Function Invocation Failed"]
            assert [e[3]["error"] for e in failures] == ["Function.Error.LookupError", "Function.Timeout"]
            assert all(e[0] == "default" and e[1] == "aionix.functions" for e in failures)
            assert rt.health["confinement"]["python"]["available"] is True
            # retention: records and logs older than the cut-off go, the function stays
            assert (await svc.records.list("default", "busfn", 50, None))["items"]
            await svc.records.prune(time.time() + 1)
            assert (await svc.records.list("default", "busfn", 50, None))["items"] == []
            logs = await svc.records.logs("default", "busfn", invocation_id=None, after=None, since=None, limit=50)
            assert logs["items"] == []
            assert (await svc.get("default", "busfn"))["name"] == "busfn"
            assert (tmp_path / "data").stat().st_mode & 0o077 == 0, "the data dir denies other users"
        finally:
            await rt.stop()

    asyncio.run(scenario())
