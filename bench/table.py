"""Printing a benchmark table."""

from __future__ import annotations

from typing import Any


def print_table(rows: list[tuple[str, Any, str]]) -> None:
    """Rows of (metric, value, unit)."""
    width = max(len(r[0]) for r in rows)
    for metric, value, unit in rows:
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"  {metric.ljust(width)}  {shown:>14} {unit}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def reference_ms() -> float:
    """The machine's speed now: the CPU time of a fixed pure-Python loop (best of three, ms).
    On this shared VM it moved between ~10 and ~25 ms from one hour to the next with the load
    average and the steal share both near 0: figures taken in different minutes compare only
    next to it."""
    import time

    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        total = 0
        for i in range(300_000):
            total += i % 7
        best = min(best, time.thread_time() - started)
    return round(best * 1000, 1)


class MachineState:
    """The machine's state over a measurement: the speed reference (`reference_ms`) before it,
    the 1-minute load average at its end and the share of CPU time the hypervisor gave to
    other guests meanwhile (`steal` in /proc/stat)."""

    def __init__(self) -> None:
        self.reference_ms = reference_ms()
        self._start = self._ticks()

    @staticmethod
    def _ticks() -> list[int] | None:
        try:
            with open("/proc/stat") as f:
                return [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None

    def figures(self) -> dict[str, Any]:
        import os

        out: dict[str, Any] = {"reference_ms": self.reference_ms, "load1": round(os.getloadavg()[0], 2)}
        end = self._ticks()
        if self._start is not None and end is not None and len(end) > 7:
            delta = [b - a for a, b in zip(self._start, end, strict=False)]
            total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
            out["steal_pct"] = round(100 * delta[7] / total, 1) if total else 0.0
        return out
