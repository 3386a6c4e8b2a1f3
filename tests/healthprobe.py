"""Measuring how responsive a real server stays: `/healthz` latency sampled from a thread, and
the server process's resident memory from `/proc/<pid>/status` (VmRSS)."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import httpx


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


class HealthProbe:
    """GET /healthz every `interval` seconds (one keep-alive connection) until stopped; with a
    `pid`, the process's VmRSS is sampled too. Use as a context manager around the attack."""

    def __init__(self, url: str, *, interval: float = 0.01, pid: int | None = None) -> None:
        self.url = url
        self.interval = interval
        self.pid = pid
        self.latencies: list[float] = []
        self.rss: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/healthz").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - started)
                if self.pid is not None:
                    try:
                        self.rss.append(rss_bytes(self.pid))
                    except (OSError, StopIteration):
                        pass
                self._stop.wait(self.interval)

    def __enter__(self) -> HealthProbe:
        # The samples are taken in this (test) process: in a whole-suite run its heap is large,
        # and a full collection of it pauses every thread here, the probe's included, which
        # would be counted as the server's latency. Frozen objects are left out of collections.
        gc.freeze()
        self._thread.start()
        time.sleep(self.interval * 3)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        gc.unfreeze()

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("inf")
        return ordered[min(len(ordered) - 1, round(p / 100.0 * (len(ordered) - 1)))]

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))

    def summary(self) -> str:
        rss = f", peak VmRSS {max(self.rss) / 2**20:.0f} MB" if self.rss else ""
        return (
            f"{len(self.latencies)} /healthz samples: p50 {self.percentile(50) * 1000:.1f} ms, "
            f"p99 {self.percentile(99) * 1000:.1f} ms, worst {self.worst * 1000:.1f} ms{rss}"
        )
