"""Function targets: the event reaches the handler with the fire's idempotency key; a raising
function is retried then dead-lettered; platform events (execution status changes, function
failures) fire event triggers."""

from __future__ import annotations

from triggers.support import create_workflow, history, unique, wait_for

SOURCE = """
def handler(event, context):
    if event.get("detail", {}).get("fail"):
        raise LookupError("nothing here")
    return {"key": context.idempotency_key, "n": event["detail"]["n"]}
"""


def make_function(admin) -> str:
    name = unique("fn")
    r = admin.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": {"source": SOURCE}})
    assert r.status_code == 201, r.text
    return name


def test_event_to_function_with_the_fire_key_then_retries_and_dead_letter(admin) -> None:
    fn = make_function(admin)
    source = unique("fnsrc")
    name = unique("tofn")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:aionixfn:default:function/{fn}:1",
            "event": {"pattern": {"source": [source]}},
            "retry": {"max_attempts": 2, "interval_seconds": 0.2},
        },
    )
    assert r.status_code == 201, r.text
    trigger_id = r.json()["id"]
    ok = admin.post("/api/v1/events", json={"source": source, "type": "T", "detail": {"n": 7}}).json()
    [fire] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "delivered"], 60, what="delivery")
    assert fire["fire_key"] == ok["id"]

    bad = admin.post("/api/v1/events", json={"source": source, "type": "T", "detail": {"fail": True}}).json()
    [dead] = wait_for(lambda: history(admin, name, status="dead"), 60, what="dead letter")
    assert dead["fire_key"] == bad["id"] and dead["attempts"] == 2
    assert dead["error"] == "Function.Error.LookupError" and "nothing here" in dead["cause"]
    runs = admin.get(f"/api/v1/functions/{fn}/invocations", params={"limit": 100}).json()["items"]
    by_key: dict[str, list[dict]] = {}
    for run in runs:
        by_key.setdefault(run["idempotency_key"], []).append(run)
    [good] = by_key[f"{trigger_id}:{ok['id']}"]
    assert good["status"] == "SUCCEEDED" and good["result"] == {"key": f"{trigger_id}:{ok['id']}", "n": 7}
    failed = by_key[f"{trigger_id}:{bad['id']}"]
    assert [r["status"] for r in failed] == ["FAILED", "FAILED"]  # two attempts, one key


def test_platform_events_fire_event_triggers(admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("onexec")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": "transform",
            "input": "{'expression': 'detail', 'data': $}",
            "event": {
                "pattern": {"source": ["aionix.stepflow"], "detail": {"workflow": [wf], "status": ["SUCCEEDED"]}}
            },
        },
    )
    assert r.status_code == 201, r.text
    started = admin.post(f"/api/v1/workflows/{wf}/executions", json={"input": {"x": 1}})
    assert started.status_code in (200, 202), started.text
    [fire] = wait_for(
        lambda: [f for f in history(admin, name) if f["status"] == "delivered"], 60, what="status-change event"
    )
    assert fire["origin"] == "event"
