"""Issue 15 finding 3: a secret value never reaches a viewer.

One canary secret is used every way a workflow or function can read it — a credvault task,
`$secret`, a `secret_ref` parameter, a function granted the secret that prints and returns it
(plain, base64, base64url, URL-encoded, JSON-escaped) — and a failed execution carries it in its
error cause, whose `Execution Status Change` event starts another workflow. The canary, in any
of those encodings, then appears 0 times in every API answer (envelopes, histories, SSE streams,
execution lists, invocations, logs, trigger fires, audit), in the server log, and in the raw
bytes of the database file and its WAL.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import quote, quote_plus

import httpx
import orjson

WF = "trn:stepflow:default:template/"

FUNCTION_SOURCE = """
import base64, json, os, urllib.parse

def handler(event, context):
    v = os.environ[event["env"]]
    forms = {
        "plain": v,
        "b64": base64.b64encode(v.encode()).decode(),
        "b64url": base64.urlsafe_b64encode(v.encode()).decode(),
        "url": urllib.parse.quote(v, safe=""),
        "json": json.dumps({"v": v}),
        "embedded_b64": base64.b64encode(("prefix:" + v + ":suffix").encode()).decode(),
    }
    for key, text in forms.items():
        print(key, text)
    if event.get("fail"):
        raise ValueError("cannot log in with " + v)
    return forms
"""


def encodings(value: str) -> dict[str, bytes]:
    raw = value.encode()
    return {
        "plain": raw,
        "json-escaped": orjson.dumps(value)[1:-1],
        "json-ascii": json.dumps(value)[1:-1].encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "url": quote(value, safe="").encode(),
        "url-plus": quote_plus(value).encode(),
    }


def assert_absent(canary: str, where: str, data: str | bytes) -> None:
    blob = data.encode() if isinstance(data, str) else data
    for name, form in encodings(canary).items():
        assert form not in blob, f"the canary ({name}) is in {where}"


def _workflow(c: httpx.Client, name: str, definition: dict) -> None:
    r = c.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text


def _run(c: httpx.Client, name: str, input: object = None) -> dict:
    r = c.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "input": input, "wait_seconds": 60})
    assert r.status_code in (200, 202), r.text
    env = r.json()
    deadline = time.monotonic() + 60
    while env["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        env = c.get(f"/api/v1/executions/{env['execution_id']}").json()
    return env


def _everything_about(c: httpx.Client, execution_id: str) -> dict[str, str]:
    stream = c.get(f"/api/v1/executions/{execution_id}/stream", timeout=30)
    return {
        f"envelope {execution_id}": c.get(f"/api/v1/executions/{execution_id}").text,
        f"history {execution_id}": c.get(f"/api/v1/executions/{execution_id}/history").text,
        f"ASL history {execution_id}": c.get(
            f"/api/v1/executions/{execution_id}/history", params={"format": "asl"}
        ).text,
        f"SSE stream {execution_id}": stream.text,
    }


def test_a_canary_secret_never_reaches_a_viewer(make_server):
    srv = make_server().start()
    hexpart = uuid.uuid4().hex
    # quotes, a space, '/', '+', '&' and '=' make every encoding differ from the plain value
    canary = f'cn"ry {hexpart}/+&=Zq'
    secret = "canary_" + hexpart[:8]
    c = srv.client(timeout=90)
    answers: dict[str, str] = {}

    r = c.post("/api/v1/secrets", json={"name": secret, "type": "password", "value": canary})
    assert r.status_code == 201, r.text
    r = c.put(f"/api/v1/params/sec/{hexpart[:8]}", json={"type": "secret_ref", "value": secret})
    assert r.status_code in (200, 201), r.text

    # the event-triggered workflow: started with the failure event of the "fails" workflow
    _workflow(c, "on-failure", {"entry": "Echo", "states": {"Echo": {"type": "set", "end": True}}})
    _workflow(c, "child-echo", {"entry": "Echo", "states": {"Echo": {"type": "set", "end": True}}})
    pattern = {
        "source": ["aionix.stepflow"],
        "type": ["Execution Status Change"],
        "detail": {"workflow": ["fails"], "status": ["FAILED"]},
    }
    r = c.post(
        "/api/v1/triggers", json={"name": "failures", "target": WF + "on-failure", "event": {"pattern": pattern}}
    )
    assert r.status_code == 201, r.text

    fn = c.post(
        "/api/v1/functions",
        json={"name": "leaky", "runtime": "python", "code": {"source": FUNCTION_SOURCE}, "secrets": [secret]},
    )
    assert fn.status_code == 201, fn.text

    ref = "$secret." + secret
    _workflow(
        c,
        "uses-secret",
        {
            "entry": "Resolve",
            "states": {
                # (a) a task that resolves the credential directly
                "Resolve": {
                    "type": "task",
                    "action": f"trn:credvault:default:credential/{secret}",
                    "parameters": {"op": "resolve"},
                    "assign": {"resolved": "{% result %}"},
                    "next": "Encode",
                },
                # $secret and a secret_ref parameter, plain and encoded
                "Encode": {
                    "type": "set",
                    "value": {
                        "plain": "{% " + ref + " %}",
                        "task": "{% vars.resolved %}",
                        "param": "{% $param('/sec/" + hexpart[:8] + "') %}",
                        "b64": "{% $base64encode(" + ref + ") %}",
                        "url": "{% $encodeUrlComponent(" + ref + ") %}",
                        "json": "{% $string({'v': " + ref + "}) %}",
                        "header": "{% 'Bearer ' & " + ref + " %}",
                    },
                    "next": "Child",
                },
                # a child workflow started with the value in its input
                "Child": {
                    "type": "task",
                    "action": WF + "child-echo",
                    "parameters": {"pw": "{% " + ref + " %}"},
                    "next": "Call",
                },
                # (b) the function that prints and returns it, called from the workflow
                "Call": {
                    "type": "task",
                    "action": "trn:aionixfn:default:function/leaky",
                    "parameters": {"env": secret},
                    "end": True,
                },
            },
        },
    )
    _workflow(
        c,
        "fails",
        {
            "entry": "Read",
            "states": {
                "Read": {"type": "set", "assign": {"pw": "{% " + ref + " %}"}, "next": "Boom"},
                "Boom": {"type": "fail", "error": "Login.Failed", "cause": "{% 'bad password ' & vars.pw %}"},
            },
        },
    )

    used = _run(c, "uses-secret")
    assert used["status"] == "SUCCEEDED", used
    # the function did get the value: its answer holds the masked forms
    assert used["output"]["plain"] == "***", used["output"]
    failed = _run(c, "fails")
    assert failed["status"] == "FAILED" and failed["error"]["error"] == "Login.Failed", failed
    assert failed["error"]["cause"] == "bad password ***"

    # (b) the function called directly, succeeding and failing
    ok = c.post("/api/v1/functions/leaky/invoke", json={"env": secret})
    assert ok.status_code == 200 and ok.json()["status"] == "SUCCEEDED", ok.text
    assert ok.json()["result"]["plain"] == "***"
    bad = c.post("/api/v1/functions/leaky/invoke", json={"env": secret, "fail": True})
    assert bad.status_code == 200 and bad.json()["status"] == "FAILED", bad.text
    answers["function answers"] = ok.text + bad.text

    # (c) the failure event started the triggered workflow with the (masked) event
    deadline = time.monotonic() + 60
    triggered = []
    while time.monotonic() < deadline and not triggered:
        fires = c.get("/api/v1/triggers/failures/history").json()["items"]
        triggered = [f for f in fires if f["status"] == "delivered" and f.get("result_id")]
        time.sleep(0.2)
    assert triggered, "the failure event did not start the triggered workflow"
    echo = c.get(f"/api/v1/executions/{triggered[0]['result_id']}").json()
    deadline = time.monotonic() + 30
    while echo["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
        echo = c.get(f"/api/v1/executions/{echo['execution_id']}").json()
    assert echo["status"] == "SUCCEEDED", echo
    assert echo["input"]["detail"]["error"]["cause"] == "bad password ***"

    children = c.get("/api/v1/executions", params={"workflow": "child-echo"}).json()["items"]
    assert len(children) == 1 and children[0]["status"] == "SUCCEEDED", children
    assert children[0]["input"] == {"pw": "***"}, children
    for execution in (used, failed, echo, children[0]):
        answers.update(_everything_about(c, execution["execution_id"]))
    answers["executions"] = c.get("/api/v1/executions", params={"limit": 100}).text
    answers["invocations"] = c.get("/api/v1/functions/leaky/invocations").text
    answers["logs"] = c.get("/api/v1/functions/leaky/logs", params={"limit": 1000}).text
    answers["fires"] = c.get("/api/v1/triggers/failures/history").text
    answers["audit"] = c.get("/api/v1/audit", params={"limit": 1000}).text
    answers["secret"] = c.get(f"/api/v1/secrets/{secret}").text
    answers["param"] = c.get(f"/api/v1/params/sec/{hexpart[:8]}").text

    # the logs did capture the lines, masked: the function ran and printed
    logs = c.get("/api/v1/functions/leaky/logs", params={"limit": 1000}).json()["items"]
    assert any(line["message"] == "plain ***" for line in logs), logs
    assert any(line["message"].startswith("b64 ***") for line in logs), logs

    for where, text in answers.items():
        assert_absent(canary, where, text)
    time.sleep(0.5)  # invocation records and fires are written behind the answer
    c.get("/api/v1/functions/leaky/invocations")
    for path in srv.data_dir.glob("aionix.db*"):
        assert_absent(canary, path.name, path.read_bytes())
    c.close()
    srv.stop()
    for path in srv.data_dir.glob("aionix.db*"):
        assert_absent(canary, path.name + " (after stop)", path.read_bytes())
    assert_absent(canary, "the server log", srv.log())


def test_every_masked_form_of_a_value():
    """The redactor masks the value in the forms CI systems mask, wherever it sits."""
    from aionix.redact import SecretSet

    value = 'p@ss "word"/+ ' + uuid.uuid4().hex
    s = SecretSet()
    s.add(value)
    for prefix in ("", "a", "ab", "abc"):
        for suffix in ("", "z", "zz"):
            whole = (prefix + value + suffix).encode()
            for encoded in (base64.b64encode(whole), base64.urlsafe_b64encode(whole)):
                assert "***" in s.text(encoded.decode())
    for form in encodings(value).values():
        assert s.text("x " + form.decode() + " y") == "x *** y"
    # inside a JSON document: masked, still valid JSON
    doc = orjson.dumps({"k": f"Bearer {value}", value: [value]}).decode()
    assert orjson.loads(s.json_text(doc)) == {"k": "Bearer ***", "***": ["***"]}
    # a JSON secret: each string inside it
    s.add({"user": "admin-user", "password": "hunter2-hunter2"})
    assert s.text("login admin-user:hunter2-hunter2") == "login ***:***"
    # what cannot be masked: an arbitrary transformation is just another string
    assert s.text(value[::-1]) == value[::-1]


def test_connection_credentials_echoed_back_are_masked_in_the_execution(make_server):
    """A connection's credential, resolved from CredVault for an HTTP call whose response
    echoes it, is masked in the execution that made the call."""
    from connectors.support import start_http

    echo = start_http()
    srv = make_server(env={"AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1"}).start()
    token = "tok-" + uuid.uuid4().hex
    try:
        with srv.client(timeout=60) as c:
            assert c.post("/api/v1/secrets", json={"name": "api-token", "type": "api_key", "value": token}).is_success
            conn = {"base_url": echo.url, "auth": {"type": "bearer", "token_secret": "api-token"}}
            r = c.post("/api/v1/connections", json={"name": "echo", "kind": "http", "config": conn})
            assert r.status_code == 201, r.text
            action = {"name": "whoami", "kind": "http", "connection": "echo", "parameters": {"url": "/echo"}}
            assert c.post("/api/v1/actions", json=action).status_code == 201
            definition = {
                "entry": "Call",
                "states": {"Call": {"type": "task", "action": "trn:openact:default:action/http/whoami", "end": True}},
            }
            _workflow(c, "calls-echo", definition)
            env = _run(c, "calls-echo")
            assert env["status"] == "SUCCEEDED", env
            assert env["output"]["body"]["headers"]["authorization"] == "Bearer ***"
            for where, text in _everything_about(c, env["execution_id"]).items():
                assert_absent(token, where, text)
            # the action run directly over the API: the operator's answer is masked too
            direct = c.post("/api/v1/actions/whoami/execute", json={"input": None})
            assert direct.status_code == 200, direct.text
            assert direct.json()["result"]["body"]["headers"]["authorization"] == "Bearer ***"
            assert_absent(token, "the action's answer", direct.text)
            time.sleep(0.2)
            for path in srv.data_dir.glob("aionix.db*"):
                assert_absent(token, path.name, path.read_bytes())
        assert any(req["headers"].get("authorization") == f"Bearer {token}" for req in echo.requests)
    finally:
        echo.shutdown()
        srv.stop()
