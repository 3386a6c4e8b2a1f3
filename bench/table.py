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
