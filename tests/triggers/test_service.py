"""The service in-process with an injected clock: firing through the scheduler across a DST
change, exactly one record per due time, outbox redelivery after a crash with the same key,
and a scheduler that sleeps instead of polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pgstore
import pytest

from aionix import config as configlib
from aionix.bus import BusError
from aionix.runtime import Runtime
from aionix.triggers.models import CreateTrigger
from aionix.triggers.schedule import iso
from aionix.triggers.service import TriggerService


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Probe:
    """A bus target that records calls and fails while `down` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str | None]] = []
        self.down = False

    async def __call__(self, target: Any, payload: Any, ctx: Any) -> Any:
        self.calls.append((payload, ctx.idempotency_key))
        if self.down:
            raise BusError("Probe.Down", "the probe is down")
        return {"ok": True}


class Instance:
    """One 'process': a runtime on the data dir and the service, with a settable clock."""

    def __init__(self, root: Path, probe: Probe, now: float) -> None:
        cfg = configlib.load(env=pgstore.store_env(str(root)), overrides={"database.data_path": str(root)})
        self.rt = Runtime(cfg)
        self.rt.bus.register_kind("probe", probe)
        self.now = now
        self.svc: TriggerService | None = None

    def clock(self) -> float:
        return self.now

    async def open(self) -> TriggerService:
        self.rt.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.rt.store.start()
        self.svc = TriggerService(self.rt, clock=self.clock)
        return self.svc

    async def close(self) -> None:
        assert self.svc is not None
        await self.svc.delivery.drain(10)
        await self.rt.store.close()


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Instance] = []

    async def make_instance(probe: Probe, now: float) -> Instance:
        inst = Instance(tmp_path / "data", probe, now)
        await inst.open()
        opened.append(inst)
        return inst

    yield make_instance
    for inst in opened:
        if inst.rt.store._thread is not None:
            await inst.close()


async def history(svc: TriggerService, name: str) -> list[dict[str, Any]]:
    return (await svc.history("default", name, status=None, limit=500, cursor=None))["items"]


async def test_dst_fire_through_the_scheduler_exactly_once(make) -> None:
    probe = Probe()
    inst = await make(probe, ts("2026-03-28T12:00:00Z"))
    svc = inst.svc
    body = CreateTrigger(
        name="nightly", target="probe", schedule={"expression": "30 2 * * *", "timezone": "Europe/Berlin"}
    )
    created = await svc.create("default", body)
    assert created["next_fire_at"] == "2026-03-29T01:00:00Z"  # 02:30 does not exist: runs at 03:00 CEST

    inst.now = ts("2026-03-29T01:00:00.2Z")
    assert await svc.scheduler.run_due(inst.now) == 1
    assert await svc.scheduler.run_due(inst.now) == 0
    await svc.delivery.drain(10)
    [fire] = await history(svc, "nightly")
    assert fire["fire_key"] == "2026-03-29T01:00:00Z" and fire["status"] == "delivered"
    assert probe.calls[0][1] == f"{created['id']}:2026-03-29T01:00:00Z"
    assert probe.calls[0][0]["scheduled_time"] == "2026-03-29T01:00:00Z"
    assert (await svc.get("default", "nightly"))["next_fire_at"] == "2026-03-30T00:30:00Z"


async def test_a_failed_delivery_survives_a_restart_and_is_retried_with_the_same_key(make) -> None:
    probe = Probe()
    probe.down = True
    start = ts("2026-01-01T00:00:00Z")
    first = await make(probe, start)
    body = CreateTrigger(
        name="t",
        target="probe",
        schedule={"expression": "at(2026-01-01T00:01:00Z)"},
        retry={"max_attempts": 5, "interval_seconds": 30},
    )
    created = await first.svc.create("default", body)
    first.now = ts("2026-01-01T00:01:00Z")
    await first.svc.scheduler.run_due(first.now)
    await first.svc.delivery.drain(10)
    [fire] = await history(first.svc, "t")
    assert fire["status"] == "pending" and fire["attempts"] == 1 and fire["error"] == "Probe.Down"
    assert fire["next_attempt_at"] == pytest.approx(first.now + 30)
    await first.close()

    probe.down = False
    second = await make(probe, first.now + 31)
    await second.svc.delivery.release_own()
    await second.svc.delivery._sweep()
    await second.svc.delivery.drain(10)
    [fire] = await history(second.svc, "t")
    assert fire["status"] == "delivered" and fire["attempts"] == 2
    key = f"{created['id']}:2026-01-01T00:01:00Z"
    assert [k for _, k in probe.calls] == [key, key]


async def test_a_fire_recorded_but_never_delivered_before_a_crash_is_delivered_once_after(make) -> None:
    probe = Probe()
    first = await make(probe, ts("2026-01-01T00:00:00Z"))
    await first.svc.create(
        "default", CreateTrigger(name="t", target="probe", schedule={"expression": "rate(1 minute)"})
    )
    first.svc.delivery.dispatch = lambda fires: None  # the process dies right after the commit
    first.now = ts("2026-01-01T00:01:00Z")
    await first.svc.scheduler.run_due(first.now)
    await first.close()
    assert probe.calls == []

    second = await make(probe, ts("2026-01-01T00:01:01Z"))
    await second.svc.delivery.release_own()
    await second.svc.delivery._sweep()
    await second.svc.delivery.drain(10)
    assert await second.svc.scheduler.run_due(second.now) == 0  # the due time is not fired again
    fires = await history(second.svc, "t")
    assert [(f["fire_key"], f["status"]) for f in fires] == [("2026-01-01T00:01:00Z", "delivered")]
    assert len(probe.calls) == 1


async def test_scheduler_sleeps_until_the_next_due_time_and_wakes_on_create(make, monkeypatch) -> None:
    probe = Probe()
    inst = await make(probe, time.time())
    inst.clock = time.time  # type: ignore[method-assign]
    svc = TriggerService(inst.rt, clock=time.time)
    passes = 0
    original = svc.scheduler.run_due

    async def counting(now: float) -> int:
        nonlocal passes
        passes += 1
        return await original(now)

    monkeypatch.setattr(svc.scheduler, "run_due", counting)
    task = asyncio.create_task(svc.scheduler.run())
    try:
        await asyncio.sleep(1.0)
        assert passes == 1  # nothing scheduled: one pass, then asleep (not polling)
        due = int(time.time()) + 2
        await svc.create(
            "default",
            CreateTrigger(
                name="soon",
                target="probe",
                schedule={"expression": f"at({iso(due)})"},
            ),
        )
        deadline = time.monotonic() + 15
        while not probe.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert probe.calls, "the schedule did not fire"
        assert time.time() >= due
        assert passes <= 4  # woken by the create, then at the due time: no polling in between
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await svc.delivery.drain(10)
