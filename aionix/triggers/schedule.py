"""Schedule expressions and due times: `cron(...)` (5 or 6 fields), `rate(N unit)`, `at(time)`.

Cron runs on the wall clock of the trigger's IANA time zone, and daylight-saving changes are
handled the way Vixie cron users expect:

- a job at a fixed time (no `*` in the minute or hour field) runs once: when its wall time is
  skipped (spring forward) it runs at the instant the clock jumps; when its wall time happens
  twice (fall back) it runs at the first occurrence only;
- a wildcard job (`*/15 * * * *`, `0 * * * *`) follows real time: wall times that never happen
  are skipped and a repeated hour runs again.

A six-field cron has seconds first (`30 0 9 * * *` is 09:00:30), as in Quartz and node-cron.
`rate(...)` counts from the trigger's anchor (its creation time, whole seconds), so due times
are reproducible. Due times are Unix seconds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from aionix.errors import field_error

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+?)s?\s*\)$")
_WRAP_RE = re.compile(r"^(cron|at)\((.*)\)$", re.DOTALL)
#: Daylight-saving shifts are at most a few hours; this bounds the search near a change.
_DST_WINDOW = 3 * 3600
_MAX_STEPS = 200_000
FIELD = "schedule.expression"


def zone(name: str, field_name: str = "schedule.timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise field_error(field_name, f"unknown IANA time zone {name!r}") from None


def iso(ts: float) -> str:
    """A due time as the stable text used in keys and history: `2026-12-01T10:00:00Z`."""
    dt = datetime.fromtimestamp(ts, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond // 1000:03d}"
    return text + "Z"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; `next_after(t)` is the first due time strictly after `t`."""

    expression: str
    kind: str
    tz: ZoneInfo
    cron: str | None = None
    seconds_field: bool = False
    fixed_time: bool = False
    interval: float | None = None
    anchor: float | None = None
    at: float | None = None
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def next_after(self, t: float) -> float | None:
        if self.kind == "at":
            assert self.at is not None
            return self.at if self.at > t else None
        if self.kind == "rate":
            assert self.interval is not None and self.anchor is not None
            if t < self.anchor:
                return self.anchor
            steps = int((t - self.anchor) // self.interval) + 1
            return self.anchor + steps * self.interval
        return self._cron_next(t)

    def last_at_or_before(self, t: float) -> float | None:
        """The latest due time `<= t` (None when there is none)."""
        if self.kind == "at":
            return self.at if self.at is not None and self.at <= t else None
        if self.kind == "rate":
            assert self.interval is not None and self.anchor is not None
            if t < self.anchor:
                return None
            return self.anchor + int((t - self.anchor) // self.interval) * self.interval
        for window in (60, 3600, 86400, 32 * 86400, 367 * 86400, 5 * 367 * 86400):
            x = self.next_after(t - window)
            if x is None or x > t:
                continue
            for _ in range(_MAX_STEPS):
                nxt = self.next_after(x)
                if nxt is None or nxt > t:
                    return x
                x = nxt
            return x
        return None

    # ------------------------------------------------------------------ cron
    def _iter(self, start: datetime) -> croniter:
        return croniter(self.cron, start, second_at_beginning=self.seconds_field)

    def _offset(self, ts: float) -> timedelta | None:
        return datetime.fromtimestamp(ts, self.tz).utcoffset()

    def _cron_next(self, t: float) -> float | None:
        local = datetime.fromtimestamp(t, self.tz).replace(tzinfo=None)
        it = self._iter(local)
        try:
            wall = it.get_next(datetime)
        except CroniterError:
            return None
        instants = self._instants(wall)
        steady = self._offset(t - _DST_WINDOW) == self._offset(t + _DST_WINDOW)
        if steady and len(instants) == 1 and instants[0] > t:
            later = instants[0]
            if self._offset(later - _DST_WINDOW) == self._offset(later + _DST_WINDOW):
                return later
        return self._cron_next_near_change(t, local)

    def _cron_next_near_change(self, t: float, local: datetime) -> float | None:
        """Around a clock change wall order and real order differ. First occurrences are in
        wall order and so are second occurrences, so the answer is the earliest of: the first
        wall whose first instant is after `t`, and any repeated wall before it whose second
        instant is after `t` (those start at most one offset change before `t`'s wall)."""
        change = abs((self._offset(t - _DST_WINDOW) or timedelta()) - (self._offset(t + _DST_WINDOW) or timedelta()))
        it = self._iter(local - change - timedelta(seconds=1))
        best: float | None = None
        for _ in range(_MAX_STEPS):
            try:
                wall = it.get_next(datetime)
            except CroniterError:
                break
            instants = self._instants(wall)
            for instant in instants:
                if instant > t and (best is None or instant < best):
                    best = instant
            if instants and instants[0] > t:
                break
        return best

    def _instants(self, wall: datetime) -> list[float]:
        """The real instants at which a cron wall time fires (0, 1 or 2 of them)."""
        first = wall.replace(tzinfo=self.tz, fold=0).timestamp()
        second = wall.replace(tzinfo=self.tz, fold=1).timestamp()
        exists = datetime.fromtimestamp(first, self.tz).replace(tzinfo=None) == wall
        if exists:
            if first == second or self.fixed_time:
                return [min(first, second)]
            return sorted({first, second})
        if not self.fixed_time:
            return []
        probe = wall
        for _ in range(24 * 60):
            probe = probe.replace(second=0) + timedelta(minutes=1)
            ts = probe.replace(tzinfo=self.tz, fold=0).timestamp()
            if datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None) == probe:
                return [ts]
        return []


def parse_schedule(expression: str, timezone: str = "UTC", anchor: float | None = None) -> Schedule:
    """Parse a schedule expression; every fault is a 422 naming `schedule.expression`."""
    tz = zone(timezone)
    text = expression.strip()
    rate = _RATE_RE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if unit not in RATE_UNITS:
            raise field_error(FIELD, f"unknown rate unit {unit!r} (second, minute, hour or day)")
        if value < 1:
            raise field_error(FIELD, "a rate must be at least 1")
        start = float(int(anchor)) if anchor is not None else 0.0
        return Schedule(text, "rate", tz, interval=float(value * RATE_UNITS[unit]), anchor=start)
    if text.startswith("rate("):
        raise field_error(FIELD, "expected rate(N unit), e.g. rate(5 minutes)")
    wrapped = _WRAP_RE.match(text)
    if wrapped and wrapped.group(1) == "at":
        return Schedule(text, "at", tz, at=_parse_at(wrapped.group(2).strip(), tz))
    cron = wrapped.group(2).strip() if wrapped else text
    cron = ALIASES.get(cron, cron)
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise field_error(FIELD, f"a cron expression has 5 or 6 fields, got {len(fields)}")
    try:
        croniter(cron, datetime(2026, 1, 1), second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError, KeyError) as exc:
        raise field_error(FIELD, f"invalid cron expression {cron!r}: {exc}") from None
    minute, hour = (fields[1], fields[2]) if len(fields) == 6 else (fields[0], fields[1])
    fixed = "*" not in minute and "*" not in hour
    return Schedule(text, "cron", tz, cron=cron, seconds_field=len(fields) == 6, fixed_time=fixed)


def _parse_at(value: str, tz: ZoneInfo) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise field_error(
            FIELD, f"at(...) needs an ISO 8601 time such as 2026-12-01T10:00:00Z, got {value!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def jitter_offset(trigger_id: str, due: float, jitter_seconds: float) -> float:
    """A stable pseudo-random delay in `[0, jitter_seconds)` for one due time, so a restart
    computes the same run time again."""
    if jitter_seconds <= 0:
        return 0.0
    digest = hashlib.sha256(f"{trigger_id}:{due!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter_seconds


@dataclass
class FirePlan:
    """What to do with a trigger whose due time has come: fire these due times, record the
    skipped ones, and move on to `next_due`."""

    fire: list[float]
    skipped_count: int = 0
    skipped_first: float | None = None
    skipped_last: float | None = None
    next_due: float | None = None


def plan_fires(schedule: Schedule, due: float, now: float, *, misfire: str, grace: float, max_catchup: int) -> FirePlan:
    """Decide the fires for a trigger due at `due` (<= now). A due time more than `grace`
    seconds late is a misfire and follows the `misfire` policy (skip, fire_once, fire_all)."""
    if now - due <= grace:
        return FirePlan(fire=[due], next_due=schedule.next_after(due))
    latest = schedule.last_at_or_before(now)
    if latest is None or latest < due:
        latest = due
    next_due = schedule.next_after(latest)
    if misfire == "fire_all":
        fire: list[float] = []
        x: float | None = due
        while x is not None and x <= now and len(fire) < max_catchup:
            fire.append(x)
            x = schedule.next_after(x)
        rest = _count(schedule, x, latest) if x is not None and x <= now else 0
        plan = FirePlan(fire=fire, next_due=next_due, skipped_count=rest)
        if rest:
            plan.skipped_first, plan.skipped_last = x, latest
        return plan
    total = 1 + _count(schedule, schedule.next_after(due), latest)
    if misfire == "skip":
        return FirePlan(fire=[], skipped_count=total, skipped_first=due, skipped_last=latest, next_due=next_due)
    plan = FirePlan(fire=[latest], next_due=next_due, skipped_count=total - 1)
    if total > 1:
        plan.skipped_first, plan.skipped_last = due, schedule.last_at_or_before(latest - 1e-6) or due
    return plan


def _count(schedule: Schedule, start: float | None, last: float, limit: int = 100_000) -> int:
    """How many due times lie in `[start, last]` (counting stops at `limit`)."""
    if start is None or start > last:
        return 0
    if schedule.kind == "rate":
        assert schedule.interval is not None
        return round((last - start) / schedule.interval) + 1
    n = 0
    x: float | None = start
    while x is not None and x <= last and n < limit:
        n += 1
        x = schedule.next_after(x)
    return n
