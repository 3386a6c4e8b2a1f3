"""Tracing overhead per state: chain100 (the in-process engine benchmark's workflow) run 60 times
in one process; min and p50 wall and CPU time per state.

    python bench/telemetry_overhead.py TREE off|on

TREE is a checkout (before/after a change, e.g. from `git archive`), run with PYTHONPATH=TREE;
`on` exports to a loopback receiver (tests/telemetry/receiver.py of this checkout). Results and
how they were taken: bench/results/telemetry.md."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]


async def _measure() -> dict[str, Any]:
    from bench.stepflow import _close, _run, _service, chain

    with tempfile.TemporaryDirectory() as tmp:
        rt, svc = await _service(Path(tmp) / "data")
        await svc.create_template("default", "chain100", chain(100), None)
        await _run(svc, "chain100", {"v": 0})
        wall, cpu = [], []
        for _ in range(60):
            t0, c0 = time.perf_counter(), time.process_time()
            await _run(svc, "chain100", {"v": 0})
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        await _close(rt, svc)
    wall.sort()
    cpu.sort()
    return {
        "min_us_per_state": round(wall[0] * 1e4, 1),
        "p50_us_per_state": round(wall[30] * 1e4, 1),
        "cpu_min_us_per_state": round(cpu[0] * 1e4, 1),
        "cpu_p50_us_per_state": round(cpu[30] * 1e4, 1),
    }


def main(tree: str, mode: str) -> None:
    sys.path.insert(0, tree)
    os.chdir(tree)
    if mode == "on":
        sys.path.insert(0, str(HERE / "tests"))
        from telemetry.receiver import Receiver

        from aionix import telemetry
        from aionix.config import TelemetryConfig

        receiver = Receiver()
        telemetry.configure(
            TelemetryConfig(otlp_endpoint=receiver.endpoint, export_interval_seconds=0.5, queue_size=100_000)
        )
    figures = asyncio.run(_measure())
    out = {"tree": tree, "mode": mode, **figures, "load1": round(os.getloadavg()[0], 2)}
    print(json.dumps(out), flush=True)
    os._exit(0)  # the export thread is a daemon; nothing to wait for


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
