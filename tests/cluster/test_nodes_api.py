"""The cluster's nodes as users see them (issue 17): `GET /api/v1/cluster/nodes`, the node in
`/healthz`, `/metrics` and `aio status`, on real server processes.

- SQLite (or whatever store the run uses, each server on its own database): one node, this one,
  live, with the id `/healthz` reports, the server's own pid and version;
- PostgreSQL (Debian's package): two nodes on one database both list both nodes live, each
  marking itself; a node stopped with SIGTERM is listed stopped at once; a SIGKILLed node is
  listed not live once its lease ran out, while the other still answers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pgstore
import pytest
from serverproc import ServerProcess

from aionix import __version__
from aionix.cli.main import run

pytestmark = pytest.mark.timeout(240)

LEASE = 2.0


def nodes_of(server: ServerProcess, key: str | None = None) -> dict:
    with server.client(key) as c:
        r = c.get("/api/v1/cluster/nodes")
    assert r.status_code == 200, r.text
    return r.json()


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def aio(server: ServerProcess, capsys, monkeypatch, tmp_path: Path, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "cli-creds"))
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    monkeypatch.delenv("AIONIX_PROFILE", raising=False)
    capsys.readouterr()
    code = run(["status", *args])
    return code, capsys.readouterr().out


def test_one_server_is_one_live_node_in_every_view(make_server, capsys, monkeypatch, tmp_path):
    server = make_server().start()
    health = httpx.get(server.url + "/healthz").json()
    node_id = health["node"]["id"]
    assert node_id and health["node"]["store"] == ("postgres" if pgstore.on_postgres() else "sqlite")

    data = nodes_of(server)
    assert data["node"] == node_id
    [me] = data["items"]
    assert me["id"] == node_id and me["self"] is True and me["live"] is True
    assert me["version"] == __version__ and me["pid"] == server.proc.pid and me["stopped_at"] is None
    assert me["url"] == server.url
    assert 0 <= me["heartbeat_age_seconds"] < 10
    assert set(me["load"]) == {"executions", "loadavg"} and me["load"]["executions"] >= 0

    # a viewer may read it (as it may read /healthz); no key may not
    with server.client() as admin:
        viewer = admin.post("/api/v1/keys", json={"name": "nodes-viewer", "role": "viewer"}).json()["key"]
    seen = nodes_of(server, viewer)
    assert seen["node"] == node_id
    # a tenant's key sees the nodes and their load, not where they run
    [me_seen] = seen["items"]
    assert me_seen["id"] == node_id and me_seen["live"] is True
    assert me_seen["host"] is None and me_seen["pid"] is None and me_seen["url"] is None
    assert httpx.get(server.url + "/api/v1/cluster/nodes").status_code == 401

    text = httpx.get(server.url + "/metrics").text
    assert metric(text, "aionix_node_info", f'{{node="{node_id}",version="{__version__}"}}') == 1.0
    assert metric(text, "aionix_cluster_nodes_live") == 1.0
    for name in ("claimed", "lease_lost", "fenced", "messages_sent", "messages_received"):
        assert f"# TYPE aionix_cluster_{name}_total counter" in text
        assert metric(text, f"aionix_cluster_{name}_total") == 0.0

    code, out = aio(server, capsys, monkeypatch, tmp_path, "-o", "json")
    status = json.loads(out)
    assert code == 0 and status["node"]["id"] == node_id
    assert [(n["id"], n["self"], n["live"]) for n in status["nodes"]] == [(node_id, True, True)]
    code, out = aio(server, capsys, monkeypatch, tmp_path)
    assert code == 0 and "nodes (1 live):" in out
    header, row = out.split("nodes (1 live):\n", 1)[1].splitlines()[:2]
    assert header.split() == ["ID", "THIS", "VERSION", "HOST", "EXECUTIONS", "LOADAVG", "HEARTBEAT_AGE_S"]
    assert row.split()[:3] == [node_id, "*", __version__]
    server.stop()


def start_nodes(tmp_path: Path, n: int) -> list[ServerProcess]:
    """`n` nodes on one fresh PostgreSQL database with one master key (the first makes the admin key)."""
    url, password = pgstore.new_database("nodes")
    env = {
        "AIONIX_DATABASE_URL": url,
        "AIONIX_DATABASE_PASSWORD": password,
        "AIONIX_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "AIONIX_CLUSTER_LEASE_SECONDS": str(LEASE),
    }
    nodes: list[ServerProcess] = []
    for i in range(n):
        node = ServerProcess(tmp_path / f"node{i}", env=env)
        if nodes:
            node.admin_key = nodes[0].admin_key
        nodes.append(node.start(60))
    return nodes


def by_id(data: dict) -> dict[str, dict]:
    return {n["id"]: n for n in data["items"]}


def test_nodes_on_one_postgres_database_see_each_other_and_who_left(tmp_path, capsys, monkeypatch):
    nodes = start_nodes(tmp_path, 3)
    try:
        ids = [httpx.get(s.url + "/healthz").json()["node"]["id"] for s in nodes]
        assert len(set(ids)) == 3
        for s, me in zip(nodes, ids, strict=True):  # any node answers, with the same nodes
            data = nodes_of(s)
            assert data["node"] == me
            seen = by_id(data)
            assert set(seen) == set(ids)
            assert all(n["live"] and n["stopped_at"] is None for n in seen.values())
            assert [i for i, n in seen.items() if n["self"]] == [me]
            assert {n["pid"] for n in seen.values()} == {p.proc.pid for p in nodes}
            assert metric(httpx.get(s.url + "/metrics").text, "aionix_cluster_nodes_live") == 3.0
        code, out = aio(nodes[1], capsys, monkeypatch, tmp_path, "-o", "json")
        assert code == 0 and sorted(n["id"] for n in json.loads(out)["nodes"]) == sorted(ids)

        # SIGTERM: a clean stop says so in the node's row, at once
        before = time.time()
        assert nodes[0].stop() == 0
        gone = by_id(nodes_of(nodes[1]))[ids[0]]
        assert gone["live"] is False and gone["stopped_at"] >= before - 1 and gone["heartbeat_age_seconds"] is None
        assert all(by_id(nodes_of(nodes[1]))[i]["live"] for i in ids[1:])

        # SIGKILL: no word from the node; it is not live once its heartbeat is a lease old
        nodes[2].proc.send_signal(signal.SIGKILL)
        nodes[2].proc.wait(10)
        deadline = time.monotonic() + LEASE * 5
        while by_id(nodes_of(nodes[1]))[ids[2]]["live"] and time.monotonic() < deadline:
            time.sleep(0.2)
        lost = by_id(nodes_of(nodes[1]))[ids[2]]
        assert lost["live"] is False and lost["stopped_at"] is None and lost["heartbeat_age_seconds"] >= LEASE

        text = httpx.get(nodes[1].url + "/metrics").text
        assert metric(text, "aionix_cluster_nodes_live") == 1.0
        assert metric(text, "aionix_node_info", f'{{node="{ids[1]}",version="{__version__}"}}') == 1.0
        code, out = aio(nodes[1], capsys, monkeypatch, tmp_path)
        assert code == 0 and "nodes (1 live):" in out and ids[0] not in out and ids[2] not in out
        code, out = aio(nodes[1], capsys, monkeypatch, tmp_path, "--all", "-o", "json")
        assert code == 0 and {n["id"]: n["live"] for n in json.loads(out)["nodes"]} == {
            ids[0]: False,
            ids[1]: True,
            ids[2]: False,
        }
    finally:
        for s in nodes:
            s.kill()
