"""Connectors: the overhead of a call through the executor bus and a connector over the raw
client, against the same loopback server — HTTP GET p50/p99 and calls/s with 16 concurrent
callers (as 16 workflow tasks would), and a PostgreSQL `query` p50 (a real server from
Debian's packages, started here). Target: ≤ 0.3 ms p50 overhead over the raw client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from aionix import config as configlib
from aionix.bus import Bus, CallContext
from aionix.connectors.service import ConnectorsService
from aionix.store.sqlite import SQLiteStore
from bench.table import percentile, print_table

ROOT = Path(__file__).resolve().parents[1]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The loopback target: a fixed small JSON answer."""
    if scope["type"] != "http":
        return
    body = b'{"ok": true, "items": [1, 2, 3]}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _start_target() -> tuple[subprocess.Popen[bytes], str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from serverproc import free_port

    port = free_port()
    code = f"import uvicorn; uvicorn.run('bench.connectors:app', host='127.0.0.1', port={port}, log_level='error', access_log=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc, f"http://127.0.0.1:{port}/"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the loopback target did not start")


async def _service(tmp: Path) -> tuple[ConnectorsService, SQLiteStore]:
    cfg = configlib.load(env={"AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1", "AIONIX_DATABASE_DATA_PATH": str(tmp)})
    store = SQLiteStore(tmp / "bench.db", synchronous="NORMAL")
    await store.start()
    bus = Bus()
    rt = SimpleNamespace(config=cfg, store=store, bus=bus, health={}, base_url="", services={})
    svc = ConnectorsService(rt)  # type: ignore[arg-type]
    for kind in svc.kinds:
        bus.register_kind(kind, svc.execute_kind)
    return svc, store


CPU: dict[str, float] = {}


async def _timed(fn: Any, n: int, label: str | None = None) -> list[float]:
    """Wall-clock milliseconds per call; the process's CPU time per call goes to CPU[label]
    (on a busy shared machine the CPU time is the steadier measure of our own cost)."""
    out = []
    cpu = time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    if label:
        CPU[label] = CPU.get(label, 0.0) + (time.process_time() - cpu) * 1000
    return out


async def _throughput(fn: Any, workers: int, per_worker: int) -> float:
    async def worker() -> None:
        for _ in range(per_worker):
            await fn()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return workers * per_worker / (time.perf_counter() - t)


async def _http(url: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        svc, store = await _service(Path(d))
        bus = svc.rt.bus
        ctx = CallContext(tenant="bench")
        raw = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=10, max_connections=40))

        async def raw_call() -> None:
            r = await raw.get(url)
            r.raise_for_status()
            r.json()

        async def bus_call() -> None:
            await bus.invoke("http", {"url": url}, ctx)

        await _timed(raw_call, 200)
        await _timed(bus_call, 200)
        raw_ms: list[float] = []
        bus_ms: list[float] = []
        for _ in range(5):  # interleaved rounds, so drift on a shared machine hits both alike
            raw_ms += await _timed(raw_call, n // 5, "http_raw")
            bus_ms += await _timed(bus_call, n // 5, "http_bus")
        raw_rps = await _throughput(raw_call, 16, n // 16)
        bus_rps = await _throughput(bus_call, 16, n // 16)
        await raw.aclose()
        await svc.stop()
        await store.close()
    return {
        "raw_p50": percentile(raw_ms, 50),
        "raw_p99": percentile(raw_ms, 99),
        "bus_p50": percentile(bus_ms, 50),
        "bus_p99": percentile(bus_ms, 99),
        "raw_rps": raw_rps,
        "bus_rps": bus_rps,
        "raw_cpu": CPU["http_raw"] / n,
        "bus_cpu": CPU["http_bus"] / n,
    }


async def _postgres(n: int) -> dict[str, float] | None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from connectors.services import start_postgres
    except ImportError:
        return None
    try:
        pg = start_postgres()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  (PostgreSQL not available: {exc}; skipped)")
        return None
    try:
        import asyncpg

        with tempfile.TemporaryDirectory() as d:
            svc, store = await _service(Path(d))

            async def resolve(target: Any, payload: Any, ctx: CallContext) -> str:
                return pg.password

            svc.rt.bus.register_trn("credvault", "credential", resolve)
            body = SimpleNamespace(
                name="pg",
                kind="sql",
                description="",
                config={
                    "driver": "postgres",
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "database": pg.database,
                    "user": pg.user,
                    "password_secret": "pg-pw",
                },
            )
            await svc.create_connection("bench", body, "admin")
            ctx = CallContext(tenant="bench")
            pool = await asyncpg.create_pool(
                host="127.0.0.1",
                port=pg.port,
                user=pg.user,
                password=pg.password,
                database=pg.database,
                min_size=1,
                max_size=5,
            )

            async def raw_call() -> None:
                async with pool.acquire() as conn:
                    [dict(r) for r in await conn.fetch("SELECT 1 AS one, 'x' AS two")]

            async def bus_call() -> None:
                await svc.rt.bus.invoke("sql", {"connection": "pg", "sql": "SELECT 1 AS one, 'x' AS two"}, ctx)

            await _timed(raw_call, 100)
            await _timed(bus_call, 100)
            raw_ms: list[float] = []
            bus_ms: list[float] = []
            for _ in range(5):
                raw_ms += await _timed(raw_call, n // 5, "pg_raw")
                bus_ms += await _timed(bus_call, n // 5, "pg_bus")
            await pool.close()
            await svc.stop()
            await store.close()
        return {
            "raw_p50": percentile(raw_ms, 50),
            "bus_p50": percentile(bus_ms, 50),
            "raw_cpu": CPU["pg_raw"] / n,
            "bus_cpu": CPU["pg_bus"] / n,
        }
    finally:
        pg.stop()


def run() -> dict:
    proc, url = _start_target()
    try:
        http = asyncio.run(_http(url, 2000))
    finally:
        proc.terminate()
        proc.wait(10)
    pg = asyncio.run(_postgres(1000))
    rows = [
        ("http GET raw httpx p50", round(http["raw_p50"], 3), "ms"),
        ("http GET via bus+connector p50", round(http["bus_p50"], 3), "ms"),
        ("http overhead p50", round(http["bus_p50"] - http["raw_p50"], 3), "ms"),
        ("http GET raw httpx p99", round(http["raw_p99"], 3), "ms"),
        ("http GET via bus+connector p99", round(http["bus_p99"], 3), "ms"),
        ("http CPU per call raw", round(http["raw_cpu"], 3), "ms"),
        ("http CPU per call via bus+connector", round(http["bus_cpu"], 3), "ms"),
        ("http calls/s raw, 16 concurrent", round(http["raw_rps"]), "calls/s"),
        ("http calls/s via bus, 16 concurrent", round(http["bus_rps"]), "calls/s"),
    ]
    figures: dict[str, Any] = {
        "http_raw_p50_ms": round(http["raw_p50"], 3),
        "http_bus_p50_ms": round(http["bus_p50"], 3),
        "http_overhead_p50_ms": round(http["bus_p50"] - http["raw_p50"], 3),
        "http_raw_p99_ms": round(http["raw_p99"], 3),
        "http_bus_p99_ms": round(http["bus_p99"], 3),
        "http_raw_cpu_ms": round(http["raw_cpu"], 3),
        "http_bus_cpu_ms": round(http["bus_cpu"], 3),
        "http_raw_calls_per_s_16": round(http["raw_rps"]),
        "http_bus_calls_per_s_16": round(http["bus_rps"]),
    }
    if pg is not None:
        rows += [
            ("postgres query raw asyncpg p50", round(pg["raw_p50"], 3), "ms"),
            ("postgres query via bus+connector p50", round(pg["bus_p50"], 3), "ms"),
            ("postgres overhead p50", round(pg["bus_p50"] - pg["raw_p50"], 3), "ms"),
            ("postgres CPU per call raw", round(pg["raw_cpu"], 3), "ms"),
            ("postgres CPU per call via bus+connector", round(pg["bus_cpu"], 3), "ms"),
        ]
        figures.update(
            {
                "pg_raw_p50_ms": round(pg["raw_p50"], 3),
                "pg_bus_p50_ms": round(pg["bus_p50"], 3),
                "pg_overhead_p50_ms": round(pg["bus_p50"] - pg["raw_p50"], 3),
            }
        )
    print_table(rows)
    return figures
