"""Executions on many nodes (issue 17): leases, take-over after a crash, fencing of a paused
node, and cancel, callbacks and watchers that work whichever node the client reaches. Real
server processes on one real PostgreSQL database (tests/cluster/nodes.py)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import httpx

LEASE = 2.0


def create(api: httpx.Client, definition: dict[str, Any]) -> str:
    name = f"wf-{uuid.uuid4().hex[:8]}"
    r = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


def wait_status(api: httpx.Client, eid: str, timeout: float = 30.0, until: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        env = api.get(f"/api/v1/executions/{eid}").json()
        if (env["status"] != "RUNNING") if until is None else env["status"] == until:
            return env
        assert time.monotonic() < deadline, env
        time.sleep(0.05)


def owner(group: Any, eid: str) -> tuple[str, int]:
    (row,) = group.sql("SELECT owner, epoch FROM sf_executions WHERE id = ?", (eid,))
    return row[0], row[1]


def history(api: httpx.Client, eid: str) -> list[dict[str, Any]]:
    return api.get(f"/api/v1/executions/{eid}/history", params={"limit": 500}).json()["items"]


def test_a_killed_nodes_execution_resumes_on_another_node_within_the_lease(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    with a.client() as api_a, b.client() as api_b:
        name = create(
            api_a,
            {
                "entry": "First",
                "states": {
                    "First": {"type": "set", "value": {"n": 1}, "next": "Nap"},
                    "Nap": {"type": "wait", "seconds": 1.5, "next": "Done"},
                    "Done": {"type": "set", "value": "{% input.n + 1 %}", "end": True},
                },
            },
        )
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={"input": {}}).json()["execution_id"]
        assert owner(group, eid) == (group.node_id(a), 1)
        group.kill(a)
        killed = time.monotonic()
        env = wait_status(api_b, eid, timeout=20)
        took = time.monotonic() - killed
    assert env["status"] == "SUCCEEDED" and env["output"] == 2, env
    # the lease runs out (2 s), B claims within a second, the wait's remaining ~1.5 s, the end
    assert took < LEASE + 1.0 + 1.5 + 1.0, took
    assert owner(group, eid) == (group.node_id(b), 2)
    with b.client() as api_b:
        events = history(api_b, eid)
    resumed = [e["detail"] for e in events if e["type"] == "ExecutionResumed"]
    assert resumed == [{"after_seq": resumed[0]["after_seq"], "node": group.node_id(b)}]
    # the state before the crash ran once (its checkpoint came before the wait), the end once
    assert [e["state"] for e in events if e["type"] == "StateEntered"].count("First") == 1, events
    assert [e["type"] for e in events].count("ExecutionSucceeded") == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_a_paused_node_is_fenced_when_it_wakes(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    with a.client() as api_a, b.client() as api_b:
        name = create(
            api_a,
            {
                "entry": "Loop",
                "states": {
                    "Loop": {"type": "set", "value": "{% input %}", "next": "Nap"},
                    "Nap": {"type": "wait", "seconds": 0.3, "next": "Tail"},
                    "Tail": {"type": "wait", "seconds": 3, "end": True},
                },
            },
        )
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={"input": {"x": 1}}).json()["execution_id"]
        time.sleep(0.5)  # in the long wait on A
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(LEASE + 1.5)  # A's lease runs out; B claims the execution
            assert owner(group, eid) == (group.node_id(b), 2)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        env = wait_status(api_b, eid, timeout=20)
        assert env["status"] == "SUCCEEDED", env
        # A woke with its timer due: it stopped its run (its heartbeat was a lease late) or its
        # checkpoint was refused; either way it wrote nothing after B's claim
        time.sleep(1.0)
        events = history(api_b, eid)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["type"] for e in events].count("ExecutionSucceeded") == 1
        assert owner(group, eid)[0] == group.node_id(b)
        log = a.log()
        assert "lost its lease" in log or "its leases are lost" in log, log[-3000:]
        # A is a live node again and serves requests
        assert api_a.get(f"/api/v1/executions/{eid}").json()["status"] == "SUCCEEDED"


def test_cancel_reaches_the_owning_node(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    with a.client() as api_a, b.client() as api_b:
        name = create(api_a, {"entry": "W", "states": {"W": {"type": "wait", "seconds": 60, "end": True}}})
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
        assert owner(group, eid)[0] == group.node_id(a)
        # B's doctor does not call A's running execution stuck
        checks = api_b.get("/api/v1/admin/doctor").json()["checks"]
        stuck = [c for c in checks if c["check"] == "stuck-executions"]
        assert [c["status"] for c in stuck] == ["ok"] and "another live node" in stuck[0]["message"], stuck
        t0 = time.monotonic()
        r = api_b.post(f"/api/v1/executions/{eid}/cancel", json={})
        took = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ABORTED", r.json()
        assert took < 2.0, took  # NOTIFY to A, A aborts and checkpoints: not a lease's wait
        # A aborted it under its own lease (no take-over)
        assert owner(group, eid) == (group.node_id(a), 1)
        assert api_a.get(f"/api/v1/executions/{eid}").json()["status"] == "ABORTED"


def test_cancel_of_a_dead_nodes_execution_takes_it_over(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": 30}})  # no claim by lease expiry in time
    a, b = group.nodes
    with a.client() as api_a, b.client() as api_b:
        name = create(api_a, {"entry": "W", "states": {"W": {"type": "wait", "seconds": 60, "end": True}}})
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
        a.stop()  # a clean stop says so in its node row: its work is free at once
        r = api_b.post(f"/api/v1/executions/{eid}/cancel", json={})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ABORTED", (r.json(), b.log()[-3000:])
        assert owner(group, eid)[0] == group.node_id(b)


def test_callbacks_and_watchers_work_on_any_node(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    with a.client() as api_a, b.client() as api_b:
        notifier = create(api_a, {"entry": "Send", "states": {"Send": {"type": "succeed"}}})
        name = create(
            api_a,
            {
                "entry": "Ask",
                "states": {
                    "Ask": {
                        "type": "task",
                        "action": f"trn:stepflow:default:template/{notifier}",
                        "mode": "callback",
                        "parameters": {"token": "{% context.task_token %}"},
                        "output": {"expression": {"approved": "{% result.approved %}"}},
                        "end": True,
                    }
                },
            },
        )
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
        assert owner(group, eid)[0] == group.node_id(a)
        deadline = time.monotonic() + 20
        while not (sent := api_b.get("/api/v1/executions", params={"workflow": notifier}).json()["items"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        token = sent[0]["input"]["token"]
        assert api_b.post(f"/api/v1/callbacks/{token}/heartbeat", json={}).status_code == 200
        # B holds a long-poll on an execution A runs while the callback is settled on B
        t0 = time.monotonic()
        r = api_b.post(f"/api/v1/callbacks/{token}/success", json={"output": {"approved": True}})
        assert r.status_code == 200, r.text
        env = api_b.get(f"/api/v1/executions/{eid}", params={"wait_seconds": 10}).json()
        if env["status"] == "RUNNING":
            env = wait_status(api_b, eid, timeout=10)
        took = time.monotonic() - t0
        assert env["status"] == "SUCCEEDED" and env["output"] == {"approved": True}, env
        assert took < 2.0, took  # NOTIFY, not a poll of the token
        assert owner(group, eid) == (group.node_id(a), 1)


def test_an_event_stream_on_another_node_follows_the_owner_within_a_notify(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    steps = {f"W{i}": {"type": "wait", "seconds": 0.25, "next": f"W{i + 1}"} for i in range(6)}
    steps["W6"] = {"type": "set", "value": "ok", "end": True}
    with a.client() as api_a:
        name = create(api_a, {"entry": "W0", "states": steps})
        eid = api_a.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
    assert owner(group, eid)[0] == group.node_id(a)
    lags: list[float] = []
    kinds: list[str] = []
    with b.client() as c, c.stream("GET", f"/api/v1/executions/{eid}/stream", timeout=30) as resp:
        event = None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                kinds.append(event)
                if event == "done":
                    break
            elif line.startswith("data: ") and event == "WaitStarted":
                import json

                lags.append(time.time() - json.loads(line[6:])["ts"])
    assert kinds[-2:] == ["ExecutionSucceeded", "done"] and len(lags) == 6, kinds
    # each wait's start reaches B's stream by A's NOTIFY (~50 ms batches), not B's 1 s fallback
    # look (which would make the typical lag about half a second)
    lags.sort()
    assert lags[len(lags) // 2] < 0.3, lags


def test_a_key_revoked_on_one_node_is_refused_by_the_others_at_once(nodes):
    group = nodes(2, config={"cluster": {"lease_seconds": LEASE}})
    a, b = group.nodes
    with a.client() as api_a:
        made = api_a.post("/api/v1/keys", json={"name": "short-lived", "role": "viewer"}).json()
    with b.client(made["key"]) as as_key:
        assert as_key.get("/api/v1/workflows").status_code == 200  # B now caches the key (5 s)
        with a.client() as api_a:
            assert api_a.delete(f"/api/v1/keys/{made['id']}").status_code in (200, 204)
        deadline = time.monotonic() + 1.0
        while (status := as_key.get("/api/v1/workflows").status_code) == 200:
            assert time.monotonic() < deadline, "B still accepts the revoked key a second later"
            time.sleep(0.05)
        assert status == 401


def test_a_copied_data_dir_does_not_make_a_second_live_node_with_the_same_id(nodes):
    group = nodes(1, config={"cluster": {"lease_seconds": 30}})
    (a,) = group.nodes
    node_id = group.node_id(a)
    # as if A ran on another machine and its data dir (node.id with it) were copied here
    group.sql("UPDATE nodes SET host = 'elsewhere' WHERE id = ?", (node_id,), write=True)
    copy = group.root / "node1" / "data"  # the next node's data dir (tests/serverproc.py)
    copy.mkdir(parents=True)
    (copy / "node.id").write_text(node_id + "\n")
    try:
        group.add(timeout=30)
    except RuntimeError as exc:
        message = str(exc)
    else:
        raise AssertionError("a second node started with a live node's id")
    assert f"node id {node_id}" in message and "elsewhere" in message and "copied" in message, message[-2000:]
    # A goes on as before
    with a.client() as api:
        assert api.get("/api/v1/cluster/nodes").json()["items"][0]["id"] == node_id


def test_a_start_after_another_node_updated_the_workflow_runs_the_new_version(nodes):
    """Each node remembers a workflow's latest version for its starts; when another node wrote a
    new one, the start's first checkpoint finds its remembered version stale, stores nothing and
    the start runs again on the new version: a start after the update's answer always sees it."""
    group = nodes(2)
    a, b = group.nodes

    def definition(v: int) -> dict[str, Any]:
        return {"entry": "S", "states": {"S": {"type": "set", "value": {"v": v}, "end": True}}}

    with a.client() as api_a, b.client() as api_b:
        name = create(api_a, definition(1))
        start = f"/api/v1/workflows/{name}/executions"
        for _ in range(2):  # node a now remembers version 1
            env = api_a.post(start, json={"input": {}, "mode": "sync"}).json()
            assert (env["version"], env["output"]) == (1, {"v": 1}), env
        for v in (2, 3):
            r = api_b.put(f"/api/v1/workflows/{name}", json={"definition": definition(v)})
            assert r.status_code == 200, r.text
            env = api_a.post(start, json={"input": {}, "mode": "sync"}).json()
            assert (env["status"], env["version"], env["output"]) == ("SUCCEEDED", v, {"v": v}), env
        # the stale attempts stored nothing: every execution of the workflow is one of the 4 answers
        rows = group.sql("SELECT version, status FROM sf_executions WHERE workflow = ? ORDER BY started_at", (name,))
        assert [tuple(r) for r in rows] == [(1, "SUCCEEDED"), (1, "SUCCEEDED"), (2, "SUCCEEDED"), (3, "SUCCEEDED")]
