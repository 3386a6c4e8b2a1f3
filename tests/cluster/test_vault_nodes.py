"""CredVault's loops on many nodes (one PostgreSQL database): each due rotation runs once.

Every node's rotation loop sees the same due secret; the one whose compare-and-set on its due
time (`vault.claim_rotation`) wins invokes the rotation target and writes the new version. The
purge loops lock the due rows, skipping those another node is purging.
"""

from __future__ import annotations

import time
from collections import Counter

from cluster.common import invocations, make_function, unique, wait_for

PERIOD = 2  # the rotation schedule: every 2 seconds (a 6-field cron, seconds last)


def test_each_due_rotation_runs_once_across_two_nodes(nodes) -> None:
    group = nodes(2, config={"cluster": {"lease_seconds": 3}, "vault": {"rotation_check_seconds": 0.2}})
    a, b = group.nodes
    admin = a.client()
    fn = make_function(admin)
    name = unique("rotated")
    r = admin.post(
        "/api/v1/secrets",
        json={
            "name": name,
            "type": "password",
            "value": "initial-value-0",
            "rotation": {"target": f"trn:aionixfn:default:function/{fn}", "schedule": f"* * * * * */{PERIOD}"},
        },
    )
    assert r.status_code == 201, r.text
    time.sleep(9)
    r = admin.put(f"/api/v1/secrets/{name}", json={"clear_rotation": True})
    assert r.status_code == 200, r.text
    time.sleep(1)  # a rotation that was running when the schedule was cleared ends
    versions = b.client().get(f"/api/v1/secrets/{name}/versions").json()["items"]
    rotated = [v for v in versions if v["version"] > 1]
    assert len(rotated) >= 3, versions
    assert all(v["created_by"] == "rotation-schedule" for v in rotated), rotated
    # one version per due time (due times are whole multiples of PERIOD seconds)
    slots = Counter(int(v["created_at"] // PERIOD) for v in rotated)
    assert max(slots.values()) == 1, sorted(v["created_at"] for v in rotated)
    # and the rotation target ran once per version: no node rotated a due time the other took
    # (each node writes its invocation records a moment after the run: wait for both)
    wait_for(lambda: len(invocations(admin, fn)) == len(rotated), 10, what="one rotation run per version")
    for proc in (a, b):
        assert "rotation check failed" not in proc.log()
        assert "scheduled rotation of secret" not in proc.log()


def test_deleted_secrets_are_purged_once_by_racing_nodes(nodes) -> None:
    group = nodes(
        2, config={"vault": {"purge_interval_seconds": 0.3, "recovery_window_days": 0}, "cluster": {"lease_seconds": 3}}
    )
    a, b = group.nodes
    admin = a.client()
    names = [unique("gone") for _ in range(20)]
    for n in names:
        r = admin.post("/api/v1/secrets", json={"name": n, "type": "password", "value": "to-be-purged"})
        assert r.status_code == 201, r.text
        assert admin.delete(f"/api/v1/secrets/{n}").status_code == 200
    wait_for(
        lambda: not group.sql("SELECT count(*) FROM vault_secrets WHERE deleted_at IS NOT NULL")[0][0],
        30,
        what="purges",
    )
    assert group.sql("SELECT count(*) FROM vault_versions WHERE name LIKE 'gone-%'") == [(0,)]
    for n in names:
        assert b.client().get(f"/api/v1/secrets/{n}").status_code == 404
    for proc in (a, b):
        assert "purging deleted secrets failed" not in proc.log()
