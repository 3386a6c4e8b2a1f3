"""Schedule expressions, next-fire times across DST changes, misfire plans."""

from __future__ import annotations

from datetime import datetime

import pytest

from aionix.errors import ValidationFailed
from aionix.triggers.schedule import iso, jitter_offset, parse_schedule, plan_fires

BERLIN = "Europe/Berlin"


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def upcoming(expression: str, start: str, n: int, tz: str = "UTC") -> list[str]:
    sched = parse_schedule(expression, tz, anchor=ts("2026-01-01T00:00:00Z"))
    t = ts(start)
    out = []
    for _ in range(n):
        t = sched.next_after(t)
        out.append(iso(t))
    return out


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 9 * * 1-5", "2026-11-27T10:00:00Z", ["2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z"]),
        ("cron(*/15 * * * *)", "2026-11-25T10:07:00Z", ["2026-11-25T10:15:00Z", "2026-11-25T10:30:00Z"]),
        ("30 0 9 * * *", "2026-11-25T10:00:00Z", ["2026-11-26T09:00:30Z", "2026-11-27T09:00:30Z"]),
        ("@hourly", "2026-11-25T10:00:00Z", ["2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z"]),
        ("rate(5 minutes)", "2026-01-01T00:07:00Z", ["2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"]),
        ("rate(1 day)", "2026-01-01T00:00:00Z", ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]),
    ],
)
def test_next_fire_times(expression: str, start: str, expected: list[str]) -> None:
    assert upcoming(expression, start, len(expected)) == expected


def test_at_fires_once_then_never() -> None:
    sched = parse_schedule("at(2026-12-01T10:00:00Z)")
    assert iso(sched.next_after(ts("2026-11-01T00:00:00Z"))) == "2026-12-01T10:00:00Z"
    assert sched.next_after(ts("2026-12-01T10:00:00Z")) is None


def test_at_without_offset_is_in_the_trigger_time_zone() -> None:
    sched = parse_schedule("at(2026-12-01T10:00:00)", BERLIN)
    assert iso(sched.next_after(0)) == "2026-12-01T09:00:00Z"


def test_fixed_time_job_in_the_skipped_hour_runs_once_when_the_clock_jumps() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist that day.
    got = upcoming("30 2 * * *", "2026-03-28T12:00:00Z", 2, BERLIN)
    assert got == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]  # 03:00 CEST, then 02:30 CEST


def test_fixed_time_job_in_the_repeated_hour_runs_once() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; it fires at the first only.
    got = upcoming("30 2 * * *", "2026-10-24T12:00:00Z", 2, BERLIN)
    assert got == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]


def test_wildcard_job_follows_real_time_across_spring_forward() -> None:
    got = upcoming("*/30 * * * *", "2026-03-29T00:10:00Z", 4, BERLIN)
    assert got == ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z"]


def test_wildcard_job_runs_the_repeated_hour_again() -> None:
    got = upcoming("0 * * * *", "2026-10-24T23:10:00Z", 4, BERLIN)
    # 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET: one run per real hour, none twice.
    assert got == ["2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"]


def test_new_york_dst_daily_job_keeps_its_wall_time() -> None:
    got = upcoming("0 9 * * *", "2026-03-07T15:00:00Z", 2, "America/New_York")
    assert got == ["2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"]  # 09:00 EST -> 09:00 EDT


@pytest.mark.parametrize(
    ("expression", "tz", "reason"),
    [
        ("61 * * * *", "UTC", "invalid cron"),
        ("* * *", "UTC", "5 or 6 fields"),
        ("* * * * * * *", "UTC", "5 or 6 fields"),
        ("rate(5 fortnights)", "UTC", "unknown rate unit"),
        ("rate(0 minutes)", "UTC", "at least 1"),
        ("rate(five minutes)", "UTC", "rate(N unit)"),
        ("at(tomorrow)", "UTC", "ISO 8601"),
        ("0 9 * * *", "Mars/Olympus", "time zone"),
    ],
)
def test_bad_expressions_name_the_field(expression: str, tz: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_schedule(expression, tz)
    assert reason in err.value.message
    assert err.value.details[0]["field"] in ("schedule.expression", "schedule.timezone")


def test_jitter_is_stable_and_bounded() -> None:
    a = jitter_offset("trg_1", 1000.0, 30)
    assert a == jitter_offset("trg_1", 1000.0, 30)
    assert 0 <= a < 30
    assert jitter_offset("trg_1", 1000.0, 0) == 0
    assert len({jitter_offset("trg_1", float(d), 30) for d in range(20)}) > 10


EVERY_5 = parse_schedule("*/5 * * * *")


def test_on_time_fire_is_not_a_misfire() -> None:
    plan = plan_fires(
        EVERY_5, ts("2026-01-01T09:00:00Z"), ts("2026-01-01T09:00:20Z"), misfire="skip", grace=60, max_catchup=10
    )
    assert [iso(d) for d in plan.fire] == ["2026-01-01T09:00:00Z"]
    assert plan.skipped_count == 0
    assert iso(plan.next_due) == "2026-01-01T09:05:00Z"


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [
        ("skip", [], 14),
        ("fire_once", ["2026-01-01T10:05:00Z"], 13),
        ("fire_all", [f"2026-01-01T{h:02d}:{m:02d}:00Z" for h, m in [(9, 0), (9, 5), (9, 10), (9, 15)]], 10),
    ],
)
def test_misfire_policies(policy: str, fired: list[str], skipped: int) -> None:
    # Down from 08:58 to 10:07: due 09:00, 09:05, ..., 10:05 (14 due times) were missed.
    plan = plan_fires(
        EVERY_5, ts("2026-01-01T09:00:00Z"), ts("2026-01-01T10:07:00Z"), misfire=policy, grace=60, max_catchup=4
    )
    assert [iso(d) for d in plan.fire] == fired
    assert plan.skipped_count == skipped
    assert len(plan.fire) + plan.skipped_count == 14
    assert iso(plan.next_due) == "2026-01-01T10:10:00Z"


def test_fire_all_within_bound_fires_every_missed_due_time_in_order() -> None:
    plan = plan_fires(
        EVERY_5, ts("2026-01-01T09:00:00Z"), ts("2026-01-01T09:21:00Z"), misfire="fire_all", grace=60, max_catchup=100
    )
    assert [iso(d) for d in plan.fire] == [
        "2026-01-01T09:00:00Z",
        "2026-01-01T09:05:00Z",
        "2026-01-01T09:10:00Z",
        "2026-01-01T09:15:00Z",
        "2026-01-01T09:20:00Z",
    ]
    assert plan.skipped_count == 0


def test_missed_one_off_fires_once_or_is_skipped() -> None:
    at = parse_schedule("at(2026-01-01T09:00:00Z)")
    late = ts("2026-01-01T12:00:00Z")
    once = plan_fires(at, ts("2026-01-01T09:00:00Z"), late, misfire="fire_once", grace=60, max_catchup=10)
    assert [iso(d) for d in once.fire] == ["2026-01-01T09:00:00Z"] and once.next_due is None
    skip = plan_fires(at, ts("2026-01-01T09:00:00Z"), late, misfire="skip", grace=60, max_catchup=10)
    assert skip.fire == [] and skip.skipped_count == 1 and skip.next_due is None
