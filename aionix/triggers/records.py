"""Trigger rows as the API shows them, and the fire rows recorded in the outbox."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aionix import jsonutil, telemetry
from aionix.triggers.schedule import iso


def trigger_trn(tenant: str, name: str) -> str:
    return f"trn:igniter:{tenant}:trigger/{name}"


def to_api(row: dict[str, Any]) -> dict[str, Any]:
    """A `triggers` row as the `Trigger` model."""
    kind = row["kind"]
    out: dict[str, Any] = {
        "id": row["id"],
        "trn": trigger_trn(row["tenant"], row["name"]),
        "name": row["name"],
        "tenant": row["tenant"],
        "kind": kind,
        "description": row["description"],
        "target": row["target"],
        "input": row["input"],
        "enabled": bool(row["enabled"]),
        kind: jsonutil.loads(row["config"]),
        "retry": jsonutil.loads(row["retry"]),
        "next_fire_at": iso(row["next_fire_at"]) if row["next_fire_at"] is not None and row["enabled"] else None,
        "version": row["version"],
        "fire_count": row["fire_count"],
        "last_fired_at": row["last_fired_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if kind == "webhook":
        out["webhook_path"] = f"/hooks/{row['tenant']}/{row['name']}"
    return out


def fire_record(
    trigger: dict[str, Any],
    fire_key: str,
    origin: str,
    payload: Any,
    *,
    now: float | None = None,
    due_at: float | None = None,
    status: str = "pending",
    error: str | None = None,
    cause: str | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """Parameters of `triggers.insert_fire`. A pending fire is born claimed by this node
    (`node`: its id), which delivers it at once; after a restart the outbox loop picks it up,
    and another node once this one lost its lease."""
    now = time.time() if now is None else now
    # the payload keeps its keys in the order they arrived (a webhook body reaches the workflow
    # input as sent); the digest is of the canonical (sorted) form, so it names the content
    text = jsonutil.dumps(payload).decode() if payload is not None else None
    canonical = jsonutil.dumps(payload, sort_keys=True).decode() if payload is not None else None
    return {
        "tenant": trigger["tenant"],
        "trigger_id": trigger["id"],
        "fire_key": fire_key,
        "origin": origin,
        "due_at": due_at,
        "payload": text,
        "payload_digest": None if canonical is None else "sha256:" + hashlib.sha256(canonical.encode()).hexdigest(),
        "status": status,
        "next_attempt_at": now if status == "pending" else None,
        "claimed_at": now if status == "pending" else None,
        "claimed_by": node if status == "pending" else None,
        "error": error,
        "cause": cause,
        "now": now,
        # the trace it is made in (telemetry.py): its deliveries, retries included, continue it
        "trace_id": telemetry.current_trace.get(),
    }


def deliverable(fire_id: int, record: dict[str, Any], trigger: dict[str, Any]) -> dict[str, Any]:
    """The shape `Delivery.deliver` takes (the same columns as `triggers.pending_fires`)."""
    return {
        "id": fire_id,
        "tenant": record["tenant"],
        "trigger_id": record["trigger_id"],
        "fire_key": record["fire_key"],
        "origin": record["origin"],
        "payload": record["payload"],
        "attempts": 0,
        "trigger_name": trigger["name"],
        "target": trigger["target"],
        "input": trigger["input"],
        "retry": trigger["retry"],
        "kind": trigger["kind"],
        "trace_id": record.get("trace_id"),
    }
