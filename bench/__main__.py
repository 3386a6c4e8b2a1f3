"""Run the benchmarks: `python -m bench` (all) or `python -m bench store stepflow`."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

BENCHES = (
    "store",
    "stepflow",
    "throughput",
    "distmap",
    "functions",
    "vault",
    "triggers",
    "connectors",
    "ai",
    "binary",
    "start",
    "policy",
    "pgstore",
    "nodes",
)
RESULTS = Path(__file__).parent / "results"


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"[{name}] no benchmark module, skipped")
                continue
            raise
        print(f"\n== {name} ==", flush=True)
        started = time.time()
        figures = module.run()
        out = {
            "benchmark": name,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "machine": {
                "cpus": __import__("os").cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "figures": figures,
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
