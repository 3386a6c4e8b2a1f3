"""Trigger definitions over HTTP: validation naming the field, CRUD, enable/disable, history."""

from __future__ import annotations

from typing import Any

import pytest

from triggers.support import create_workflow, finished_execution, history, unique, wait_for

WF = "trn:stepflow:default:template/"


def create(admin, **body: Any):
    body.setdefault("name", unique("t"))
    return admin.post("/api/v1/triggers", json=body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target": "transform"}, "schedule"),
        ({"target": "transform", "webhook": {}, "event": {"pattern": {"source": ["x"]}}}, "schedule"),
        ({"target": "transform", "schedule": {"expression": "61 * * * *"}}, "schedule.expression"),
        (
            {"target": "transform", "schedule": {"expression": "0 9 * * *", "timezone": "Mars/Base"}},
            "schedule.timezone",
        ),
        ({"target": "transform", "schedule": {"expression": "at(2001-01-01T00:00:00Z)"}}, "schedule.expression"),
        (
            {"target": "transform", "schedule": {"expression": "rate(1 minute)", "misfire": "sometimes"}},
            "schedule.misfire",
        ),
        ({"target": "trn:stepflow:default:templat/x", "webhook": {}}, "target"),
        ({"target": "trn:credvault:default:credential/db", "webhook": {}}, "target"),
        ({"target": "trn:stepflow:other:template/x", "webhook": {}}, "target"),
        ({"target": "no-such-kind", "webhook": {}}, "target"),
        ({"target": "transform", "input": "$$$(", "webhook": {}}, "input"),
        ({"target": "transform", "webhook": {"content_types": ["application/xml"]}}, "webhook.content_types[0]"),
        ({"target": "transform", "webhook": {"tolerance_seconds": 0}}, "webhook.tolerance_seconds"),
        (
            {"target": "transform", "event": {"pattern": {"detail": {"n": [{"numeric": [">", "x"]}]}}}},
            "event.pattern.detail.n[0].numeric[1]",
        ),
        ({"target": "transform", "webhook": {}, "surprise": 1}, "surprise"),
        ({"name": "bad name", "target": "transform", "webhook": {}}, "name"),
    ],
)
def test_bad_definitions_are_422_naming_the_field(admin, body: dict[str, Any], field: str) -> None:
    r = create(admin, **body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["details"][0]["field"] == field, err
    assert field in err["message"]


def test_crud_enable_disable_delete(admin) -> None:
    name = unique("crud")
    r = create(admin, name=name, target="transform", schedule={"expression": "0 9 * * *", "timezone": "Europe/Berlin"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["trn"] == f"trn:igniter:default:trigger/{name}" and t["kind"] == "schedule"
    assert t["next_fire_at"].endswith(("T08:00:00Z", "T07:00:00Z"))
    assert create(admin, name=name, target="transform", webhook={}).status_code == 409

    assert admin.get(f"/api/v1/triggers/{name}").json()["schedule"]["timezone"] == "Europe/Berlin"
    names = [
        i["name"] for i in admin.get("/api/v1/triggers", params={"kind": "schedule", "limit": 500}).json()["items"]
    ]
    assert name in names

    r = admin.put(
        f"/api/v1/triggers/{name}",
        json={"target": "transform", "schedule": {"expression": "rate(2 hours)"}, "description": "every 2 h"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["description"] == "every 2 h"
    assert admin.put(f"/api/v1/triggers/{name}", json={"target": "transform", "webhook": {}}).status_code == 422

    off = admin.post(f"/api/v1/triggers/{name}/disable").json()
    assert off["enabled"] is False and off["next_fire_at"] is None
    on = admin.post(f"/api/v1/triggers/{name}/enable").json()
    assert on["enabled"] is True and on["next_fire_at"] is not None

    resolved = admin.get("/api/v1/resolve", params={"trn": f"trn:igniter:default:trigger/{name}"}).json()
    assert resolved["exists"] is True

    assert admin.delete(f"/api/v1/triggers/{name}").status_code == 200
    assert admin.get(f"/api/v1/triggers/{name}").status_code == 404
    assert admin.get(f"/api/v1/triggers/{name}/history").status_code == 404


def test_list_pages_by_name(admin) -> None:
    prefix = unique("page")
    for i in range(3):
        assert create(admin, name=f"{prefix}-{i}", target="transform", webhook={}).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "kind": "webhook", **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/triggers", params=params).json()
        seen += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [n for n in seen if n.startswith(prefix)] == [f"{prefix}-{i}" for i in range(3)]
    assert seen == sorted(seen)


def test_rate_schedule_fires_each_due_time_once_into_a_workflow(admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("every")
    r = create(
        admin,
        name=name,
        target=WF + wf,
        schedule={"expression": "rate(1 second)"},
        input="{'scheduled': scheduled_time}",
    )
    assert r.status_code == 201, r.text

    def three_delivered() -> list[dict[str, Any]] | None:
        delivered = [f for f in history(admin, name) if f["status"] == "delivered"]
        return delivered if len(delivered) >= 3 else None

    fires = wait_for(three_delivered, 60, interval=0.25, what="3 delivered fires")
    assert admin.post(f"/api/v1/triggers/{name}/disable").status_code == 200
    everything = history(admin, name)
    keys = [f["fire_key"] for f in everything]
    assert len(keys) == len(set(keys)), everything
    dues = sorted(f["due_at"] for f in everything)
    assert dues == [dues[0] + i for i in range(len(dues))], everything  # every second, none missing
    done = finished_execution(admin, fires[-1]["result_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["got"] == {"scheduled": fires[-1]["fire_key"]}


def test_a_deleted_target_is_a_clear_error_in_the_history(admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    assert admin.delete(f"/api/v1/workflows/{wf}").status_code == 200
    name = unique("orphan")
    assert create(admin, name=name, target=WF + wf, event={"pattern": {"source": [name]}}).status_code == 201
    put = admin.post("/api/v1/events", json={"source": name, "type": "Ping", "detail": {}})
    assert put.status_code == 202 and put.json()["matched"] == 1
    [fire] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "dead"], 30, what="a dead fire")
    assert fire["error"] == "Trigger.TargetNotFound"
    assert wf in fire["cause"] and "not found" in fire["cause"]
    assert fire["attempts"] == 1


def test_a_pattern_with_a_big_number_is_kept_exactly(admin) -> None:
    # JSON values keep integers beyond 64 bits exactly (issue 26 point 1): never a 500
    name = unique("big")
    body = (
        b'{"name": "%s", "target": "transform", "event": {"pattern": {"detail": {"n": [123456789012345678901234567]}}}}'
    )
    r = admin.post("/api/v1/triggers", content=body % name.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    got = admin.get(f"/api/v1/triggers/{name}")
    assert b"[123456789012345678901234567]" in got.content
