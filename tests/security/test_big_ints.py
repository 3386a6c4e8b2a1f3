"""Issue 26 point 1 and issue 15 finding 12: odd but valid input is never a 500.

Integers beyond 64 bits are valid JSON: inside free-form values (a parameter, a secret, a
workflow definition or input) they are kept exactly; in a field the store keeps as an integer
(a version, a cursor, a sequence number) they are refused with a 422 naming the field. Integral
floats (`1.0`) are integers, as JSON Schema says. A webhook client that hangs up mid-body is
no 500 and no traceback, and an ASL `Fail` state with a `Cause` but no `Error` still answers
with its envelope."""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest

BIG = 2**63
HUGE = 2**64
DIGITS30 = 123456789012345678901234567890


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def raw_json(client: httpx.Client, method: str, url: str, text: str) -> httpx.Response:
    """Send JSON text as is (httpx would encode Python ints exactly too, but say so)."""
    return client.request(method, url, content=text.encode(), headers={"Content-Type": "application/json"})


def field_of(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    return r.json()["error"]["details"][0]["field"]


def make_workflow(admin: httpx.Client, definition: dict | None = None) -> str:
    name = unique("bigint")
    definition = definition or {"entry": "Done", "states": {"Done": {"type": "succeed"}}}
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    return name


@pytest.mark.parametrize("value", [BIG, HUGE, -(2**63) - 1, DIGITS30])
def test_store_integers_out_of_range_are_422_naming_the_field(admin, value):
    wf = make_workflow(admin)
    eid = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync"}).json()["execution_id"]
    admin.put("/api/v1/params/bigint/p", json={"value": "x"}).raise_for_status()
    cases = [
        ("GET", "/api/v1/audit", {"cursor": str(value)}, None, "query.cursor"),
        ("GET", f"/api/v1/executions/{eid}/history", {"after": str(value)}, None, "query.after"),
        ("GET", "/api/v1/functions/no-such-fn/logs", {"after": str(value)}, None, "query.after"),
        ("GET", f"/api/v1/workflows/{wf}", {"version": str(value)}, None, "query.version"),
        ("GET", "/api/v1/params/bigint/p", {"version": str(value)}, None, "query.version"),
        ("GET", f"/api/v1/workflows/{wf}/versions", {"cursor": str(value)}, None, "query.cursor"),
        ("POST", "/api/v1/params/bigint/p/rollback", None, f'{{"version": {value}}}', "version"),
        ("POST", f"/api/v1/workflows/{wf}/executions", None, f'{{"version": {value}}}', "version"),
        ("POST", "/api/v1/workflows/no-such-workflow/executions", None, f'{{"version": {value}}}', "version"),
    ]
    for method, url, params, body, field in cases:
        if value < 0 and "cursor" in field:
            continue  # a negative cursor is not digits: refused as "not a cursor" (also a 422 naming it)
        if body is None:
            r = admin.request(method, url, params=params)
        else:
            r = raw_json(admin, method, url, body)
        assert r.status_code == 422, (method, url, r.status_code, r.text)
        assert field_of(r) == field, (method, url, r.text)


def test_big_integers_in_values_are_kept_exactly(admin):
    r = raw_json(
        admin, "PUT", "/api/v1/params/bigint/json", f'{{"type": "json", "value": {{"n": {HUGE}, "m": {DIGITS30}}}}}'
    )
    assert r.status_code == 200, r.text
    got = admin.get("/api/v1/params/bigint/json")
    assert got.status_code == 200
    assert json.loads(got.text)["value"] == {"n": HUGE, "m": DIGITS30}
    assert f'"n":{HUGE}' in got.text.replace(" ", "")

    name = unique("bigsecret")
    r = raw_json(admin, "POST", "/api/v1/secrets", f'{{"name": "{name}", "type": "json", "value": {{"n": {HUGE}}}}}')
    assert r.status_code == 201, r.text
    revealed = admin.post(f"/api/v1/secrets/{name}/reveal", json={})
    assert revealed.status_code == 200, revealed.text
    assert json.loads(revealed.text)["value"] == {"n": HUGE}


def test_30_digit_integers_in_bodies_are_never_500(admin):
    definition = {"entry": "S", "states": {"S": {"type": "set", "value": {"big": DIGITS30}, "end": True}}}
    name = unique("bigdef")
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    assert admin.get(f"/api/v1/workflows/{name}").json()["definition"] == definition
    run = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "input": {"x": DIGITS30}})
    assert run.status_code == 200, run.text
    assert run.json()["input"] == {"x": DIGITS30}
    assert admin.put("/api/v1/params/bigint/n", json={"type": "json", "value": DIGITS30}).status_code == 200
    r = admin.post("/api/v1/secrets", json={"name": unique("s"), "type": "json", "value": [DIGITS30]})
    assert r.status_code == 201, r.text
    r = admin.post(
        "/api/v1/actions",
        json={"name": unique("act"), "kind": "transform", "parameters": {"expression": "{% $ %}", "n": DIGITS30}},
    )
    assert r.status_code < 500, r.text


def test_integral_floats_are_integers(admin):
    wf = make_workflow(admin)
    r = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync", "version": 1.0})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    r = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync", "version": 1.5})
    assert field_of(r) == "version"
    r = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync", "version": 1e300})
    assert field_of(r) == "version"


def test_webhook_client_that_hangs_up_mid_body_is_no_500(server, admin):
    wf = make_workflow(admin)
    hook = unique("hook")
    r = admin.post(
        "/api/v1/triggers", json={"name": hook, "target": f"trn:stepflow:default:template/{wf}", "webhook": {}}
    )
    assert r.status_code == 201, r.text
    host, port = server.url.removeprefix("http://").split(":")
    for name in (hook, unique("nohook")):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(
                f"POST /hooks/default/{name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: 100000\r\n\r\n".encode()
                + b'{"partial": '
            )
            time.sleep(0.2)
    deadline = time.monotonic() + 10
    while True:  # the hang-up is recorded as a rejected delivery with its reason
        items = admin.get(f"/api/v1/triggers/{hook}/history").json()["items"]
        if any(i.get("error") == "client_disconnected" for i in items):
            break
        assert time.monotonic() < deadline, items
        time.sleep(0.1)
    log = server.log()
    assert "unhandled error in POST /hooks" not in log
    assert "ClientDisconnect" not in log
    metrics = httpx.get(server.url + "/metrics").text
    assert not [line for line in metrics.splitlines() if "/hooks/" in line and 'status="500"' in line]


def test_asl_fail_with_cause_and_no_error_answers_its_envelope(admin):
    definition = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Cause": "it broke"}}}
    name = unique("aslfail")
    r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    run = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync"})
    assert run.status_code == 200, run.text
    envelope = run.json()
    assert envelope["status"] == "FAILED"
    assert envelope["error"]["cause"] == "it broke"
    again = admin.get(f"/api/v1/executions/{envelope['execution_id']}")
    assert again.status_code == 200 and again.json()["status"] == "FAILED"


def test_numeric_path_and_header_values_beyond_the_store_range(admin):
    for version in ("99999999999999999999", "²", str(BIG)):
        r = admin.get(f"/api/v1/functions/no-such-fn/versions/{version}")
        assert field_of(r) == "path.version", (version, r.text)
    wf = make_workflow(admin)
    eid = admin.post(f"/api/v1/workflows/{wf}/executions", json={"mode": "sync"}).json()["execution_id"]
    for last in (str(HUGE).encode(), "²".encode("latin-1")):
        r = admin.get(f"/api/v1/executions/{eid}/stream", headers={"Last-Event-ID": last})
        assert r.status_code == 200 and "event: done" in r.text, r.text


def test_version_qualifiers_beyond_the_store_range(admin):
    huge = "99999999999999999999"
    r = admin.post(f"/api/v1/functions/no-such-fn/invoke?qualifier={huge}", json={})
    assert r.status_code == 404, r.text
    child = make_workflow(admin)
    parent = make_workflow(
        admin,
        {
            "entry": "Call",
            "states": {
                "Call": {"type": "task", "action": f"trn:stepflow:default:template/{child}:{huge}", "end": True}
            },
        },
    )
    run = admin.post(f"/api/v1/workflows/{parent}/executions", json={"mode": "sync"})
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "FAILED" and run.json()["error"]["error"] == "States.Runtime", run.text


def test_alias_versions_beyond_the_store_range(admin):
    fn = unique("fn")
    source = "def handler(event, context):\n    return event\n"
    r = admin.post("/api/v1/functions", json={"name": fn, "runtime": "python", "code": {"source": source}})
    assert r.status_code == 201, r.text
    assert admin.post(f"/api/v1/functions/{fn}/versions", json={}).status_code in (200, 201)
    huge = "15840447280093056989032121"
    r = admin.put(f"/api/v1/functions/{fn}/aliases/live", json={"version": huge})
    assert field_of(r) == "version", r.text
    r = admin.put(
        f"/api/v1/functions/{fn}/aliases/live",
        json={"version": "1", "routing": {"version": huge, "weight": 0.5}},
    )
    assert field_of(r) == "routing.version", r.text
