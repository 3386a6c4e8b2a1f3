"""The restart tests: stop (or kill) the server just before due times and start it after.

Every due time ends up fired exactly once or recorded as skipped per the misfire policy; none is
fired twice and none is lost silently.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from aionix.triggers.schedule import iso
from triggers.support import history, unique, wait_for

ENV = {"AIONIX_TRIGGERS_MISFIRE_GRACE_SECONDS": "2"}
SKIPPED_RE = re.compile(r"^(\d+) due time\(s\) from (\S+) to (\S+) ")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make_trigger(client, expression: str, misfire: str) -> str:
    name = unique(misfire.replace("_", "-"))
    r = client.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": "transform",
            "input": "{'expression': 'id', 'data': $}",
            "schedule": {"expression": expression, "misfire": misfire},
        },
    )
    assert r.status_code == 201, r.text
    return name


def accounted(fires: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """(due times fired, due times recorded as skipped) of a rate(1 second) trigger."""
    fired = [f["due_at"] for f in fires if f["origin"] == "schedule" and f["status"] != "skipped"]
    skipped: list[float] = []
    for f in fires:
        if f["status"] == "skipped":
            m = SKIPPED_RE.match(f["cause"])
            assert m, f["cause"]
            count, first, last = int(m.group(1)), ts(m.group(2)), ts(m.group(3))
            assert count == round(last - first) + 1
            skipped += [first + i for i in range(count)]
    return fired, skipped


def test_one_off_due_while_stopped_fires_per_policy_exactly_once(make_server) -> None:
    server = make_server(env=ENV).start()
    due = int(time.time()) + 7
    names = {}
    with server.client() as c:
        for policy in ("fire_once", "fire_all", "skip"):
            names[policy] = make_trigger(c, f"at({iso(due)})", policy)
    server.stop()
    assert time.time() < due, "the server took too long to stop; the test needs it down at the due time"
    while time.time() < due + 3:
        time.sleep(0.2)
    server.start()
    with server.client() as c:
        for policy in ("fire_once", "fire_all"):
            fires = wait_for(
                lambda p=policy: [f for f in history(c, names[p]) if f["status"] == "delivered"], 30, what=policy
            )
            time.sleep(0.5)
            fires = history(c, names[policy])
            assert [(f["fire_key"], f["status"]) for f in fires] == [(iso(due), "delivered")], fires
            assert c.get(f"/api/v1/triggers/{names[policy]}").json()["next_fire_at"] is None
        [skipped] = wait_for(lambda: history(c, names["skip"]), 30, what="the skipped record")
        assert skipped["status"] == "skipped" and skipped["error"] == "Trigger.Misfire"
        assert skipped["cause"].startswith(f"1 due time(s) from {iso(due)} to {iso(due)} ")
    server.stop()


def test_rate_schedule_across_a_crash_loses_and_repeats_nothing(make_server) -> None:
    server = make_server(env=ENV).start()
    with server.client() as c:
        every = {p: make_trigger(c, "rate(1 second)", p) for p in ("fire_all", "fire_once", "skip")}
        wait_for(lambda: all(len(history(c, n)) >= 2 for n in every.values()), 30, what="fires before the crash")
    server.kill()
    down = time.time()
    time.sleep(4)
    server.start()
    with server.client() as c:
        wait_for(
            lambda: all(any(f["created_at"] > down + 4 for f in history(c, n)) for n in every.values()),
            30,
            what="fires after the restart",
        )
        time.sleep(1.5)
        for n in every.values():
            c.post(f"/api/v1/triggers/{n}/disable")
        results = {p: history(c, n) for p, n in every.items()}
    server.stop()
    for policy, fires in results.items():
        fired, skipped = accounted(fires)
        assert len(fired) == len(set(fired)), f"{policy}: a due time fired twice"
        assert not set(fired) & set(skipped), f"{policy}: a due time both fired and skipped"
        everything = sorted(fired + skipped)
        expected = [everything[0] + i for i in range(round(everything[-1] - everything[0]) + 1)]
        assert everything == expected, f"{policy}: a due time was lost silently"
        assert all(f["status"] in ("delivered", "skipped") for f in fires), fires
        missed = [d for d in everything if down + 0.5 < d < down + 4]
        assert len(missed) >= 2
        if policy == "fire_all":
            assert skipped == [] and set(missed) <= set(fired)
        elif policy == "fire_once":
            assert len([d for d in fired if down < d < down + 4]) <= 1 and len(skipped) >= 2
        else:
            assert set(missed) <= set(skipped)
