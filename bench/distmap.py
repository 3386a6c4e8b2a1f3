"""Distributed Map: a real server maps a generated CSV (`BENCH_DISTMAP_ROWS`, default
1,000,000 rows) read through `aionix:::fs:read` in batches of 1,000 items, each batch a child
execution of a trivial processor (one Pass that counts its items).

- items/s from start to SUCCEEDED (reading, batching, starting and finishing the children)
- RSS growth of the server process over the run, and /healthz p50/p99 sampled meanwhile
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from healthprobe import HealthProbe, rss_bytes
from serverproc import ServerProcess

ROWS = int(os.environ.get("BENCH_DISTMAP_ROWS", "1000000"))
BATCH = 1000


def _definition(path: str) -> dict[str, Any]:
    return {
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "aionix:::fs:read",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Path": path},
                },
                "ItemBatcher": {"MaxItemsPerBatch": BATCH},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Count",
                    "States": {
                        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)"}, "End": True}
                    },
                },
                "End": True,
            }
        },
    }


def _wait(client: Any, eid: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (env := client.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {eid} still RUNNING after {timeout} s")
        time.sleep(0.05)
    return env


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aionix-bench-distmap-") as tmp:
        root = Path(tmp)
        part = root / "fs" / "default"
        part.mkdir(parents=True, mode=0o700)
        with open(part / "rows.csv", "w") as f:
            f.write("id,name,score\n")
            for start in range(0, ROWS, 100_000):
                f.write("".join(f"{i},n{i},{i % 100}\n" for i in range(start, min(ROWS, start + 100_000))))
        (part / "warm.csv").write_text("id,name,score\n1,a,2\n")
        env = {"AIONIX_CONNECTORS_FS_ROOTS": str(root / "fs"), "AIONIX_LOGGING_ACCESS_LOG": "false"}
        server = ServerProcess(root / "server", env=env).start()
        try:
            assert server.proc is not None
            with server.client(timeout=60.0) as c:
                for name, path in (("bench-distmap-warm", "warm.csv"), ("bench-distmap", "rows.csv")):
                    r = c.post("/api/v1/workflows", json={"name": name, "definition": _definition(path)})
                    r.raise_for_status()
                warm = c.post("/api/v1/workflows/bench-distmap-warm/executions", json={"input": {}}).json()
                _wait(c, warm["execution_id"], 60)
                before = rss_bytes(server.proc.pid)
                started = time.perf_counter()
                with HealthProbe(server.url, pid=server.proc.pid) as probe:
                    eid = c.post("/api/v1/workflows/bench-distmap/executions", json={"input": {}}).json()[
                        "execution_id"
                    ]
                    env_ = _wait(c, eid, 600)
                elapsed = time.perf_counter() - started
            if env_["status"] != "SUCCEEDED" or sum(o["n"] for o in env_["output"]) != ROWS:
                raise RuntimeError(f"the map run did not succeed: {json.dumps(env_)[:500]}")
        finally:
            server.stop()
    figures = {
        "rows": ROWS,
        "batch_items": BATCH,
        "seconds": round(elapsed, 2),
        "items_per_second": round(ROWS / elapsed),
        "rss_growth_mb": round((max(probe.rss, default=before) - before) / 2**20, 1),
        "healthz_p50_ms": round(probe.percentile(50) * 1000, 1),
        "healthz_p99_ms": round(probe.percentile(99) * 1000, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }
    print_table(
        [
            ("rows (CSV, fs reader)", ROWS, ""),
            ("batches of", BATCH, "items"),
            ("wall time", figures["seconds"], "s"),
            ("throughput", figures["items_per_second"], "items/s"),
            ("server RSS growth", figures["rss_growth_mb"], "MB"),
            ("/healthz p50 during the run", figures["healthz_p50_ms"], "ms"),
            ("/healthz p99 during the run", figures["healthz_p99_ms"], "ms"),
            ("load average (1 min) after", figures["load_average"], ""),
        ]
    )
    return figures
