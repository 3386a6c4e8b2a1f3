"""The PostgreSQL store against the SQLite store, one node each, over HTTP (issue 17 part 1).

The same server process and workloads as bench/throughput.py, once on SQLite (synchronous=FULL
as shipped) and once on a local PostgreSQL from Debian's package with fsync=on and
synchronous_commit=on (every acknowledged write flushed):

- chain10 p50: one client, 10 chained `set` states, `mode: sync`, start to SUCCEEDED
- parallel3 p50: one client, 3 branches of one `transform` task
- chain10, 50 clients, sync: durable transitions/s, and the server's CPU per transition
- the PostgreSQL server's own CPU per transition (its backends' utime+stime)

    python -m bench pgstore      # results in bench/results/pgstore.json
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.table import percentile, print_table
from bench.throughput import Conn, chain, closed_loop, cpu_seconds, latency

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import ServerProcess

SECONDS = 8.0
NO_RATE_LIMIT = {  # the benchmark's only departure from the defaults
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "1000000",
}


_TRANSFORM = {
    "type": "task",
    "action": "transform",
    "parameters": {"expression": "{'v': v + 1}", "data": "{% input %}"},
    "end": True,
}
PARALLEL3 = {
    "entry": "P",
    "states": {
        "P": {
            "type": "parallel",
            "branches": [{"entry": f"B{i}", "states": {f"B{i}": _TRANSFORM}} for i in range(3)],
            "end": True,
        }
    },
}


def _pg_cpu(root: Path) -> float:
    """CPU seconds of the PostgreSQL server in `root` (its postmaster and every child of it)."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        master = int((root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if int(proc.name) == master or int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def _bench(server: ServerProcess, pg_root: Path | None) -> dict[str, Any]:
    port, key = server.port, server.admin_key
    assert port is not None and key is not None
    pid = server.proc.pid  # type: ignore[union-attr]
    conn = Conn(port, key)
    for name, definition in (("chain10", chain(10)), ("parallel3", PARALLEL3)):
        status, body = await conn.request("POST", "/api/v1/workflows", {"name": name, "definition": definition})
        if status != 201:
            raise RuntimeError(f"{status}: {body}")
    conn.close()
    out: dict[str, Any] = {"load1_before": round(os.getloadavg()[0], 2)}
    await latency(port, key, "chain10", 20)
    await latency(port, key, "parallel3", 20)
    lat = await latency(port, key, "chain10", 200)
    out["chain10_p50_ms"] = round(percentile(lat, 50), 2)
    out["chain10_p99_ms"] = round(percentile(lat, 99), 2)
    lat = await latency(port, key, "parallel3", 200)
    out["parallel3_p50_ms"] = round(percentile(lat, 50), 2)
    out["parallel3_p99_ms"] = round(percentile(lat, 99), 2)
    c0, p0 = cpu_seconds(pid), _pg_cpu(pg_root) if pg_root else 0.0
    n, elapsed = await closed_loop(port, key, "chain10", "sync", SECONDS)
    cpu, pg_cpu = cpu_seconds(pid) - c0, (_pg_cpu(pg_root) - p0) if pg_root else 0.0
    out["chain10_sync_transitions_per_s"] = round(n * 10 / elapsed)
    out["chain10_sync_server_cpu_us_per_transition"] = round(cpu * 1e6 / (n * 10), 1)
    if pg_root:
        out["chain10_sync_postgres_cpu_us_per_transition"] = round(pg_cpu * 1e6 / (n * 10), 1)
    out["load1_after"] = round(os.getloadavg()[0], 2)
    return out


def measure() -> dict[str, Any]:
    from connectors.services import start_postgres

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), env={**NO_RATE_LIMIT, "AIONIX_DATABASE_URL": ""}).start(60)
        try:
            figures["sqlite"] = asyncio.run(_bench(server, None))
        finally:
            server.stop()
    pg = start_postgres(fsync=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "AIONIX_DATABASE_URL": f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{pg.database}",
                "AIONIX_DATABASE_PASSWORD": pg.password,
            }
            server = ServerProcess(Path(tmp), env={**NO_RATE_LIMIT, **env}).start(60)
            try:
                figures["postgres"] = asyncio.run(_bench(server, pg.root))
                figures["postgres"]["server"] = pg.psql("SHOW server_version").strip()
                figures["postgres"]["synchronous_commit"] = pg.psql("SHOW synchronous_commit").strip()
                figures["postgres"]["fsync"] = pg.psql("SHOW fsync").strip()
            finally:
                server.stop()
    finally:
        pg.stop()
    s, p = figures["sqlite"], figures["postgres"]
    figures["postgres_over_sqlite_throughput"] = round(
        p["chain10_sync_transitions_per_s"] / max(s["chain10_sync_transitions_per_s"], 1), 2
    )
    return figures


def run() -> dict[str, Any]:
    f = measure()
    s, p = f["sqlite"], f["postgres"]
    print_table(
        [
            ("chain10 p50 (1 client), SQLite / PostgreSQL", f"{s['chain10_p50_ms']} / {p['chain10_p50_ms']}", "ms"),
            ("parallel3 p50, SQLite / PostgreSQL", f"{s['parallel3_p50_ms']} / {p['parallel3_p50_ms']}", "ms"),
            (
                "chain10 sync, 50 clients, SQLite / PostgreSQL",
                f"{s['chain10_sync_transitions_per_s']} / {p['chain10_sync_transitions_per_s']}",
                "durable transitions/s",
            ),
            (
                "server CPU, SQLite / PostgreSQL node",
                f"{s['chain10_sync_server_cpu_us_per_transition']} / {p['chain10_sync_server_cpu_us_per_transition']}",
                "µs/transition",
            ),
            ("PostgreSQL server CPU", p["chain10_sync_postgres_cpu_us_per_transition"], "µs/transition"),
            ("load average (1 min), SQLite run", f"{s['load1_before']}/{s['load1_after']}", "before/after"),
            ("load average (1 min), PostgreSQL run", f"{p['load1_before']}/{p['load1_after']}", "before/after"),
        ]
    )
    return f
