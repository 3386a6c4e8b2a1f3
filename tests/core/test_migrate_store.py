"""`aio admin migrate-store`: a SQLite data dir into an empty PostgreSQL database and back, with
real servers on each store in turn: keys, workflows, executions and audit rows survive, and a
secret sealed under the data dir's master key still reveals. A real PostgreSQL from Debian's
package (tests/pgstore.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pgstore

WF = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}


def aio(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aionix.cli.main", *args], capture_output=True, text=True, timeout=300, env=full
    )


def wait_done(c, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = c.get(f"/api/v1/executions/{execution_id}")
        if r.json()["status"] != "RUNNING":
            return r.json()
        time.sleep(0.1)
    raise AssertionError("the execution did not finish")


def test_sqlite_to_postgres_and_back(tmp_path, make_server):
    server = make_server(env={"AIONIX_DATABASE_URL": ""}).start()  # SQLite
    with server.client() as c:
        assert (
            c.post("/api/v1/secrets", json={"name": "db-pw", "type": "password", "value": "s3cr3t"}).status_code == 201
        )
        assert c.post("/api/v1/workflows", json={"name": "wf", "definition": WF}).status_code == 201
        ex = c.post("/api/v1/workflows/wf/executions", json={"input": {"n": 1}})
        assert ex.status_code in (200, 201, 202), ex.text
        first = wait_done(c, ex.json()["execution_id"])
        assert first["status"] == "SUCCEEDED"
    server.stop()

    url, password = pgstore.new_database("mig")
    pw = {"AIONIX_DATABASE_PASSWORD": password}
    out = aio("admin", "migrate-store", "--from", str(server.data_dir), "--to", url, "-o", "json", env=pw)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert rows["vault_secrets"] == 1 and rows["sf_executions"] == 1 and rows["api_keys"] >= 1
    again = aio("admin", "migrate-store", "--from", str(server.data_dir), "--to", url, env=pw)
    assert again.returncode != 0 and "not empty" in again.stderr

    # the same data dir (its master key and credentials) now on PostgreSQL
    server.extra_env = {"AIONIX_DATABASE_URL": url, **pw}
    server.start()
    with server.client() as c:
        assert c.post("/api/v1/secrets/db-pw/reveal").json()["value"] == "s3cr3t"
        assert c.get(f"/api/v1/executions/{first['execution_id']}").json()["status"] == "SUCCEEDED"
        ex2 = c.post("/api/v1/workflows/wf/executions", json={"input": {"n": 2}})
        assert wait_done(c, ex2.json()["execution_id"])["status"] == "SUCCEEDED"
        assert c.post("/api/v1/secrets", json={"name": "pg-born", "type": "password", "value": "v2"}).status_code == 201
    server.stop()

    back = tmp_path / "back"
    out = aio("admin", "migrate-store", "--from", url, "--to", f"sqlite:{back}", "-o", "json", env=pw)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"]["sf_executions"] == 2
    shutil.copy2(server.data_dir / "master.key", back / "master.key")  # the key lives beside the store
    again = make_server(env={"AIONIX_DATABASE_URL": ""})
    again.data_dir = back
    again.credentials = server.credentials
    again.admin_key = server.admin_key
    again.start()
    with again.client() as c:
        assert c.post("/api/v1/secrets/db-pw/reveal").json()["value"] == "s3cr3t"
        assert c.post("/api/v1/secrets/pg-born/reveal").json()["value"] == "v2"
        listed = c.get("/api/v1/executions", params={"workflow": "wf"}).json()
        items = listed.get("items", listed) if isinstance(listed, dict) else listed
        assert len(items) == 2
        ex3 = c.post("/api/v1/workflows/wf/executions", json={"input": {"n": 3}})
        assert wait_done(c, ex3.json()["execution_id"])["status"] == "SUCCEEDED"
