"""Schedules on many nodes (one PostgreSQL database): each due time fires exactly once.

Every node's scheduler wakes at the same due time. The one whose compare-and-set on the
trigger's `next_fire_at` (`triggers.advance_schedule`) wins records the fire, in the same
transaction; the others change no row and record nothing (and `UNIQUE(trigger_id, fire_key)`
would refuse a second fire of a due time anyway).
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime

from cluster.common import by_key, delivered_count, history, make_function, unique, wait_for


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_every_due_time_fires_once_across_three_nodes(nodes) -> None:
    group = nodes(3, config={"cluster": {"lease_seconds": 3}})
    admin = group.nodes[0].client()
    fn = make_function(admin)
    name = unique("every-second")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:aionixfn:default:function/{fn}",
            "schedule": {"expression": "rate(1 second)"},
        },
    )
    assert r.status_code == 201, r.text
    trigger_id = r.json()["id"]
    time.sleep(8)
    r = admin.post(f"/api/v1/triggers/{name}/disable")
    assert r.status_code == 200, r.text
    fires = wait_for(
        lambda: (h := history(admin, name)) and all(f["status"] != "pending" for f in h) and h,
        60,
        what="deliveries",
    )
    assert all(f["status"] == "delivered" and f["attempts"] == 1 for f in fires), fires
    due = sorted(ts(f["fire_key"]) for f in fires)
    assert len(due) >= 5, due
    assert [b - a for a, b in itertools.pairwise(due)] == [1.0] * (len(due) - 1)  # none twice, none lost
    assert by_key(admin, fn) == {f"{trigger_id}:{f['fire_key']}": 1 for f in fires}
    trigger = admin.get(f"/api/v1/triggers/{name}").json()
    assert trigger["fire_count"] == len(fires)  # one compare-and-set won per due time
    per_node = [delivered_count(p, "schedule") for p in group.nodes]
    assert sum(per_node) == len(fires), per_node
    for proc in group.nodes:
        assert "trigger scheduler pass failed" not in proc.log()
