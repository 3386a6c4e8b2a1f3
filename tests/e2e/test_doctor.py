"""`aio admin doctor` against the real server: a healthy server reports ok (exit 0); each thing
broken on purpose — the master key's file mode, a trigger whose workflow was deleted, an execution
left RUNNING by editing the database while the server was stopped, a clock behind the store's
writes, a config file edited into an error — is reported with its fix, and the CLI exits 1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from serverproc import ServerProcess

WF = "trn:stepflow:default:template/"
CORE_CHECKS = {"config", "data-dir", "disk-space", "wal", "quick-check", "backup", "master-key", "clock"}
SERVICE_CHECKS = {"stuck-executions", "trigger-targets", "trigger-outbox", "confinement", "runtimes"}


def aio(server: ServerProcess, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update(
        AIONIX_URL=server.url,
        AIONIX_API_KEY=key or server.admin_key or "",
        AIONIX_SECURITY_CREDENTIALS_FILE=str(server.root / "cli-credentials"),
    )
    return subprocess.run(
        [sys.executable, "-c", "import sys; from aionix.cli.main import run; sys.exit(run())", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def report(server: ServerProcess) -> dict:
    with server.client() as c:
        r = c.get("/api/v1/admin/doctor")
    assert r.status_code == 200, r.text
    return r.json()


def findings(rep: dict, check: str, status: str | None = None) -> list[dict]:
    return [c for c in rep["checks"] if c["check"] == check and (status is None or c["status"] == status)]


def create_workflow(server: ServerProcess, name: str) -> None:
    definition = {"entry": "Echo", "states": {"Echo": {"type": "set", "value": {"ok": True}, "end": True}}}
    with server.client() as c:
        r = c.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text


@pytest.fixture
def node(make_server) -> ServerProcess:
    return make_server().start()


def test_healthy_server_reports_ok_with_every_check_and_a_backup_is_recorded(node: ServerProcess) -> None:
    rep = report(node)
    assert rep["ok"] is True and rep["problems"] == [], rep
    names = {c["check"] for c in rep["checks"]}
    assert names >= CORE_CHECKS | SERVICE_CHECKS, names
    assert all(c["status"] in ("ok", "warn") for c in rep["checks"])
    assert all(c["message"] for c in rep["checks"])
    # the warnings a fresh server has are explained and carry their fix
    [backup] = findings(rep, "backup")
    assert backup["status"] == "warn" and "aio admin backup" in backup["fix"]
    [runtimes] = findings(rep, "runtimes")
    assert set(runtimes["details"]) >= {"python", "wasmtime", "deno"}
    [key] = findings(rep, "master-key")
    assert key["status"] == "ok" and key["details"]["source"] == "file" and key["details"]["mode"] == "600"
    [wal] = findings(rep, "wal")
    assert wal["status"] == "ok" and wal["details"]["wal_frames"] == wal["details"]["checkpointed_frames"]

    # a backup taken through the API is recorded: its age is reported
    out = node.root / "backup.db"
    done = aio(node, "admin", "backup", str(out))
    assert done.returncode == 0, done.stderr
    [backup] = findings(report(node), "backup")
    assert backup["status"] == "ok" and backup["details"]["age_seconds"] < 120

    # the CLI: text names every check and exits 0; --json (and -o json) is the report itself
    done = aio(node, "admin", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 problem(s)" in done.stdout and "master-key" in done.stdout
    done = aio(node, "admin", "doctor", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True
    assert {c["check"] for c in json.loads(done.stdout)["checks"]} >= CORE_CHECKS
    done = aio(node, "-o", "json", "admin", "doctor")
    assert done.returncode == 0 and json.loads(done.stdout)["problems"] == []


def test_master_key_readable_by_others_is_a_problem_with_its_fix(node: ServerProcess) -> None:
    key_file = node.data_dir / "master.key"
    key_file.chmod(0o644)
    try:
        rep = report(node)
        assert rep["ok"] is False
        [found] = findings(rep, "master-key", "problem")
        assert "644" in found["message"] and found["fix"] == f"chmod 600 {key_file}"
        assert any(p["check"] == "master-key" and p["fix"] for p in rep["problems"])
        done = aio(node, "admin", "doctor")
        assert done.returncode == 1, done.stdout
        assert "PROBLEM master-key" in done.stdout and f"chmod 600 {key_file}" in done.stdout
        done = aio(node, "admin", "doctor", "--json")
        assert done.returncode == 1 and json.loads(done.stdout)["ok"] is False
    finally:
        key_file.chmod(0o600)
    assert report(node)["ok"] is True


def test_data_dir_open_to_other_users_is_a_problem(node: ServerProcess) -> None:
    node.data_dir.chmod(0o755)
    try:
        rep = report(node)
        [found] = findings(rep, "data-dir", "problem")
        assert "755" in found["message"] and found["fix"] == f"chmod 700 {node.data_dir}"
    finally:
        node.data_dir.chmod(0o700)


def test_trigger_whose_workflow_was_deleted_is_reported(node: ServerProcess) -> None:
    wf = f"wf-{uuid.uuid4().hex[:8]}"
    create_workflow(node, wf)
    with node.client() as c:
        r = c.post(
            "/api/v1/triggers", json={"name": "nightly", "target": WF + wf, "schedule": {"expression": "rate(1 day)"}}
        )
        assert r.status_code == 201, r.text
        assert report(node)["ok"] is True
        assert c.delete(f"/api/v1/workflows/{wf}").status_code in (200, 204)
    rep = report(node)
    assert rep["ok"] is False
    [found] = findings(rep, "trigger-targets", "problem")
    assert found["resource"] == "trn:igniter:default:trigger/nightly"
    assert WF + wf in found["message"] and "no longer exists" in found["message"]
    done = aio(node, "admin", "doctor")
    assert done.returncode == 1 and "trigger-targets" in done.stdout and "aio tr delete nightly" in done.stdout
    # disabled, it is only a warning
    with node.client() as c:
        assert c.post("/api/v1/triggers/nightly/disable").status_code == 200
    rep = report(node)
    assert rep["ok"] is True and findings(rep, "trigger-targets", "warn")
    assert aio(node, "admin", "doctor").returncode == 0


def test_execution_left_running_without_an_owner_and_a_clock_behind_the_store(node: ServerProcess) -> None:
    node.stop()
    db = sqlite3.connect(node.data_dir / "aionix.db")
    try:
        with db:
            # an execution RUNNING in the store of a workflow version that does not exist: the
            # server cannot resume it at start, so nothing would ever finish it
            db.execute(
                "INSERT INTO sf_executions (id, tenant, workflow, version, status, input, started_at, trace_id, "
                "snapshot, next_seq) VALUES ('ghost0000000000000000', 'default', 'gone', 7, 'RUNNING', 'null', ?, "
                "'', '{}', 1)",
                (time.time() - 60,),
            )
            # and a write stamped an hour in the future: the clock went back since
            db.execute(
                "INSERT INTO audit (ts, tenant, action, status) VALUES (?, 'default', 'test.future', 200)",
                (time.time() + 3600,),
            )
    finally:
        db.close()
    node.start()
    rep = report(node)
    assert rep["ok"] is False
    [stuck] = findings(rep, "stuck-executions", "problem")
    assert stuck["resource"] == "trn:stepflow:default:execution/ghost0000000000000000"
    assert "RUNNING" in stuck["message"] and "cancel" in stuck["fix"]
    [clock] = findings(rep, "clock", "problem")
    assert clock["details"]["table"] == "audit" and 3000 < clock["details"]["skew_seconds"] < 3700
    done = aio(node, "admin", "doctor")
    assert done.returncode == 1
    assert "PROBLEM stuck-executions" in done.stdout and "PROBLEM clock" in done.stdout


def test_config_file_edited_into_an_error_is_reported_before_the_next_start(make_server, tmp_path: Path) -> None:
    config = tmp_path / "aionix.toml"
    config.write_text('[database]\nsynchronous = "NORMAL"\n')
    node = make_server(args=["--config", str(config)]).start()
    rep = report(node)
    assert rep["ok"] is True
    [weak] = findings(rep, "config", "warn")
    assert weak["resource"] == "database.synchronous" and "FULL" in weak["fix"]
    config.write_text('[database]\nsynchronous = "SOMETIMES"\n')
    rep = report(node)
    [found] = findings(rep, "config", "problem")
    assert "database.synchronous" in found["message"] and "next start will fail" in found["message"]
    assert aio(node, "admin", "doctor").returncode == 1


def test_a_tenant_admin_sees_only_its_tenant_checks(node: ServerProcess) -> None:
    with node.client() as c:
        r = c.post("/api/v1/keys", json={"name": "acme-admin", "role": "admin", "tenant": "acme"})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    with node.client(key) as c:
        rep = c.get("/api/v1/admin/doctor").json()
    names = {x["check"] for x in rep["checks"]}
    assert not names & CORE_CHECKS and "runtimes" not in names
    assert {"stuck-executions", "trigger-targets"} <= names
    with node.client(key) as c:
        assert c.get("/api/v1/admin/doctor").status_code == 200
        # a viewer may not ask
        r = c.post("/api/v1/keys", json={"name": "acme-viewer", "role": "viewer"})
        viewer = r.json()["key"]
    with node.client(viewer) as c:
        assert c.get("/api/v1/admin/doctor").status_code == 403
