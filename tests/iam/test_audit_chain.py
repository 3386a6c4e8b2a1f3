"""The audit trail you can trust: rows edited or deleted with raw SQL in a real server's store
(its SQLite file, or its PostgreSQL database under AIONIX_TEST_STORE=postgres) are named by `aio admin audit verify` and the admin route; signed daily
checkpoints catch a history rewritten with recomputed hashes; retention prunes whole days behind
a checkpoint and the rest still verifies; export streams JSON Lines and CSV to stdout, a file or
S3 (moto's server mode standing in for S3, as in tests/connectors); PII is masked in audit
details and log lines before they are written."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pgstore
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from aionix.iam import audit


def aio(srv, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIONIX_URL": srv.url, "AIONIX_API_KEY": srv.admin_key or ""}
    return subprocess.run(
        [sys.executable, "-m", "aionix.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def wait_ready(srv) -> None:
    deadline = time.monotonic() + 60
    with srv.client() as c:
        while time.monotonic() < deadline:
            if c.get("/api/v1/workflows").status_code == 200:
                return
            time.sleep(0.2)
    raise AssertionError("the services did not come up")


def audited_writes(srv, n: int = 4) -> None:
    with srv.client() as c:
        for i in range(n):
            assert c.post("/api/v1/keys", json={"name": f"k{i}-{time.time_ns()}", "role": "viewer"}).status_code == 201


def chain_rows(srv) -> list[tuple[int, int, str]]:
    return pgstore.query(
        srv.data_dir, "SELECT id, seq, action FROM audit WHERE tenant = 'default' AND seq IS NOT NULL ORDER BY seq"
    )


def test_an_edited_row_is_named(make_server):
    srv = make_server().start()
    wait_ready(srv)
    audited_writes(srv)
    ok = aio(srv, "admin", "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: the audit trail verifies" in ok.stdout
    rows = chain_rows(srv)
    assert len(rows) >= 4 and [r[1] for r in rows] == list(range(1, len(rows) + 1))
    victim = rows[1][0]
    pgstore.execute(srv.data_dir, "UPDATE audit SET status = 200, ip = '10.9.9.9' WHERE id = ?", (victim,))
    bad = aio(srv, "admin", "audit", "verify")
    assert bad.returncode != 0
    assert f"PROBLEM edited tenant=default id={victim} " in bad.stdout, bad.stdout
    assert "changed after it was written" in bad.stdout and "FAILED" in bad.stdout
    with srv.client() as c:
        body = c.get("/api/v1/audit/verify").json()
    assert body["ok"] is False
    assert [(p["id"], p["kind"]) for p in body["problems"]] == [(victim, "edited")]


def test_deleted_rows_are_named(make_server):
    srv = make_server().start()
    wait_ready(srv)
    audited_writes(srv, 5)
    rows = chain_rows(srv)
    middle, after = rows[2], rows[3]
    pgstore.execute(srv.data_dir, "DELETE FROM audit WHERE id = ?", (middle[0],))
    with srv.client() as c:
        body = c.get("/api/v1/audit/verify").json()
    kinds = {(p["kind"], p["id"]) for p in body["problems"]}
    assert ("deleted", after[0]) in kinds, body
    assert f"seq {middle[1]}..{middle[1]}" in json.dumps(body["problems"])

    # the last row deleted (and nothing written since): the head remembers it
    srv2 = make_server().start()
    wait_ready(srv2)
    audited_writes(srv2, 3)
    last = chain_rows(srv2)[-1]
    pgstore.execute(srv2.data_dir, "DELETE FROM audit WHERE id = ?", (last[0],))
    out = aio(srv2, "-o", "json", "admin", "audit", "verify")
    result = json.loads(out.stdout)
    assert out.returncode != 0 and result["ok"] is False
    assert any(p["kind"] == "deleted" and f"row id {last[0]}" in p["message"] for p in result["problems"]), result


# ---------------------------------------------------------------------------- in process
@pytest.fixture
def rt(tmp_path):
    from aionix.config import load
    from aionix.runtime import Runtime

    data = str(tmp_path / "data")
    runtime = Runtime(load(env={"AIONIX_DATABASE_DATA_PATH": data, **pgstore.store_env(data)}))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runtime.start_core() if hasattr(runtime, "start_core") else runtime.start())
    runtime._test_loop = loop
    yield runtime
    loop.run_until_complete(runtime.stop())
    loop.close()


def run(rt, coro):
    return rt._test_loop.run_until_complete(coro)


async def insert(rt, tenant: str, ts: float, **details) -> None:
    row = rt.audit_row(None, None, "test.event", details=details)
    row.update(ts=ts, tenant=tenant)
    await rt.store.execute("core.insert_audit", row)


DAY = 86400


def test_checkpoints_retention_and_a_rewritten_history(rt):
    t0 = (int(time.time()) // DAY - 10) * DAY

    async def days() -> None:
        for d in range(5):
            for i in range(3):
                await insert(rt, "acme", t0 + d * DAY + i, d=d, i=i)
            # just after midnight: the day that ended is signed
            assert await audit.write_checkpoints(rt, now=t0 + (d + 1) * DAY + 50) == 1
        assert await audit.write_checkpoints(rt, now=t0 + 5 * DAY + 200) == 0  # once a day
        assert await audit.write_checkpoints(rt, now=t0 + 5 * DAY + 50) == 0

    run(rt, days())
    result = run(rt, audit.verify(rt, "acme"))
    assert result["ok"], result
    assert result["chains"] == [{"tenant": "acme", "rows": 20, "checkpoints": 5}]

    # retention 6 days at day 9.5: the days behind the checkpoint written on day 3 (days 0-2)
    # go, with the checkpoints among them; that checkpoint stays as the anchor and all verifies
    rt._audit_config = audit.AuditConfig(retention_days=6)
    deleted = run(rt, audit.prune(rt, now=t0 + 9.5 * DAY))
    assert deleted == 3 * 3 + 2
    result = run(rt, audit.verify(rt, "acme"))
    assert result["ok"], result
    assert result["chains"][0]["rows"] == 9 and result["chains"][0]["checkpoints"] == 3

    # an insider rewrites day 4 and recomputes every hash after it: the signed checkpoint no longer matches
    data = rt.config.data_dir
    rows = pgstore.query(
        data,
        "SELECT id, ts, tenant, key_id, ip, method, path, action, resource, status, details, seq, prev_hash "
        "FROM audit WHERE tenant = 'acme' ORDER BY seq",
    )
    prev = rows[0][12]
    for r in rows:
        details = r[10].replace('"i":1', '"i":7') if r[7] == "test.event" else r[10]
        h = audit.row_hash(prev, r[11], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], details)
        pgstore.execute(
            data, "UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE id = ?", (details, prev, h, r[0])
        )
        prev = h
    pgstore.execute(data, "UPDATE audit_heads SET hash = ? WHERE chain = 'acme'", (prev,))
    result = run(rt, audit.verify(rt, "acme"))
    assert not result["ok"]
    assert any("signed checkpoint" in p["message"] for p in result["problems"]), result

    # forging the checkpoint's own content instead breaks its signature
    ((cp_id, cp_details),) = pgstore.query(
        data,
        "SELECT id, details FROM audit WHERE action = 'audit.checkpoint' AND tenant = 'acme' ORDER BY seq DESC LIMIT 1",
    )
    forged = json.loads(cp_details)
    forged["through_hash"] = "0" * 64
    pgstore.execute(data, "UPDATE audit SET details = ? WHERE id = ?", (json.dumps(forged), cp_id))
    result = run(rt, audit.verify(rt, "acme"))
    assert any(p["kind"] == "forged" and p["id"] == cp_id for p in result["problems"]), result

    # the anchor deleted too: the first kept row is reported, rows before it are missing
    ((anchor_seq,),) = pgstore.query(data, "SELECT min(seq) FROM audit WHERE tenant = 'acme'")
    pgstore.execute(data, "DELETE FROM audit WHERE tenant = 'acme' AND seq = ?", (anchor_seq,))
    result = run(rt, audit.verify(rt, "acme"))
    assert any(f"rows before seq {anchor_seq + 1} " in p["message"] for p in result["problems"]), result


def test_pii_is_masked_in_audit_details_and_log_lines(rt):
    run(
        rt,
        rt.audit(
            None,
            None,
            "test.pii",
            details={
                "who": "Ada <ada.lovelace@example.com>",
                "card": "4111 1111 1111 1111",
                "tel": "+1 415 555 0100",
                "not_a_card": "4111 1111 1111 1112",
                "ts": 1733549520.123,
            },
        ),
    )
    ((stored,),) = pgstore.query(rt.config.data_dir, "SELECT details FROM audit WHERE action = 'test.pii'")
    d = json.loads(stored)
    assert d == {
        "who": "Ada <[email]>",
        "card": "[card]",
        "tel": "[phone]",
        "not_a_card": "4111 1111 1111 1112",
        "ts": 1733549520.123,
    }
    assert run(rt, audit.verify(rt, None))["ok"]  # masked before it was hashed

    from aionix.log import redactor

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "mail %s at %s", ("bob@example.org", "555-123-4567"), None
    )
    redactor.filter(record)
    assert record.getMessage() == "mail [email] at [phone]"


def test_configured_pii_patterns():
    cfg = audit.AuditConfig.model_validate({"pii_patterns": r"ssn=\d{3}-\d{2}-\d{4};iban=[A-Z]{2}\d{2}[A-Z0-9]{10,30}"})
    masker = audit.PiiMasker(cfg.pii_patterns)
    assert masker.mask("ssn 123-45-6789 iban DE89370400440532013000 bob@example.com") == (
        "ssn [ssn] iban [iban] bob@example.com"
    )
    with pytest.raises(ValueError, match="not a regular expression"):
        audit.AuditConfig.model_validate({"pii_patterns": {"bad": "("}})


# ---------------------------------------------------------------------------- export
def test_export_jsonl_csv_and_s3(make_server, tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from connectors.services import start_s3

    srv = make_server(env={"AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1"}).start()
    wait_ready(srv)
    audited_writes(srv, 3)
    since = "0"
    out = aio(srv, "admin", "audit", "export", "--since", since)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) >= 3 and all(r["tenant"] == "default" for r in lines)
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1)) and lines[1]["prev_hash"] == lines[0]["hash"]
    assert sum(r["action"] == "POST /api/v1/keys" for r in lines) == 3
    assert aio(srv, "admin", "audit", "export", "--since", "1d", "--until", "2000-01-01").stdout == ""

    file = tmp_path / "audit.csv"
    done = aio(srv, "admin", "audit", "export", "--since", since, "--format", "csv", "--to", str(file))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(file.open()))
    assert rows[0]["hash"] == lines[0]["hash"] and len(rows) >= len(lines)

    s3 = start_s3()
    try:
        with srv.client() as c:
            r = c.post("/api/v1/secrets", json={"name": "s3-key", "type": "password", "value": s3.secret_key})
            assert r.status_code == 201, r.text
            r = c.post(
                "/api/v1/connections",
                json={
                    "name": "archive",
                    "kind": "s3",
                    "config": {
                        "endpoint_url": s3.url,
                        "access_key_id": s3.access_key,
                        "secret_access_key_secret": "s3-key",
                        "bucket": "audit-archive",
                    },
                },
            )
            assert r.status_code == 201, r.text
        import boto3

        boto3.client(
            "s3",
            endpoint_url=s3.url,
            region_name="us-east-1",
            aws_access_key_id=s3.access_key,
            aws_secret_access_key=s3.secret_key,
        ).create_bucket(Bucket="audit-archive")
        done = aio(srv, "-o", "json", "admin", "audit", "export", "--since", since, "--to", "s3://archive/trail/2026")
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)
        assert result["rows"] >= 3 and len(result["objects"]) == 1
        key = result["objects"][0]["key"]
        assert key.startswith("trail/2026/audit-") and key.endswith(".jsonl")
        body = (
            boto3.client(
                "s3",
                endpoint_url=s3.url,
                region_name="us-east-1",
                aws_access_key_id=s3.access_key,
                aws_secret_access_key=s3.secret_key,
            )
            .get_object(Bucket="audit-archive", Key=key)["Body"]
            .read()
        )
        exported = [json.loads(line) for line in body.decode().splitlines()]
        assert exported[0]["hash"] == lines[0]["hash"]
    finally:
        s3.stop()
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {srv.admin_key}"}) as c:
        assert c.get("/api/v1/audit/export", params={"all_tenants": "true"}).status_code == 200  # cross-tenant admin
