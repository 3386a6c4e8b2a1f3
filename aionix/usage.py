"""AI usage per workflow execution: the tokens and cost of every AI step, summed, for the
execution envelope's `usage`. The AI service adds each finished step's task here and, at start,
loads the last 30 days from its usage ledger (older executions show zero)."""

from __future__ import annotations

import threading
from typing import Any

_EXECUTIONS: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()


def of(execution_id: str) -> dict[str, Any]:
    found = _EXECUTIONS.get(execution_id)
    return dict(found) if found else {"tokens": 0, "cost_usd": 0.0}


def add(execution_id: str, tokens: int, cost_usd: float) -> None:
    with _LOCK:
        cur = _EXECUTIONS.setdefault(execution_id, {"tokens": 0, "cost_usd": 0.0})
        cur["tokens"] += tokens
        cur["cost_usd"] = round(cur["cost_usd"] + cost_usd, 8)


def load(rows: list[dict[str, Any]]) -> None:
    with _LOCK:
        for r in rows:
            _EXECUTIONS[r["execution_id"]] = {"tokens": int(r["tokens"]), "cost_usd": round(r["cost_usd"], 8)}
