"""The schedule loop: sleeps until the nearest `next_run_at`, then fires what is due.

For each due trigger, one transaction records its fires (`UNIQUE(trigger_id, fire_key)` with
the due time as the key) and advances `next_fire_at` with a compare-and-set on the old value;
only then are the targets invoked. A crash after the commit re-delivers from the outbox with
the same idempotency key; a crash before it fires the same due time again, so a due time is
never recorded twice nor silently skipped. Due times missed while the server was down follow
the trigger's misfire policy; skipped ones are recorded as one `skipped` history row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aionix import jsonutil
from aionix.errors import AionixError
from aionix.triggers.delivery import Delivery
from aionix.triggers.models import ScheduleSpec, TriggersConfig
from aionix.triggers.records import deliverable, fire_record, trigger_trn
from aionix.triggers.schedule import Schedule, iso, jitter_offset, parse_schedule, plan_fires

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.triggers")


def schedule_of(
    row: dict[str, Any], cache: dict[tuple[str, int], tuple[ScheduleSpec, Schedule]] | None = None
) -> tuple[ScheduleSpec, Schedule]:
    """The trigger's schedule, parsed once per (trigger, version)."""
    key = (row["id"], row["version"])
    found = cache.get(key) if cache is not None else None
    if found is not None:
        return found
    spec = ScheduleSpec.model_validate(jsonutil.loads(row["config"]))
    parsed = (spec, parse_schedule(spec.expression, spec.timezone, anchor=row["created_at"]))
    if cache is not None:
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = parsed
    return parsed


def run_time(trigger_id: str, due: float | None, spec: ScheduleSpec) -> float | None:
    return None if due is None else due + jitter_offset(trigger_id, due, spec.jitter_seconds)


class Scheduler:
    def __init__(self, rt: Runtime, cfg: TriggersConfig, delivery: Delivery, clock: Callable[[], float]) -> None:
        self.rt = rt
        self.cfg = cfg
        self.delivery = delivery
        self.clock = clock
        self.wake = asyncio.Event()
        self._cache: dict[tuple[str, int], tuple[ScheduleSpec, Schedule]] = {}

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                processed = await self.run_due(self.clock())
                if processed >= self.cfg.scheduler_batch:
                    continue
                delay = await self._until_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger scheduler pass failed")
                delay = 5.0
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)

    async def _until_next(self) -> float:
        row = await self.rt.store.fetch_one("triggers.next_run")
        at = row["at"] if row else None
        if at is None:
            return self.cfg.max_wake_interval_seconds
        return min(max(at - self.clock(), 0.0), self.cfg.max_wake_interval_seconds)

    async def run_due(self, now: float) -> int:
        """Fire every trigger due at `now` (a batch); return how many triggers were due."""
        rows = await self.rt.store.fetch_all("triggers.due_schedules", {"now": now, "limit": self.cfg.scheduler_batch})
        if not rows:
            return 0
        plans = []
        for row in rows:
            try:
                plans.append(self._plan(row, now))
            except AionixError as exc:
                log.error("trigger %s has an unusable schedule, disabling its next run: %s", row["name"], exc.message)
                plans.append((row, [], None, None))

        def apply(tx: Any) -> list[dict[str, Any]]:
            fired: list[dict[str, Any]] = []
            written = self.clock()
            lateness = self.delivery.metrics.lateness
            suspended = self.rt.tenants.suspended
            for row, records, next_due, next_run in plans:
                if row["tenant"] in suspended:  # a suspended tenant's schedules advance without firing
                    records = []
                fires = sum(1 for r in records if r["status"] == "pending")
                changed = tx.execute(
                    "triggers.advance_schedule",
                    {
                        "id": row["id"],
                        "expected": row["next_fire_at"],
                        "next_fire_at": next_due,
                        "next_run_at": next_run,
                        "fired": fires,
                        "last_fired_at": now if fires else None,
                    },
                )
                if changed != 1:
                    continue  # updated, disabled or deleted meanwhile: the new definition rules
                for record in records:
                    record["now"] = written  # when the fire is written, just before its commit
                    if record["status"] == "pending":
                        record["claimed_at"] = record["next_attempt_at"] = written
                    inserted = tx.fetch_one("triggers.insert_fire", record)
                    if inserted is not None and record["status"] == "pending":
                        fired.append(deliverable(inserted["id"], record, row))
                        lateness.observe(max(written - record["due_at"], 0.0))
            return fired

        fired = await self.rt.store.transaction(apply)
        self.delivery.dispatch(fired)
        return len(rows)

    def _plan(
        self, row: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], list[dict[str, Any]], float | None, float | None]:
        spec, sched = schedule_of(row, self._cache)
        plan = plan_fires(
            sched,
            row["next_fire_at"],
            now,
            misfire=spec.misfire,
            grace=self.cfg.misfire_grace_seconds,
            max_catchup=spec.max_catchup,
        )
        trn = trigger_trn(row["tenant"], row["name"])
        records = []
        for due in plan.fire:
            key = iso(due)
            payload = {
                "id": key,
                "trigger": trn,
                "scheduled_time": key,
                "time": iso(now),
                "late_seconds": round(max(now - due, 0.0), 3),
            }
            records.append(
                fire_record(row, key, "schedule", payload, now=now, due_at=due, node=self.rt.cluster.node_id)
            )
        if plan.skipped_count:
            first = iso(plan.skipped_first or row["next_fire_at"])
            last = iso(plan.skipped_last or row["next_fire_at"])
            cause = (
                f"{plan.skipped_count} due time(s) from {first} to {last} were missed while the server was down "
                f"and not fired (misfire={spec.misfire})"
            )
            records.append(
                fire_record(
                    row,
                    f"skipped:{first}",
                    "schedule",
                    None,
                    now=now,
                    due_at=plan.skipped_first,
                    status="skipped",
                    error="Trigger.Misfire",
                    cause=cause,
                )
            )
        return row, records, plan.next_due, run_time(row["id"], plan.next_due, spec)
