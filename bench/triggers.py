"""Triggers, against a real server process (synchronous=FULL as shipped), workflow targets:

- 1,000 schedule triggers due at the same second: lateness of the recorded fire (created_at −
  due time) and of the target's start (the delivery acknowledged) — p50, p99, max
- the server's CPU while idle with those 1,000 triggers waiting (must not busy-poll)
- webhook → execution started (the 202 carries the execution id): p50/p99 latency and
  webhooks/second accepted, with 16 concurrent senders
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from aionix.triggers.schedule import iso
from aionix.triggers.signing import sign
from bench.table import percentile, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import ServerProcess

SCHEDULES = 1000
WEBHOOKS = 2000
SENDERS = 16
ENV = {
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "1000000",
    "AIONIX_LOGGING_ACCESS_LOG": "false",
}
WORKFLOW = {"entry": "Done", "states": {"Done": {"type": "set", "value": {"ok": True}, "end": True}}}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _create_schedules(client: httpx.AsyncClient, due: int) -> list[str]:
    names = [f"sched-{i:04d}" for i in range(SCHEDULES)]
    sem = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        async with sem:
            r = await client.post(
                "/api/v1/triggers",
                json={
                    "name": name,
                    "target": "trn:stepflow:default:template/bench",
                    "schedule": {"expression": f"at({iso(due)})"},
                },
            )
            if r.status_code != 201:
                raise RuntimeError(f"creating {name}: {r.status_code} {r.text}")

    await asyncio.gather(*(one(n) for n in names))
    return names


async def _histories(client: httpx.AsyncClient, names: list[str]) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(16)
    out: list[dict[str, Any]] = []

    async def one(name: str) -> None:
        async with sem:
            r = await client.get(f"/api/v1/triggers/{name}/history")
            r.raise_for_status()
            out.extend(r.json()["items"])

    await asyncio.gather(*(one(n) for n in names))
    return out


async def _schedule_bench(server: ServerProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        (await client.post("/api/v1/workflows", json={"name": "bench", "definition": WORKFLOW})).raise_for_status()
        due = int(time.time()) + 40
        started = time.time()
        names = await _create_schedules(client, due)
        created_in = time.time() - started
        if time.time() > due - 14:
            raise RuntimeError(f"creating {SCHEDULES} triggers took {created_in:.1f} s; the due time is too close")
        await asyncio.sleep(max(0.0, due - 12 - time.time()))
        cpu0, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
        await asyncio.sleep(max(0.0, due - 2 - time.time()))
        idle_cpu = (_cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - t0)
        deadline = time.time() + 120
        fires: list[dict[str, Any]] = []
        await asyncio.sleep(max(0.0, due + 3 - time.time()))
        while time.time() < deadline:
            fires = await _histories(client, names)
            if len(fires) >= SCHEDULES and all(f["status"] != "pending" for f in fires):
                break
            await asyncio.sleep(1.0)
    recorded = [(f["created_at"] - f["due_at"]) * 1000 for f in fires]
    delivered = [(f["updated_at"] - f["due_at"]) * 1000 for f in fires if f["status"] == "delivered"]
    return {
        "schedules": SCHEDULES,
        "schedules_created_per_s": round(SCHEDULES / created_in),
        "fires_recorded": len(fires),
        "fires_delivered": len(delivered),
        "fire_lateness_p50_ms": round(percentile(recorded, 50), 1),
        "fire_lateness_p99_ms": round(percentile(recorded, 99), 1),
        "fire_lateness_max_ms": round(max(recorded, default=0.0), 1),
        "start_lateness_p50_ms": round(percentile(delivered, 50), 1),
        "start_lateness_p99_ms": round(percentile(delivered, 99), 1),
        "start_lateness_max_ms": round(max(delivered, default=0.0), 1),
        "idle_cpu_percent": round(idle_cpu * 100, 2),
    }


async def _webhook_bench(server: ServerProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        r = await client.post(
            "/api/v1/triggers", json={"name": "hook", "target": "trn:stepflow:default:template/bench", "webhook": {}}
        )
        r.raise_for_status()
        secret = r.json()["secret"]
    latencies: list[float] = []
    counter = iter(range(WEBHOOKS))
    failures = 0

    async def sender() -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            for i in counter:
                body = b'{"n": %d}' % i
                msg_id, stamp = uuid.uuid4().hex, int(time.time())
                h = {
                    "content-type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(secret, msg_id, stamp, body),
                }
                t = time.perf_counter()
                resp = await c.post("/hooks/default/hook", content=body, headers=h)
                latencies.append((time.perf_counter() - t) * 1000)
                if resp.status_code != 202 or not resp.json().get("result_id"):
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    elapsed = time.perf_counter() - started
    return {
        "webhooks": WEBHOOKS,
        "webhook_senders": SENDERS,
        "webhook_failures": failures,
        "webhooks_per_s": round(WEBHOOKS / elapsed),
        "webhook_to_started_p50_ms": round(percentile(latencies, 50), 1),
        "webhook_to_started_p99_ms": round(percentile(latencies, 99), 1),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), env=ENV).start()
        try:
            figures = asyncio.run(_schedule_bench(server))
            figures.update(asyncio.run(_webhook_bench(server)))
        finally:
            server.stop()
    print_table(
        [
            ("schedule fires recorded / delivered", f"{figures['fires_recorded']}/{figures['fires_delivered']}", ""),
            ("fire lateness p50", figures["fire_lateness_p50_ms"], "ms"),
            ("fire lateness p99", figures["fire_lateness_p99_ms"], "ms"),
            ("fire lateness max", figures["fire_lateness_max_ms"], "ms"),
            ("workflow start lateness p50", figures["start_lateness_p50_ms"], "ms"),
            ("workflow start lateness p99", figures["start_lateness_p99_ms"], "ms"),
            ("workflow start lateness max", figures["start_lateness_max_ms"], "ms"),
            ("server CPU idle, 1,000 triggers waiting", figures["idle_cpu_percent"], "% of one core"),
            ("webhook → execution started p50", figures["webhook_to_started_p50_ms"], "ms"),
            ("webhook → execution started p99", figures["webhook_to_started_p99_ms"], "ms"),
            ("webhooks accepted (16 senders)", figures["webhooks_per_s"], "webhooks/s"),
            ("webhook failures", figures["webhook_failures"], ""),
        ]
    )
    return figures
