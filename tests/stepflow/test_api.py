"""The HTTP API on the real server: templates, validation, executions, history, SSE, callbacks."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx


def uname(prefix: str = "wf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


SIMPLE = {"entry": "Double", "states": {"Double": {"type": "set", "value": {"n": "{% input.n * 2 %}"}, "end": True}}}


def create(admin: httpx.Client, definition: dict, name: str | None = None) -> str:
    name = name or uname()
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


def test_schema_is_exported(admin):
    schema = admin.get("/api/v1/workflows/schema").json()
    assert schema["title"].startswith("StepFlow")
    assert "TaskState" in json.dumps(schema)


def test_validate_reports_every_problem_with_pointers(admin):
    bad = {
        "entry": "Missing",
        "states": {
            "A": {"type": "set", "value": "{% input.x + %}", "next": "Nowhere"},
            "B": {
                "type": "task",
                "action": "echo",
                "retry": [{"errors": ["States.ALL"], "backoff_rate": 0.5}],
                "end": True,
            },
            "M": {"type": "map", "end": True},
            "P": {"type": "parallel", "branches": [], "end": True},
            "L": {"type": "set"},
        },
    }
    report = admin.post("/api/v1/workflows/validate", json={"definition": bad}).json()
    assert report["valid"] is False
    pointers = {p["pointer"] for p in report["errors"]}
    assert {
        "/entry",
        "/states/A/next",
        "/states/A/value",
        "/states/B/retry/0/backoff_rate",
        "/states/M/processor",
        "/states/P/branches",
        "/states/L",
    } <= pointers
    syntax = next(p for p in report["errors"] if p["pointer"] == "/states/A/value")
    assert syntax["expression"] == "input.x +" and syntax["position"] is not None
    ok = admin.post("/api/v1/workflows/validate", json={"definition": SIMPLE}).json()
    assert ok == {"valid": True, "errors": [], "warnings": []}


def test_create_with_invalid_definition_is_422_naming_fields(admin):
    r = admin.post(
        "/api/v1/workflows", json={"name": uname(), "definition": {"entry": "X", "states": {"A": {"type": "succeed"}}}}
    )
    assert r.status_code == 422
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert "definition/entry" in fields


def test_template_versions_and_crud(admin):
    name = create(admin, SIMPLE)
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": SIMPLE}).status_code == 409
    v2 = admin.put(
        f"/api/v1/workflows/{name}", json={"definition": {"entry": "S", "states": {"S": {"type": "succeed"}}}}
    ).json()
    assert v2["version"] == 2
    versions = admin.get(f"/api/v1/workflows/{name}/versions").json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    v1 = admin.get(f"/api/v1/workflows/{name}", params={"version": 1}).json()
    assert v1["definition"] == SIMPLE
    assert name in [t["name"] for t in admin.get("/api/v1/workflows", params={"limit": 500}).json()["items"]]
    pinned = admin.post(
        f"/api/v1/workflows/{name}/executions", json={"input": {"n": 2}, "mode": "sync", "version": 1}
    ).json()
    assert pinned["output"] == {"n": 4} and pinned["version"] == 1
    assert admin.delete(f"/api/v1/workflows/{name}").status_code == 200
    assert admin.get(f"/api/v1/workflows/{name}").status_code == 404


def test_sync_execution_envelope(admin):
    name = create(admin, SIMPLE)
    r = admin.post(
        f"/api/v1/workflows/{name}/executions",
        json={"input": {"n": 21}, "mode": "sync"},
        headers={"X-Trace-Id": "trace-abc"},
    )
    assert r.status_code == 200
    env = r.json()
    assert env["status"] == "SUCCEEDED" and env["output"] == {"n": 42}
    assert env["trace_id"] == "trace-abc" and env["usage"] == {"tokens": 0, "cost_usd": 0.0}
    assert env["trn"] == f"trn:stepflow:default:execution/{env['execution_id']}"
    assert env["duration_ms"] >= 0


def test_async_execution_then_get_and_history(admin):
    name = create(
        admin, {"entry": "W", "states": {"W": {"type": "wait", "seconds": 0.2, "next": "S"}, "S": {"type": "succeed"}}}
    )
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"a": 1}})
    assert r.status_code == 202
    eid = r.json()["execution_id"]
    deadline = time.monotonic() + 20
    while admin.get(f"/api/v1/executions/{eid}").json()["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    history = admin.get(f"/api/v1/executions/{eid}/history").json()["items"]
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "ExecutionStarted" and history[-1]["type"] == "ExecutionSucceeded"
    listed = admin.get("/api/v1/executions", params={"workflow": name, "status": "SUCCEEDED"}).json()["items"]
    assert [e["execution_id"] for e in listed] == [eid]


def test_sync_past_its_bound_answers_202(admin):
    name = create(admin, {"entry": "W", "states": {"W": {"type": "wait", "seconds": 1, "end": True}}})
    r = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "wait_seconds": 0.1})
    assert r.status_code == 202 and r.json()["status"] == "RUNNING"


def test_list_paging(admin):
    name = create(admin, SIMPLE)
    ids = [
        admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"n": i}, "mode": "sync"}).json()[
            "execution_id"
        ]
        for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = admin.get(
            "/api/v1/executions", params={"workflow": name, "limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [e["execution_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


def test_bad_input_errors(admin):
    name = create(admin, SIMPLE)
    r = admin.post(
        f"/api/v1/workflows/{name}/executions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    big = {"input": "x" * 300_000}
    r = admin.post(f"/api/v1/workflows/{name}/executions", json=big)
    assert r.status_code == 413 and "input" in r.json()["error"]["message"]
    ten_mb = admin.post(
        f"/api/v1/workflows/{name}/executions",
        content=b'{"input": "' + b"x" * 10_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert ten_mb.status_code == 413
    assert admin.post("/api/v1/workflows/nope-nothing/executions", json={}).status_code == 404
    assert admin.get("/api/v1/executions/unknown-id").status_code == 404
    assert admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "later"}).status_code == 422
    runtime_error = admin.post(
        f"/api/v1/workflows/{create(admin, {'entry': 'S', 'states': {'S': {'type': 'set', 'value': '{% $number(input) %}', 'end': True}}})}/executions",
        json={"input": "abc", "mode": "sync"},
    ).json()
    assert runtime_error["status"] == "FAILED" and runtime_error["error"]["error"] == "States.QueryEvaluationError"
    assert "$number(input)" in runtime_error["error"]["cause"]


def test_stream_follows_events_until_done(server, admin):
    name = create(
        admin,
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 0.3, "next": "S"},
                "S": {"type": "set", "value": 1, "end": True},
            },
        },
    )
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
    kinds = []
    with server.client() as c, c.stream("GET", f"/api/v1/executions/{eid}/stream", timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
                if kinds[-1] == "done":
                    break
    assert kinds[0] == "ExecutionStarted" and "WaitStarted" in kinds and "StateExited" in kinds
    assert kinds[-2:] == ["ExecutionSucceeded", "done"]


def test_callback_approval_over_http(admin):
    notifier = create(admin, {"entry": "Send", "states": {"Send": {"type": "succeed"}}})
    name = create(
        admin,
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
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
    deadline = time.monotonic() + 20
    while True:
        sent = admin.get("/api/v1/executions", params={"workflow": notifier}).json()["items"]
        if sent:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    token = sent[0]["input"]["token"]
    assert admin.post("/api/v1/callbacks/not-a-token/success", json={"output": 1}).status_code == 404
    assert admin.post(f"/api/v1/callbacks/{token}/heartbeat", json={}).json() == {"token": token, "accepted": True}
    assert admin.post(f"/api/v1/callbacks/{token}/success", json={"output": {"approved": True}}).status_code == 200
    assert admin.post(f"/api/v1/callbacks/{token}/success", json={"output": {"approved": False}}).status_code == 409
    while (env := admin.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert env["status"] == "SUCCEEDED" and env["output"] == {"approved": True}


def test_cancel_and_redrive_over_http(admin):
    name = create(
        admin,
        {
            "entry": "W",
            "states": {
                "W": {"type": "wait", "seconds": 60, "next": "S"},
                "S": {"type": "set", "value": "done", "end": True},
            },
        },
    )
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={}).json()["execution_id"]
    aborted = admin.post(f"/api/v1/executions/{eid}/cancel").json()
    assert aborted["status"] == "ABORTED"
    assert admin.post(f"/api/v1/executions/{eid}/cancel").status_code == 409
    admin.put(f"/api/v1/workflows/{name}", json={"definition": SIMPLE}).raise_for_status()
    redriven = admin.post(f"/api/v1/executions/{eid}/redrive").json()
    assert redriven["status"] == "RUNNING" and redriven["redrive_count"] == 1 and redriven["version"] == 1
    admin.post(f"/api/v1/executions/{eid}/cancel").raise_for_status()


def test_sse_can_be_followed_by_a_plain_client(server, admin):
    name = create(admin, SIMPLE)
    eid = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"n": 1}, "mode": "sync"}).json()[
        "execution_id"
    ]
    got: list[str] = []

    def read() -> None:
        with httpx.stream(
            "GET",
            f"{server.url}/api/v1/executions/{eid}/stream",
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=20,
        ) as r:
            got.extend(r.iter_lines())

    t = threading.Thread(target=read)
    t.start()
    t.join(30)
    assert "event: done" in got


def test_idempotency_key_starts_one_execution(admin):
    name = create(admin, {"entry": "W", "states": {"W": {"type": "wait", "seconds": 0.2, "end": True}}})
    key = uuid.uuid4().hex
    first = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": 1}, headers={"Idempotency-Key": key})
    second = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": 1}, headers={"Idempotency-Key": key})
    assert first.json()["execution_id"] == second.json()["execution_id"]
    listed = admin.get("/api/v1/executions", params={"workflow": name}).json()["items"]
    assert len(listed) == 1


def test_list_filters_by_time(admin):
    name = create(admin, SIMPLE)
    before = time.time()
    env = admin.post(f"/api/v1/workflows/{name}/executions", json={"input": {"n": 1}, "mode": "sync"}).json()
    after = time.time() + 1
    assert [
        e["execution_id"]
        for e in admin.get("/api/v1/executions", params={"workflow": name, "since": before - 1}).json()["items"]
    ] == [env["execution_id"]]
    assert admin.get("/api/v1/executions", params={"workflow": name, "since": after}).json()["items"] == []
    assert admin.get("/api/v1/executions", params={"workflow": name, "until": before - 1}).json()["items"] == []


def test_validate_warns_about_missing_references(admin):
    definition = {
        "entry": "T",
        "states": {
            "T": {
                "type": "task",
                "action": "trn:aionixfn:default:function/not-there-fn",
                "parameters": {"k": "{% $secret.no_such_secret_x %}"},
                "next": "C",
            },
            "C": {"type": "task", "action": "trn:stepflow:default:template/not-there-wf", "end": True},
        },
    }
    report = admin.post("/api/v1/workflows/validate", json={"definition": definition}).json()
    assert report["valid"] is True
    warnings = {(w["pointer"], w["message"]) for w in report["warnings"]}
    assert ("/states/T/action", "trn:aionixfn:default:function/not-there-fn does not exist (yet)") in warnings
    assert ("/states/T", "secret 'no_such_secret_x' does not exist (yet)") in warnings
    assert ("/states/C/action", "trn:stepflow:default:template/not-there-wf does not exist (yet)") in warnings
