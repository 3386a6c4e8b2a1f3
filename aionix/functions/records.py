"""Invocation records and captured logs.

Records are written behind the answer: `add` queues them and a writer task commits every queued
record with its log lines in one transaction (group commit does the rest). Every read flushes
the queue first, so a client always sees the invocations it was answered about.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aionix import jsonutil
from aionix.errors import NotFound
from aionix.functions.runtimes.base import Outcome

log = logging.getLogger("aionix.functions")


def _json(value: Any) -> str:
    return jsonutil.dumps(value).decode()


def _trn(tenant: str, name: str, qualifier: str | None = None) -> str:
    base = f"trn:aionixfn:{tenant}:function/{name}"
    return f"{base}:{qualifier}" if qualifier else base


class InvocationRecords:
    def __init__(self, store: Any) -> None:
        self.store = store
        self._pending: list[tuple[dict[str, Any], list[dict[str, Any]], tuple[str, int] | None]] = []
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None

    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._writer_loop())

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self.flush()

    async def running(self, row: dict[str, Any]) -> None:
        """The durable RUNNING row of an async invocation, written before it is answered: claimed
        by this node (`row["node"]`, attempt 1), with its event and caller context."""
        await self.store.execute("functions.insert_async_invocation", row)

    async def prune(self, before: float) -> None:
        await self.store.execute("functions.prune_logs", {"before": before})
        await self.store.execute("functions.prune_invocations", {"before": before})

    def add(self, tenant: str, record: dict[str, Any], outcome: Outcome, claim: tuple[str, int] | None = None) -> None:
        """Queue the record of a finished invocation and its captured output. `claim` (node,
        attempt): an async invocation's, whose record is written only while that claim holds."""
        now = time.time()
        row = {
            "id": record["invocation_id"],
            "tenant": tenant,
            "name": record["function"],
            "version": record["version"],
            "qualifier": record["qualifier"],
            "mode": record["mode"],
            "status": record["status"],
            "result": _json(record.get("result")) if record["status"] == "SUCCEEDED" else None,
            "error": _json(record["error"]) if record.get("error") else None,
            "cold_start": int(bool(record.get("cold_start"))),
            "duration_ms": record.get("duration_ms"),
            "init_ms": record.get("init_duration_ms"),
            "run_ms": record.get("run_duration_ms"),
            "billed_memory_mb": record.get("billed_memory_mb"),
            "max_memory_mb": record.get("max_memory_used_mb"),
            "idempotency_key": record.get("idempotency_key"),
            "trace_id": record.get("trace_id"),
            "started_at": record["started_at"],
            "stopped_at": record.get("stopped_at"),
        }
        lines = []
        for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
            for line in text.splitlines()[:2000]:
                lines.append(
                    {
                        "tenant": tenant,
                        "name": record["function"],
                        "invocation_id": record["invocation_id"],
                        "version": record["version"],
                        "ts": now,
                        "stream": stream,
                        "message": line[:8192],
                    }
                )
        if outcome.error and not outcome.ok:
            lines.append(
                {
                    "tenant": tenant,
                    "name": record["function"],
                    "invocation_id": record["invocation_id"],
                    "version": record["version"],
                    "ts": now,
                    "stream": "error",
                    "message": f"{outcome.error.get('errorType')}: {outcome.error.get('errorMessage')}"[:8192],
                }
            )

        # written behind the answer, many invocations per transaction; reads flush first
        self._pending.append((row, lines, claim))
        self._wake.set()

    async def _writer_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every queued invocation record and its log lines (one transaction)."""
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return

            def write(tx: Any) -> list[str]:
                lost = []
                for row, lines, claim in batch:
                    if claim is None:
                        tx.execute("functions.insert_invocation", row)
                    elif not tx.execute(
                        "functions.finish_async_invocation", {**row, "node": claim[0], "attempt": claim[1]}
                    ):
                        # another claim runs it now (this node lost its lease, or it was given
                        # up at a stop): the new owner's outcome and logs are the ones kept
                        lost.append(row["id"])
                        continue
                    if lines:
                        tx.executemany("functions.insert_log", lines)
                return lost

            try:
                lost = await self.store.transaction(write)
            except Exception:
                log.exception("writing %d invocation records failed", len(batch))
                return
            for invocation_id in lost:
                log.warning(
                    "async invocation %s: its claim was taken by another run; outcome not recorded", invocation_id
                )

    @staticmethod
    def to_api(tenant: str, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "invocation_id": row["id"],
            "function": row["name"],
            "trn": _trn(tenant, row["name"], row["qualifier"]),
            "version": row["version"],
            "qualifier": row["qualifier"],
            "mode": row["mode"],
            "status": row["status"],
            "result": jsonutil.loads(row["result"]) if row["result"] is not None else None,
            "error": jsonutil.loads(row["error"]) if row["error"] else None,
            "cold_start": None if row["cold_start"] is None else bool(row["cold_start"]),
            "duration_ms": row["duration_ms"],
            "init_duration_ms": row.get("init_ms"),
            "run_duration_ms": row.get("run_ms"),
            "billed_memory_mb": row["billed_memory_mb"],
            "max_memory_used_mb": row["max_memory_mb"],
            "idempotency_key": row["idempotency_key"],
            "trace_id": row["trace_id"],
            "started_at": row["started_at"],
            "stopped_at": row["stopped_at"],
            "attempts": row.get("attempts") or None,
        }

    async def _require_function(self, tenant: str, name: str) -> None:
        if await self.store.fetch_one("functions.get_function_meta", {"tenant": tenant, "name": name}) is None:
            raise NotFound(f"function {name!r} not found")

    async def get(self, tenant: str, name: str, invocation_id: str) -> dict[str, Any]:
        await self.flush()
        row = await self.store.fetch_one(
            "functions.get_invocation", {"tenant": tenant, "name": name, "id": invocation_id}
        )
        if row is None:
            raise NotFound(f"invocation {invocation_id!r} of function {name!r} not found")
        return self.to_api(tenant, row)

    async def list(self, tenant: str, name: str, limit: int, cursor: str | None) -> dict[str, Any]:
        await self.flush()
        await self._require_function(tenant, name)
        rows = await self.store.fetch_all(
            "functions.list_invocations", {"tenant": tenant, "name": name, "cursor": cursor, "limit": limit + 1}
        )
        items = [self.to_api(tenant, r) for r in rows[:limit]]
        return {"items": items, "next_cursor": rows[limit - 1]["id"] if len(rows) > limit else None}

    async def logs(
        self, tenant: str, name: str, *, invocation_id: str | None, after: int | None, since: float | None, limit: int
    ) -> dict[str, Any]:
        await self.flush()
        await self._require_function(tenant, name)
        rows = await self.store.fetch_all(
            "functions.list_logs",
            {
                "tenant": tenant,
                "name": name,
                "invocation_id": invocation_id,
                "after": after,
                "since": since,
                "limit": limit,
            },
        )
        return {"items": rows, "last_id": rows[-1]["id"] if rows else after}
