"""1, 2 and 3 `aionix` nodes on one PostgreSQL against the SQLite node, over HTTP (issue 17).

The same workloads as bench/pgstore.py, with the clients spread over the nodes (client i talks
to node i mod N; the one-client latency runs go round robin, each request to the next node):

- chain10 p50: one client, 10 chained `set` states, `mode: sync`, start to SUCCEEDED
- parallel3 p50: one client, 3 branches of one `transform` task
- chain10, 50 clients, sync: durable transitions/s
- CPU per transition: every node process's utime+stime over the closed loop, and the PostgreSQL
  server's (postmaster and its backends), from /proc

PostgreSQL is Debian's, local, fsync=on and synchronous_commit=on; every node count gets a fresh
database; nodes have the same master key, a data dir each, and the benchmark's only departure
from the defaults is lifting the API rate limits.

    python -m bench nodes        # results in bench/results/nodes.json
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pgstore import NO_RATE_LIMIT, PARALLEL3, _pg_cpu
from bench.table import percentile, print_table
from bench.throughput import Conn, chain, closed_loop, cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import ServerProcess

SECONDS = 8.0
RUNS = 200


async def _latency(ports: list[int], key: str, workflow: str, runs: int) -> list[float]:
    conns = [Conn(p, key) for p in ports]
    path = f"/api/v1/workflows/{workflow}/executions"
    lat = []
    try:
        for i, conn in zip(range(runs), itertools.cycle(conns), strict=False):
            t0 = time.perf_counter()
            status, body = await conn.request("POST", path, {"input": {"v": i}, "mode": "sync"})
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200 or body["status"] != "SUCCEEDED":
                raise RuntimeError(f"{status}: {body}")
    finally:
        for c in conns:
            c.close()
    return lat


async def _bench(nodes: list[ServerProcess], pg_root: Path | None) -> dict[str, Any]:
    ports = [n.port for n in nodes]
    key = nodes[0].admin_key
    assert key is not None and all(ports)
    conn = Conn(ports[0], key)
    for name, definition in (("chain10", chain(10)), ("parallel3", PARALLEL3)):
        status, body = await conn.request("POST", "/api/v1/workflows", {"name": name, "definition": definition})
        if status != 201:
            raise RuntimeError(f"{status}: {body}")
    conn.close()
    out: dict[str, Any] = {"nodes": len(nodes), "load1_before": round(os.getloadavg()[0], 2)}
    await _latency(ports, key, "chain10", 20)  # warm every node
    await _latency(ports, key, "parallel3", 20)
    lat = await _latency(ports, key, "chain10", RUNS)
    out["chain10_p50_ms"] = round(percentile(lat, 50), 2)
    out["chain10_p99_ms"] = round(percentile(lat, 99), 2)
    lat = await _latency(ports, key, "parallel3", RUNS)
    out["parallel3_p50_ms"] = round(percentile(lat, 50), 2)
    out["parallel3_p99_ms"] = round(percentile(lat, 99), 2)
    pids = [n.proc.pid for n in nodes]  # type: ignore[union-attr]
    c0 = [cpu_seconds(p) for p in pids]
    p0 = _pg_cpu(pg_root) if pg_root else 0.0
    w0 = time.perf_counter()
    n, elapsed = await closed_loop(ports, key, "chain10", "sync", SECONDS)
    wall = time.perf_counter() - w0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, c0, strict=True)]
    pg_cpu = (_pg_cpu(pg_root) - p0) if pg_root else 0.0
    transitions = n * 10
    out["chain10_sync_transitions_per_s"] = round(transitions / elapsed)
    out["node_cpu_us_per_transition"] = round(sum(cpu) * 1e6 / transitions, 1)
    out["node_cpu_share"] = [round(c / sum(cpu), 2) for c in cpu] if sum(cpu) else []
    if pg_root:
        out["postgres_cpu_us_per_transition"] = round(pg_cpu * 1e6 / transitions, 1)
    # the cores the nodes and PostgreSQL kept busy during the closed loop (2 on this machine)
    out["cores_busy"] = round((sum(cpu) + pg_cpu) / wall, 2)
    out["load1_after"] = round(os.getloadavg()[0], 2)
    return out


def _start_nodes(root: Path, count: int, env: dict[str, str]) -> list[ServerProcess]:
    env = {**NO_RATE_LIMIT, **env, "AIONIX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    nodes: list[ServerProcess] = []
    for i in range(count):
        node = ServerProcess(root / f"node{i}", env=env)
        if nodes:
            node.admin_key = nodes[0].admin_key
        nodes.append(node)
        node.start(60)
    return nodes


def measure(counts: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    from connectors.services import start_postgres

    figures: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        [server] = _start_nodes(Path(tmp), 1, {"AIONIX_DATABASE_URL": ""})
        try:
            figures["sqlite"] = asyncio.run(_bench([server], None))
        finally:
            server.stop()
    pg = start_postgres(fsync=True)
    try:
        figures["postgres_server"] = pg.psql("SHOW server_version").strip()
        figures["synchronous_commit"] = pg.psql("SHOW synchronous_commit").strip()
        figures["fsync"] = pg.psql("SHOW fsync").strip()
        for count in counts:
            database = f"nodes{count}"
            pg.psql(f'CREATE DATABASE "{database}"', database="postgres")
            env = {
                "AIONIX_DATABASE_URL": f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{database}",
                "AIONIX_DATABASE_PASSWORD": pg.password,
            }
            with tempfile.TemporaryDirectory() as tmp:
                nodes = _start_nodes(Path(tmp), count, env)
                try:
                    figures[f"postgres_{count}"] = asyncio.run(_bench(nodes, pg.root))
                finally:
                    for node in nodes:
                        node.stop()
    finally:
        pg.stop()
    base = figures["sqlite"]["chain10_sync_transitions_per_s"] or 1
    for count in counts:
        f = figures[f"postgres_{count}"]
        f["throughput_over_sqlite"] = round(f["chain10_sync_transitions_per_s"] / base, 2)
        # what one transition costs in CPU, node and database together: the most a machine of
        # C cores could do if nothing else limited it is C / that
        per = (f["node_cpu_us_per_transition"] + f["postgres_cpu_us_per_transition"]) / 1e6
        f["cpu_bound_transitions_per_s_per_core"] = round(1 / per) if per else None
    return figures


def run() -> dict[str, Any]:
    f = measure()
    rows: list[tuple[str, Any, str]] = []
    s = f["sqlite"]
    rows.append(("SQLite node: chain10 / parallel3 p50", f"{s['chain10_p50_ms']} / {s['parallel3_p50_ms']}", "ms"))
    rows.append(("SQLite node: chain10 sync, 50 clients", s["chain10_sync_transitions_per_s"], "transitions/s"))
    rows.append(("SQLite node: CPU", s["node_cpu_us_per_transition"], "µs/transition"))
    for count in (1, 2, 3):
        p = f[f"postgres_{count}"]
        rows.append(
            (
                f"{count} node(s) on PostgreSQL: chain10 / parallel3 p50",
                f"{p['chain10_p50_ms']} / {p['parallel3_p50_ms']}",
                "ms",
            )
        )
        rows.append(
            (
                f"{count} node(s): chain10 sync, 50 clients",
                f"{p['chain10_sync_transitions_per_s']} ({p['throughput_over_sqlite']}x SQLite)",
                "transitions/s",
            )
        )
        rows.append(
            (
                f"{count} node(s): CPU nodes + PostgreSQL",
                f"{p['node_cpu_us_per_transition']} + {p['postgres_cpu_us_per_transition']} ({p['cores_busy']} cores busy)",
                "µs/transition",
            )
        )
        rows.append((f"{count} node(s): load average", f"{p['load1_before']}/{p['load1_after']}", "before/after"))
    print_table(rows)
    return f
