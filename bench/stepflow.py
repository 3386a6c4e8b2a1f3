"""StepFlow: the engine in one process against a temp SQLite file (synchronous=FULL as shipped).

- chain100: one execution of 100 chained `set` states (total ms, µs per transition)
- parallel3: `parallel` of 3 branches with one trivial task each, start → SUCCEEDED, 200 runs
- throughput: 1,000 executions of a 10-state flow started concurrently, five rounds (the median),
  with the machine's speed reference, its load and the CPU share the hypervisor gave to other
  guests meanwhile
- all of it on the server's event loop (uvloop)
- jsonata: one typical `output` expression on a 20-item input, compiled once
- idle RSS of a freshly started server process
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from aionix import config as configlib
from aionix import expr, loops
from aionix.runtime import Runtime
from aionix.server import tune_gc
from aionix.stepflow.service import StepFlowService
from bench.table import MachineState, percentile, print_table


async def _service(root: Path) -> tuple[Runtime, StepFlowService]:
    cfg = configlib.load(env={}, overrides={"database.data_path": str(root)})
    rt = Runtime(cfg)
    root.mkdir(parents=True, exist_ok=True)
    await rt.store.start()
    svc = StepFlowService(rt)
    rt.services["stepflow"] = svc

    async def noop(target: Any, payload: Any, ctx: Any) -> Any:
        return payload

    rt.bus.register_kind("noop", noop)
    await svc.startup()
    return rt, svc


async def _close(rt: Runtime, svc: StepFlowService) -> None:
    await svc.shutdown()
    for task in list(rt._tasks):
        task.cancel()
    await asyncio.gather(*rt._tasks, return_exceptions=True)
    await rt.store.close()


async def _run(svc: StepFlowService, name: str, input: Any) -> dict[str, Any]:
    envelope, _ = await svc.start("default", name, input)
    run = svc.runs.get(envelope["execution_id"])
    if run is not None:
        await run.done.wait()
    return await svc.envelope_by_id(envelope["execution_id"])


def chain(n: int) -> dict[str, Any]:
    states = {
        f"S{i}": {"type": "set", "value": {"i": i, "v": "{% input.v + 1 %}"}, "next": f"S{i + 1}"} for i in range(n - 1)
    }
    states[f"S{n - 1}"] = {"type": "set", "value": {"v": "{% input.v + 1 %}"}, "end": True}
    return {"entry": "S0", "states": states}


PARALLEL3 = {
    "entry": "P",
    "states": {
        "P": {
            "type": "parallel",
            "branches": [
                {"entry": f"T{i}", "states": {f"T{i}": {"type": "task", "action": "noop", "end": True}}}
                for i in range(3)
            ],
            "end": True,
        }
    },
}


async def _bench() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rt, svc = await _service(Path(tmp) / "data")
        gc.collect()
        tune_gc()  # as the server does once started (aionix/server.py)
        try:
            await svc.create_template("default", "chain100", chain(100), None)
            await _run(svc, "chain100", {"v": 0})  # warm the plan cache
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                env = await _run(svc, "chain100", {"v": 0})
                times.append((time.perf_counter() - t0) * 1000)
                assert env["output"] == {"v": 100}, env
            best = percentile(times, 50)
            figures["chain100_ms"] = round(best, 2)
            figures["chain100_us_per_transition"] = round(best * 1000 / 100, 1)

            await svc.create_template("default", "parallel3", PARALLEL3, None)
            lat = []
            for _ in range(200):
                t0 = time.perf_counter()
                env = await _run(svc, "parallel3", {"x": 1})
                lat.append((time.perf_counter() - t0) * 1000)
                assert env["status"] == "SUCCEEDED"
            figures["parallel3_p50_ms"] = round(percentile(lat, 50), 2)
            figures["parallel3_p99_ms"] = round(percentile(lat, 99), 2)

            await svc.create_template("default", "chain10", chain(10), None)
            await _run(svc, "chain10", {"v": 0})
            n, rounds = 1000, 5
            per_round = []
            machine = MachineState()
            cpu0 = time.process_time()
            for _ in range(rounds):
                t0 = time.perf_counter()
                envs = await asyncio.gather(*(svc.start("default", "chain10", {"v": i}) for i in range(n)))
                await asyncio.gather(
                    *(svc.runs[e["execution_id"]].done.wait() for e, _ in envs if e["execution_id"] in svc.runs)
                )
                per_round.append(time.perf_counter() - t0)
            cpu = time.process_time() - cpu0  # the event loop's thread and the store's writer
            figures["throughput_machine"] = machine.figures()
            done = await svc.list_executions(
                "default", workflow="chain10", status="SUCCEEDED", since=None, until=None, limit=10_000, cursor=None
            )
            assert len(done["items"]) == n * rounds + 1, len(done["items"])
            # each round is 1,000 executions at once; the median round (one is as noisy as the machine)
            elapsed = percentile(per_round, 50)
            figures["throughput_rounds"] = rounds
            figures["throughput_transitions_per_s"] = round(n * 10 / elapsed)
            figures["throughput_best_transitions_per_s"] = round(n * 10 / min(per_round))
            figures["throughput_executions_per_s"] = round(n / elapsed)
            figures["throughput_cpu_us_per_transition"] = round(cpu * 1e6 / (n * rounds * 10), 1)
            figures["throughput_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            figures["store_commits"] = rt.store.stats["commits"]
        finally:
            await _close(rt, svc)

    items = [{"sku": f"A{i}", "price": i * 1.5, "qty": i % 4 + 1} for i in range(20)]
    e = expr.compile_template(
        {
            "total": "{% $sum(input.items.(price * qty)) %}",
            "skus": "{% input.items[qty > 2].sku %}",
            "n": "{% $count(input.items) %}",
        }
    )
    data = {"input": {"items": items}, "result": None, "vars": {}, "error": None, "context": {}}
    rounds = 2000
    t0 = time.perf_counter()
    for _ in range(rounds):
        e.evaluate(data)
    figures["jsonata_us_per_eval"] = round((time.perf_counter() - t0) * 1e6 / rounds, 1)
    return figures


def _idle_rss_mb() -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
        env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(Path(tmp) / "cred")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aionix",
                "--port",
                "0",
                "--port-file",
                str(Path(tmp) / "port"),
                "--data-dir",
                str(Path(tmp) / "data"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            port_file = Path(tmp) / "port"
            while time.monotonic() < deadline and not (port_file.exists() and port_file.read_text().endswith("\n")):
                time.sleep(0.05)
            port = int(port_file.read_text())
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(1.0)
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
            return None
        finally:
            proc.terminate()
            proc.wait(15)


def run() -> dict[str, Any]:
    figures = loops.run(_bench())  # on the server's event loop
    figures["server_idle_rss_mb"] = _idle_rss_mb()
    print_table(
        [
            ("chain100 total", figures["chain100_ms"], "ms (target ≤ 100)"),
            ("chain100 per transition", figures["chain100_us_per_transition"], "µs"),
            ("parallel3 p50", figures["parallel3_p50_ms"], "ms (target ≤ 10)"),
            ("parallel3 p99", figures["parallel3_p99_ms"], "ms"),
            ("throughput (median of 5 rounds)", figures["throughput_transitions_per_s"], "durable transitions/s"),
            ("throughput (best round)", figures["throughput_best_transitions_per_s"], "durable transitions/s"),
            ("throughput CPU (both threads)", figures["throughput_cpu_us_per_transition"], "µs/transition"),
            ("throughput", figures["throughput_executions_per_s"], "executions/s"),
            ("throughput peak RSS", figures["throughput_peak_rss_mb"], "MB"),
            ("speed reference before the rounds (bench/table.py)", figures["throughput_machine"]["reference_ms"], "ms"),
            ("load average (1 min) after the rounds", figures["throughput_machine"]["load1"], ""),
            ("CPU stolen by the hypervisor in the rounds", figures["throughput_machine"].get("steal_pct"), "%"),
            ("jsonata output expression (20 items)", figures["jsonata_us_per_eval"], "µs/eval"),
            ("server idle RSS", figures["server_idle_rss_mb"], "MB (target ≤ 80)"),
        ]
    )
    return figures
