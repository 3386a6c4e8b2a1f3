"""The trigger outbox on many nodes (one PostgreSQL database): every fire is delivered once.

Two nodes race for the same due fires (claims in one transaction, `FOR UPDATE SKIP LOCKED`); a
node that starts gives back only its own claims, never those of a live node that is delivering
them; the claims of a node that dies are taken by another once its lease ran out, and delivered
with the same idempotency key.
"""

from __future__ import annotations

import time

from cluster.common import by_key, delivered_count, history, make_function, unique, wait_for

LEASE = 3.0


def event_trigger(client, fn: str) -> tuple[str, str, str]:
    source, name = unique("src"), unique("outbox")
    r = client.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:aionixfn:default:function/{fn}",
            "event": {"pattern": {"source": [source]}},
            "retry": {"max_attempts": 3, "interval_seconds": 1},
        },
    )
    assert r.status_code == 201, r.text
    return name, source, r.json()["id"]


def test_due_fires_are_claimed_and_delivered_once_by_two_racing_nodes(nodes) -> None:
    group = nodes(
        2,
        config={
            "cluster": {"lease_seconds": LEASE},
            "triggers": {"scheduler_batch": 4, "max_wake_interval_seconds": 0.5},
        },
    )
    a, b = group.nodes
    admin = a.client()
    fn = make_function(admin)
    name, _, trigger_id = event_trigger(admin, fn)
    # 60 fires in the outbox, unclaimed, falling due over 3 s: both nodes wake at each due time
    # and race for it
    n = 60
    (now,) = group.sql("SELECT extract(epoch from clock_timestamp())::float8")[0]
    for i in range(n):
        group.sql(
            "INSERT INTO trigger_fires (tenant, trigger_id, fire_key, origin, due_at, payload, payload_digest, status,"
            " attempts, next_attempt_at, claimed_at, claimed_by, created_at, updated_at)"
            " VALUES ('default', ?, ?, 'event', NULL, ?, NULL, 'pending', 0, ?, NULL, NULL, ?, ?)",
            (trigger_id, f"k{i:03d}", '{"detail": {}}', now + 1.0 + i * 0.05, now, now),
            write=True,
        )
    fires = wait_for(
        lambda: (h := history(admin, name)) and all(f["status"] == "delivered" for f in h) and len(h) == n and h,
        90,
        what=f"{n} deliveries\n{group.logs()}",
    )
    assert all(f["attempts"] == 1 for f in fires)
    runs = by_key(admin, fn)
    assert runs == {f"{trigger_id}:k{i:03d}": 1 for i in range(n)}, runs
    per_node = [delivered_count(p, "event") for p in (a, b)]
    assert sum(per_node) == n, per_node
    assert min(per_node) > 0, f"one node delivered all: {per_node}"
    for proc in (a, b):
        assert "trigger outbox sweep failed" not in proc.log()


def test_a_starting_node_leaves_the_claims_of_a_live_node_alone(nodes) -> None:
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    admin = a.client()
    fn = make_function(admin)
    name, source, trigger_id = event_trigger(admin, fn)
    events = [
        admin.post("/api/v1/events", json={"source": source, "type": "T", "detail": {"sleep": 4}}).json()["id"]
        for _ in range(3)
    ]
    claims = group.sql(
        "SELECT fire_key, claimed_by FROM trigger_fires WHERE trigger_id = ? AND status = 'pending'", (trigger_id,)
    )
    assert sorted(claims) == sorted((e, group.node_id(a)) for e in events)
    group.kill(b)  # b crashes and comes back while a delivers
    b.start()
    fires = wait_for(
        lambda: (h := history(admin, name)) and len(h) == 3 and all(f["status"] == "delivered" for f in h) and h,
        60,
        what="deliveries",
    )
    assert all(f["attempts"] == 1 for f in fires)
    assert by_key(admin, fn) == {f"{trigger_id}:{e}": 1 for e in events}
    assert delivered_count(b, "event") == 0  # b delivered none of them again


def test_a_dead_nodes_claims_are_delivered_by_another_after_its_lease(nodes) -> None:
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    admin = a.client()
    fn = make_function(admin)
    name, source, trigger_id = event_trigger(admin, fn)
    events = [
        admin.post("/api/v1/events", json={"source": source, "type": "T", "detail": {"sleep": 3}}).json()["id"]
        for _ in range(2)
    ]
    node_a = group.node_id(a)
    time.sleep(0.3)
    group.kill(a)  # mid-delivery: the function runs, nothing is recorded
    # while a's lease holds (its last heartbeat is younger than LEASE, in the database's clock)
    # its claims stay: b waits
    live_checks = 0
    while True:
        ((live, claims),) = group.sql(
            "SELECT (SELECT count(*) FROM nodes WHERE id = ? AND stopped_at IS NULL"
            "        AND heartbeat_at >= extract(epoch from clock_timestamp())::float8 - ?),"
            " (SELECT count(*) FROM trigger_fires WHERE trigger_id = ? AND status = 'pending' AND claimed_by = ?)",
            (node_a, LEASE, trigger_id, node_a),
        )
        if not live:
            break
        assert claims == 2, "b took a live node's claims"
        live_checks += 1
        time.sleep(0.1)
    assert live_checks > 0
    client = b.client()
    fires = wait_for(
        lambda: (h := history(client, name)) and len(h) == 2 and all(f["status"] == "delivered" for f in h) and h,
        60,
        what=f"failover deliveries\n{group.logs()}",
    )
    assert all(f["attempts"] == 1 for f in fires)
    # b delivered each under the fire's own key (a's runs were cut off before they were recorded)
    assert by_key(client, fn) == {f"{trigger_id}:{e}": 1 for e in events}
    assert delivered_count(b, "event") == 2
