"""CredVault and ParamStore: `$secret` resolution cost (directly over the bus and inside a
workflow), param get p50, and 10,000 params listed recursively under one prefix.

Runs an in-process runtime on a temporary data dir (SQLite, synchronous=FULL as shipped).
Every secret resolution writes its audit row in the same transaction as the read (fail
closed), so a resolution costs one group-committed write; there is no data-key cache (see
`aionix/vault/service.py`)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aionix import config as configlib
from aionix.bus import CallContext
from aionix.params.models import PutParam
from aionix.runtime import Runtime
from aionix.vault.models import CreateSecret
from bench.table import percentile, print_table


async def _runtime(tmp: Path) -> Runtime:
    cfg = configlib.load(
        None,
        env={},
        overrides={
            "database.data_path": str(tmp / "data"),
            "security.credentials_file": str(tmp / "credentials"),
            "logging.level": "WARNING",
        },
    )
    rt = Runtime(cfg)
    await rt.start()
    return rt


async def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - started)
    return out


async def _secrets(rt: Runtime, figures: dict[str, Any]) -> None:
    vault = rt.services["vault"]
    for i in range(5):
        await vault.create(
            "default", None, CreateSecret(name=f"bench_pw{i}", type="password", value=f"bench-value-{i}-0123456789")
        )
    ctx = CallContext(tenant="default")
    target = "trn:credvault:default:credential/bench_pw0"
    payload = {"op": "resolve", "reader": "trn:stepflow:default:execution/bench"}

    async def one() -> None:
        await rt.bus.invoke(target, payload, ctx)

    samples = await _timed(one, 500)
    figures["secret_resolve_p50_us"] = round(percentile(samples, 50) * 1e6, 1)
    figures["secret_resolve_p99_us"] = round(percentile(samples, 99) * 1e6, 1)
    total = 4000
    counter = iter(range(total))

    async def worker() -> None:
        for _ in counter:
            await rt.bus.invoke(target, payload, ctx)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(64)))
    elapsed = time.perf_counter() - started
    figures["secret_resolves_per_s_64_concurrent"] = round(total / elapsed)
    figures["secret_resolve_amortized_us_64_concurrent"] = round(elapsed / total * 1e6, 1)


async def _workflow(rt: Runtime, figures: dict[str, Any]) -> None:
    stepflow = rt.services.get("stepflow")
    if stepflow is None or not rt.bus.has_target("trn:stepflow:default:template/x"):
        figures["workflow_secret_resolution_us"] = None
        return
    plain = {
        "entry": "S",
        "states": {"S": {"type": "set", "value": {f"v{i}": f"literal-{i}" for i in range(5)}, "end": True}},
    }
    secret = {
        "entry": "S",
        "states": {
            "S": {
                "type": "set",
                "value": {f"v{i}": "{% $secret.bench_pw" + str(i) + " %}" for i in range(5)},
                "end": True,
            }
        },
    }
    await stepflow.create_template("default", "bench-plain", plain, None)
    await stepflow.create_template("default", "bench-secret", secret, None)
    ctx = CallContext(tenant="default")

    def run(name: str):
        async def go() -> None:
            envelope = await rt.bus.invoke(f"trn:stepflow:default:template/{name}", {"input": {}, "mode": "sync"}, ctx)
            assert envelope["status"] == "SUCCEEDED", envelope

        return go

    await _timed(run("bench-plain"), 20)
    await _timed(run("bench-secret"), 20)
    base = await _timed(run("bench-plain"), 200)
    with_secrets = await _timed(run("bench-secret"), 200)
    p50_base, p50_secret = percentile(base, 50), percentile(with_secrets, 50)
    figures["workflow_p50_ms_no_secrets"] = round(p50_base * 1e3, 3)
    figures["workflow_p50_ms_5_secrets"] = round(p50_secret * 1e3, 3)
    figures["workflow_secret_resolution_us"] = round((p50_secret - p50_base) / 5 * 1e6, 1)


async def _params(rt: Runtime, figures: dict[str, Any]) -> None:
    params = rt.services["params"]
    await params.put("default", "/bench/db/host", None, PutParam(value="db.internal"))
    await params.put("default", "/bench/db/port", None, PutParam(type="number", value=5432))
    await params.put(
        "default",
        "/bench/db/url",
        None,
        PutParam(value="{% $param('/bench/db/host') & ':' & $string($param('/bench/db/port')) %}"),
    )
    ctx = CallContext(tenant="default")

    def get(path: str):
        async def go() -> None:
            await rt.bus.invoke(f"trn:paramstore:default:param{path}", {"op": "get"}, ctx)

        return go

    static = await _timed(get("/bench/db/host"), 2000)
    dynamic = await _timed(get("/bench/db/url"), 1000)
    figures["param_get_p50_us"] = round(percentile(static, 50) * 1e6, 1)
    figures["param_get_p99_us"] = round(percentile(static, 99) * 1e6, 1)
    figures["param_get_dynamic_p50_us"] = round(percentile(dynamic, 50) * 1e6, 1)

    total = 10_000
    counter = iter(range(total))

    async def writer() -> None:
        for i in counter:
            await params.put(
                "default", f"/tree/svc{i % 100}/group{(i // 100) % 10}/key{i}", None, PutParam(type="number", value=i)
            )

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(64)))
    figures["param_puts_per_s_64_concurrent"] = round(total / (time.perf_counter() - started))
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        result = await params.tree("default", "/tree", evaluate=False)
        samples.append(time.perf_counter() - started)
        assert result["count"] == total
    figures["recursive_list_10000_ms"] = round(min(samples) * 1e3, 1)
    figures["recursive_list_10000_ms_median"] = round(percentile(samples, 50) * 1e3, 1)


async def _main() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rt = await _runtime(Path(tmp))
        try:
            await _secrets(rt, figures)
            await _workflow(rt, figures)
            await _params(rt, figures)
        finally:
            await rt.stop()
    return figures


def run() -> dict:
    figures = asyncio.run(_main())
    print_table([(k, v if v is not None else "n/a", "") for k, v in figures.items()])
    return figures
