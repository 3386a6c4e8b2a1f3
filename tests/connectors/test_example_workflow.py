"""examples/workflows/daily-sales-report.yaml end to end: PostgreSQL → HTTP API → Redis → e-mail,
all real servers on loopback, run by the workflow engine through the executor bus."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from connectors.support import make_secret

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "daily-sales-report.yaml"


def _create(api, name: str, kind: str, config: dict) -> None:
    r = api.post("/api/v1/connections", json={"name": name, "kind": kind, "config": config})
    assert r.status_code in (201, 409), r.text


def test_daily_sales_report_example(api, postgres, redis_server, mailbox, http_target):
    sql = (
        "CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, customer text, amount numeric, day date);"
        "DELETE FROM orders;"
        "INSERT INTO orders (customer, amount, day) VALUES ('ann', 40, '2026-01-15'), ('bob', 75.5, '2026-01-15'), ('cy', 999, '2026-01-14');"
    )
    postgres.psql(sql)
    _create(
        api,
        "orders-db",
        "sql",
        {
            "driver": "postgres",
            "host": "127.0.0.1",
            "port": postgres.port,
            "database": postgres.database,
            "user": postgres.user,
            "password_secret": make_secret(api, postgres.password),
        },
    )
    _create(api, "reports-api", "http", {"base_url": http_target.url})
    _create(
        api, "cache", "redis", {"port": redis_server.port, "password_secret": make_secret(api, redis_server.password)}
    )
    _create(
        api,
        "mail",
        "email",
        {
            "host": "127.0.0.1",
            "port": mailbox.ports["plain"],
            "security": "plain",
            "username": mailbox.user,
            "password_secret": make_secret(api, mailbox.password),
            "from_address": "reports@example.com",
        },
    )

    definition = yaml.safe_load(EXAMPLE.read_text())
    r = api.post("/api/v1/workflows", json={"name": "daily-sales-report", "definition": definition})
    assert r.status_code in (201, 409), r.text
    payload = json.loads(EXAMPLE.with_name("daily-sales-report.input.json").read_text())
    r = api.post(
        "/api/v1/workflows/daily-sales-report/executions", json={"input": payload, "mode": "sync", "wait_seconds": 60}
    )
    assert r.status_code in (200, 201, 202), r.text
    envelope = r.json()
    deadline = time.monotonic() + 60
    while envelope["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        envelope = api.get(f"/api/v1/executions/{envelope['execution_id']}").json()
    assert envelope["status"] == "SUCCEEDED", envelope["error"]
    assert envelope["output"] == {"day": "2026-01-15", "total": 115.5, "emailed": ["owner@example.com"]}

    posted = [json.loads(q["body"]) for q in http_target.requests if q["path"] == "/reports"]
    assert posted[-1] == {"day": "2026-01-15", "orders": 2, "total": 115.5, "top": "bob"}

    import redis

    cached = redis.Redis(port=redis_server.port, password=redis_server.password, decode_responses=True).get(
        "report:2026-01-15"
    )
    assert json.loads(cached)["top"] == "bob"

    deadline = time.monotonic() + 10
    while not any(m["message"]["Subject"] == "Sales 2026-01-15: 115.5" for m in mailbox.messages):
        assert time.monotonic() < deadline, [m["message"]["Subject"] for m in mailbox.messages]
        time.sleep(0.1)
    mail = next(m for m in mailbox.messages if m["message"]["Subject"] == "Sales 2026-01-15: 115.5")
    assert mail["message"].get_body(("plain",)).get_content().strip() == "2 orders, total 115.5, top customer bob"
