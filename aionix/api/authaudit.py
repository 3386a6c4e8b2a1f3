"""Failed authentications in the audit trail, aggregated: one row per client address per
minute, with a count. A flood of requests without a key (or with guessed keys) updates one row
per minute instead of adding one per request, so it cannot grow the audit table.

The first failure of an address in a minute is written at once (the row is there when the 401
is answered); later ones are counted in memory and the row's `details.count` is brought up to
date at most once a second. Rows are tenant-less: only cross-tenant admins see them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from starlette.requests import Request

    from aionix.runtime import Runtime

log = logging.getLogger("aionix.api")
ACTION = "auth.failure"
#: distinct reasons and paths kept per row (the count covers every request)
MAX_LISTED = 8
MAX_ENTRIES = 100_000
FLUSH_SECONDS = 1.0


class _Entry:
    __slots__ = ("count", "created", "dirty", "first_ts", "last_ts", "paths", "reasons", "row_id")

    def __init__(self, now: float) -> None:
        self.count = 0
        self.first_ts = now
        self.last_ts = now
        self.reasons: dict[str, int] = {}
        self.paths: list[str] = []
        self.row_id: int | None = None
        self.created: asyncio.Future[int | None] | None = None
        self.dirty = False

    def details(self) -> dict[str, Any]:
        return {
            "reason": next(iter(self.reasons), None),
            "count": self.count,
            "reasons": self.reasons,
            "paths": self.paths,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "window_seconds": 60,
        }


class FailedAuthLog:
    def __init__(self, rt: Runtime, clock: Any = time.time) -> None:
        self.rt = rt
        self.clock = clock
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._minute = 0
        #: failures that found the table of entries full (not written anywhere but here)
        self.dropped = 0

    async def note(self, request: Request, reason: str, status: int) -> None:
        now = self.clock()
        ip = request.client.host if request.client else "unknown"
        slot = (ip, int(now // 60))
        entry = self._entries.get(slot)
        if entry is None:
            if slot[1] != self._minute:
                self._minute = slot[1]
                self._forget_before(slot[1])
            if len(self._entries) >= MAX_ENTRIES:
                self.dropped += 1
                return
            entry = self._entries[slot] = _Entry(now)
            self._count(entry, reason, request.url.path, now)
            entry.created = asyncio.get_running_loop().create_future()
            row = self.rt.audit_row(request, None, ACTION, status=status, details=entry.details())
            try:
                inserted = await self.rt.store.transaction(lambda tx: tx.fetch_one("core.insert_audit_returning", row))
                entry.row_id = int(inserted["id"]) if inserted else None
            finally:
                entry.created.set_result(entry.row_id)
            if entry.dirty:
                self._schedule()
            return
        self._count(entry, reason, request.url.path, now)
        entry.dirty = True
        self._schedule()

    def _forget_before(self, minute: int) -> None:
        for slot in [s for s, e in self._entries.items() if s[1] < minute and not e.dirty]:
            del self._entries[slot]

    @staticmethod
    def _count(entry: _Entry, reason: str, path: str, now: float) -> None:
        entry.count += 1
        entry.last_ts = now
        if reason in entry.reasons or len(entry.reasons) < MAX_LISTED:
            entry.reasons[reason] = entry.reasons.get(reason, 0) + 1
        if path not in entry.paths and len(entry.paths) < MAX_LISTED:
            entry.paths.append(path)

    def _schedule(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await self.flush()
        except Exception:
            log.exception("updating the failed-authentication audit rows failed")

    async def flush(self) -> None:
        minute = int(self.clock() // 60)
        updates = []
        for slot, entry in list(self._entries.items()):
            if entry.dirty and entry.created is not None:
                row_id = await entry.created
                entry.dirty = False
                if row_id is not None:
                    updates.append({"id": row_id, "details": orjson.dumps(entry.details()).decode()})
            if slot[1] < minute and not entry.dirty:
                del self._entries[slot]
        if updates:
            await self.rt.store.transaction(lambda tx: tx.executemany("core.update_audit_details", updates))
        if any(e.dirty for e in self._entries.values()):
            self._schedule()


def failed_auth_log(rt: Runtime) -> FailedAuthLog:
    """The runtime's one log of failed authentications (made on first use)."""
    found = getattr(rt, "failed_auth_log", None)
    if found is None:
        found = FailedAuthLog(rt)
        rt.failed_auth_log = found  # type: ignore[attr-defined]
    return found
