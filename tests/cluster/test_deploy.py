"""deploy/cluster/: PostgreSQL and three nodes behind HAProxy (compose.yaml, haproxy.cfg).

No container runtime runs compose here, so the files are checked for what the README promises:
the compose file parses as YAML with the official postgres and haproxy images, three nodes of the
project's image with the same database and master key (one secret), each its own data volume on
/data, one published port (the balancer's), node1 first; the balancer's backends are exactly the
node services with a /healthz check. The nodes' entrypoint line is run by a real shell (with the
paths moved into a temp dir) to show that it hands the secret to the server as AIONIX_MASTER_KEY
and passes the command line on, and the environment it sets is loaded by the real config loader. The balancer's configuration
itself runs in Debian's haproxy (scripts/system-deps.sh) in front of three real nodes: round
robin over them, a killed node's requests redispatched at once and the node out after its checks.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml
from serverproc import free_port

from aionix.cluster import ClusterConfig
from aionix.config import load

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "cluster"
NODES = ("node1", "node2", "node3")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_postgres_three_nodes_and_a_balancer() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "lb", *NODES}
    pg = services["postgres"]
    assert pg["image"].startswith("docker.io/library/postgres:")
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "synchronous_commit=on" in pg["command"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    volumes: list[str] = []
    for name in NODES:
        node = services[name]
        # the project's image, built from its Dockerfile
        assert (DEPLOY / node["build"]["context"] / node["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile"
        env = node["environment"]
        assert env["AIONIX_DATABASE_URL"] == "postgresql://aionix@postgres:5432/aionix"
        assert env["AIONIX_DATABASE_PASSWORD_FILE"] == "/run/secrets/db_password"
        assert "AIONIX_MASTER_KEY" not in env and "AIONIX_DATABASE_PASSWORD" not in env  # never in clear
        assert set(node["secrets"]) == {"master_key", "db_password"}
        assert "ports" not in node  # reached through the balancer only
        [volume] = node["volumes"]
        source, target = volume.split(":")
        assert target == "/data" and source in c["volumes"]
        volumes.append(source)
    assert len(set(volumes)) == 3  # a data dir (node id, lock) of its own each
    # the same settings everywhere but the volume and the start order
    same = [{k: v for k, v in services[n].items() if k not in ("volumes", "depends_on")} for n in NODES]
    assert same[0] == same[1] == same[2]
    assert services["node1"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in NODES[1:]:
        assert services[name]["depends_on"]["node1"]["condition"] == "service_healthy"
    # one master key and one password, each from one file, for every node
    assert {k: v["file"] for k, v in c["secrets"].items()} == {
        "master_key": "./secrets/master_key",
        "db_password": "./secrets/db_password",
    }
    assert (DEPLOY / ".gitignore").read_text().split() == ["secrets/"]
    lb = services["lb"]
    assert lb["image"].startswith("docker.io/library/haproxy:")
    assert lb["ports"] == ["127.0.0.1:53000:53000"]
    [mount] = lb["volumes"]
    source, target, mode = mount.split(":")
    assert (DEPLOY / source).is_file() and target == "/usr/local/etc/haproxy/haproxy.cfg" and mode == "ro"


def test_haproxy_balances_over_exactly_the_nodes_by_their_health() -> None:
    text = (DEPLOY / "haproxy.cfg").read_text()
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    servers = [ln.split()[1:3] for ln in lines if ln.startswith("server ")]
    assert servers == [[n, f"{n}:53000"] for n in NODES]
    assert "bind :53000" in lines and "mode http" in lines
    assert "http-check send meth GET uri /healthz" in lines and "http-check expect status 200" in lines
    default_server = next(ln for ln in lines if ln.startswith("default-server"))
    assert " check" in default_server
    # SSE streams and long polls outlive the default timeouts
    tunnel = next(ln for ln in lines if ln.startswith("timeout tunnel"))
    assert re.fullmatch(r"timeout tunnel \d+h", tunnel)
    server_timeout = int(next(ln for ln in lines if ln.startswith("timeout server")).split()[2].rstrip("s"))
    assert server_timeout > 300  # the longest wait_seconds a request may ask for


def test_the_nodes_entrypoint_passes_the_master_key_from_the_secret(tmp_path: Path) -> None:
    node = compose()["services"]["node1"]
    shell, flag, script, arg0 = node["entrypoint"]
    assert (shell, flag, arg0) == ("/bin/sh", "-c", "aionix")
    script = script.replace("$$", "$")  # compose's escape for a literal $
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    key = "k" * 43 + "="
    (secrets / "master_key").write_text(key + "\n")
    fake = tmp_path / "aionix"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "key=$AIONIX_MASTER_KEY" "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    script = script.replace("/run/secrets", str(secrets)).replace("/usr/local/bin/aionix", str(fake))
    out = subprocess.run(
        [shell, flag, script, arg0, *node["command"]],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert out == [f"key={key}", *node["command"]]


def test_the_nodes_environment_is_a_valid_configuration(tmp_path: Path) -> None:
    env = dict(compose()["services"]["node1"]["environment"])
    password = tmp_path / "db_password"
    password.write_text("pw\n")
    env["AIONIX_DATABASE_PASSWORD_FILE"] = str(password)
    config = load(None, env=env)
    assert config.database.url == "postgresql://aionix@postgres:5432/aionix"
    assert config.database.password_file == str(password)
    assert config.server.public_url == "http://127.0.0.1:53000"
    assert config.service_section("cluster", ClusterConfig).lease_seconds == 10.0


def run_haproxy(tmp_path: Path, nodes: list[Any]) -> tuple[subprocess.Popen[bytes], str]:
    """deploy/cluster/haproxy.cfg run by Debian's haproxy in front of real nodes: the file as it
    is but for the listening address and the nodes' addresses (loopback ports, not compose's
    service names)."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    port = free_port()
    assert text.count("    bind :53000\n") == 1
    text = text.replace("    bind :53000\n", f"    bind 127.0.0.1:{port}\n")
    for name, node in zip(NODES, nodes, strict=True):
        line = f"    server {name} {name}:53000\n"
        assert text.count(line) == 1, line
        text = text.replace(line, f"    server {name} 127.0.0.1:{node.port}\n")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    log = open(tmp_path / "haproxy.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
        time.sleep(0.1)


def served_by(url: str, count: int) -> Counter[str]:
    """Which node answered each of `count` GET /healthz through the balancer (all must be 200)."""
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=10) as c:  # one connection, as a client keeps it
        for _ in range(count):
            r = c.get("/healthz")
            assert r.status_code == 200, r.text
            seen[r.json()["node"]["id"]] += 1
    return seen


def test_haproxy_spreads_over_the_nodes_and_leaves_a_dead_one_out(tmp_path: Path, nodes: Any) -> None:
    group = nodes(3, config={"cluster": {"lease_seconds": 2}})
    a, b, c = group.nodes
    proc, url = run_haproxy(tmp_path, group.nodes)
    try:
        ids = {group.node_id(n) for n in group.nodes}
        seen = served_by(url, 30)
        assert set(seen) == ids and all(n == 10 for n in seen.values()), seen  # round robin
        # a workflow made through one node, run and read through the others
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {a.admin_key}"}, timeout=30) as api:
            definition = {"entry": "W", "states": {"W": {"type": "wait", "seconds": 0.3, "end": True}}}
            assert api.post("/api/v1/workflows", json={"name": "lb-wf", "definition": definition}).status_code == 201
            eid = api.post("/api/v1/workflows/lb-wf/executions", json={}).json()["execution_id"]
            deadline = time.monotonic() + 20
            while (env := api.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
                assert time.monotonic() < deadline, env
                time.sleep(0.1)
            assert env["status"] == "SUCCEEDED", env
        group.kill(b)
        # at once: a request sent to the dead node is refused and redispatched to another
        seen = served_by(url, 20)
        assert group.node_id(b) not in seen, seen
        # after two failed checks (2 s apart) it is out of the rotation; the others share it
        time.sleep(5)
        seen = served_by(url, 20)
        assert set(seen) == {group.node_id(a), group.node_id(c)} and all(n == 10 for n in seen.values()), seen
        assert "nodes/node2 is DOWN" in (tmp_path / "haproxy.log").read_text()
    finally:
        proc.terminate()
        proc.wait(10)
