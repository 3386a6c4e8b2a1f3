"""Events: matching, delivery with the event id, retries with backoff, dead letters."""

from __future__ import annotations

from triggers.support import create_workflow, finished_execution, history, unique, wait_for

WF = "trn:stepflow:default:template/"


def test_matching_event_starts_the_workflow_with_the_event(admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    source = unique("shop")
    name = unique("ev")
    pattern = {"source": [source], "type": ["Order Placed"], "detail": {"amount": [{"numeric": [">", 100]}]}}
    r = admin.post("/api/v1/triggers", json={"name": name, "target": WF + wf, "event": {"pattern": pattern}})
    assert r.status_code == 201, r.text

    miss = admin.post("/api/v1/events", json={"source": source, "type": "Order Placed", "detail": {"amount": 5}})
    assert miss.status_code == 202 and miss.json()["matched"] == 0
    hit = admin.post("/api/v1/events", json={"source": source, "type": "Order Placed", "detail": {"amount": 500}})
    assert hit.status_code == 202, hit.text
    event_id = hit.json()["id"]
    assert hit.json()["matched"] == 1

    [fire] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "delivered"], 30, what="delivery")
    assert fire["fire_key"] == event_id
    done = finished_execution(admin, fire["result_id"])
    event = done["input"]
    assert event["id"] == event_id and event["source"] == source and event["detail"] == {"amount": 500}


def test_bad_events_are_rejected_naming_the_field(admin) -> None:
    r = admin.post("/api/v1/events", json={"type": "x", "detail": {}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "source"
    r = admin.post("/api/v1/events", json={"source": "s", "type": "t", "detail": {}, "extra": 1})
    assert r.status_code == 422


def test_failing_target_is_retried_with_backoff_then_dead_lettered_and_announced(admin) -> None:
    source = unique("flaky")
    name = unique("fails")
    boom = {"expression": "$error('boom')"}
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": "transform",
            "input": f"{{'expression': \"{boom['expression']}\", 'data': $}}",
            "event": {"pattern": {"source": [source]}},
            "retry": {"max_attempts": 3, "interval_seconds": 0.3, "backoff_rate": 2},
        },
    )
    assert r.status_code == 201, r.text
    watcher = unique("watch")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": watcher,
            "target": "transform",
            "input": "{'expression': 'detail.error', 'data': $}",
            "event": {
                "pattern": {
                    "source": ["aionix.triggers"],
                    "type": ["Trigger Delivery Failed"],
                    "detail": {"trigger": [f"trn:igniter:default:trigger/{name}"]},
                }
            },
        },
    )
    assert r.status_code == 201, r.text

    assert admin.post("/api/v1/events", json={"source": source, "type": "Tick", "detail": {}}).json()["matched"] == 1
    [dead] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "dead"], 30, what="dead letter")
    assert dead["attempts"] == 3
    assert (
        dead["error"] == "Transform.Error" and "boom" in dead["cause"] and "gave up after 3 attempts" in dead["cause"]
    )
    assert dead["updated_at"] - dead["created_at"] >= 0.3 + 0.6 - 0.05  # two backoff waits: 0.3 s, then 0.6 s

    [announced] = wait_for(lambda: history(admin, watcher), 30, what="the failure event")
    assert announced["status"] == "delivered"
    assert len(history(admin, name, status="dead")) == 1


def test_a_big_integer_detail_is_accepted_not_a_500(admin) -> None:
    # JSON values keep integers beyond 64 bits exactly (issue 26 point 1)
    r = admin.post(
        "/api/v1/events",
        content=b'{"source": "s", "type": "t", "detail": [-17408969402640811163648]}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 202, r.text
