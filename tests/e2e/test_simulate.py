"""POST /api/v1/runtime/simulate and GET /api/v1/runtime/capabilities (issue 19): estimates
against executions actually run, feasibility, every risk rule, and no side effects (stand-ins
record every call; nothing is run, invoked or written)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from serverproc import ServerProcess

CONFIG = """
[security]
rate_limit_per_key = 100000
rate_limit_per_key_burst = 100000
rate_limit_per_ip = 100000
rate_limit_per_ip_burst = 100000
auth_failures_per_minute = 100000

[agents]
skill_costs = {"function.*" = 0.002, "connector.http.*" = 0.0005}
"""
SLEEPY = "import time\n\ndef handler(event, context):\n    time.sleep(0.05)\n    return {'ok': event}\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("simulate-server")
    (root / "config.toml").write_text(CONFIG)
    proc = ServerProcess(root, args=["--config", str(root / "config.toml")]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(sim_server: ServerProcess) -> Iterator[httpx.Client]:
    with sim_server.client(timeout=60.0) as c:
        yield c


class Recorder(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        Recorder.calls.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    """A stand-in HTTP service that records every call made to it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def simulate(api: httpx.Client, body: dict, status: int = 200) -> dict:
    r = api.post("/api/v1/runtime/simulate", json=body)
    assert r.status_code == status, r.text
    return r.json()


def rules(result: dict) -> set[str]:
    return {r["rule"] for r in result["risks"]}


def test_estimates_against_executions_actually_run(api):
    name = unique("simwait")
    definition = {
        "entry": "Pause",
        "states": {
            "Pause": {"type": "wait", "seconds": 0.3, "next": "Done"},
            "Done": {"type": "set", "value": {"ok": True}, "end": True},
        },
    }
    # before any run: the model estimate is the wait itself
    inline = simulate(api, {"definition": definition, "input": {}})
    assert inline["feasible"] and inline["duration_source"] == "model"
    assert 300 <= inline["estimated_duration_ms"]["p50"] < 400
    assert api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    observed = []
    for _ in range(5):
        r = api.post(f"/api/v1/workflows/{name}/executions", json={"input": {}, "mode": "sync"})
        assert r.status_code == 200 and r.json()["status"] == "SUCCEEDED", r.text
        observed.append(r.json()["duration_ms"])
    result = simulate(api, {"workflow": name, "input": {}})
    assert result["duration_source"] == "history"
    p50, p95 = result["estimated_duration_ms"]["p50"], result["estimated_duration_ms"]["p95"]
    slack = 25  # ms: envelope and store timestamps are taken at slightly different moments
    assert min(observed) - slack <= p50 <= max(observed) + slack, (p50, observed)
    assert p50 <= p95 <= max(observed) + slack
    pause = next(s for s in result["step_estimates"] if s["state"] == "Pause")
    assert pause["latency"]["samples"] == 5 and 290 <= pause["latency"]["p50"] <= max(observed) + slack
    assert pause["probability"] == 1.0


def test_function_latency_and_cost_from_recorded_invocations(api):
    fn = unique("simfn")
    body = {"name": fn, "runtime": "python", "code": {"source": SLEEPY}}
    assert api.post("/api/v1/functions", json=body).status_code == 201
    seen = []
    for i in range(4):
        r = api.post(f"/api/v1/functions/{fn}/invoke", json={"i": i})
        assert r.status_code == 200, r.text
        seen.append(r.json()["duration_ms"])
    caps = api.get("/api/v1/runtime/capabilities").json()
    entry = next(f for f in caps["functions"] if f["name"] == fn)
    assert entry["runtime"] == "python" and entry["limits"] is not None
    assert entry["latency_ms"]["samples"] == 4
    assert min(seen) <= entry["latency_ms"]["p50"] <= max(seen)
    assert entry["cost_usd"] == 0.002 and entry["cost_source"] == "configured"
    assert entry["permissions"]["role"] == "operator" and entry["rate_limits"]["per_key_per_second"] == 100000
    http_ops = [c for c in caps["connectors"] if c["skill"].startswith("connector.http.")]
    assert http_ops and http_ops[0]["cost_usd"] == 0.0005 and http_ops[0]["parameters"]["properties"]
    assert {"connectors", "functions", "actions", "intents", "workflows"} <= caps.keys()

    definition = {
        "entry": "Call",
        "states": {
            "Call": {"type": "task", "action": f"trn:aionixfn:default:function/{fn}", "next": "Again"},
            "Again": {"type": "task", "action": f"trn:aionixfn:default:function/{fn}", "end": True},
        },
    }
    result = simulate(api, {"definition": definition, "input": {}, "budget_usd": 0.003})
    assert result["feasible"], result["problems"]
    assert result["estimated_cost_usd"] == pytest.approx(0.004)
    assert result["budget_sufficient"] is False and result["budget_remaining_usd"] == pytest.approx(-0.001)
    assert "over_budget" in rules(result)
    step = result["step_estimates"][0]
    assert step["skill"] == f"function.{fn}" and min(seen) <= step["latency"]["p50"] <= max(seen)
    assert min(seen) * 2 <= result["estimated_duration_ms"]["p50"] <= max(seen) * 2 + 5

    # a plain list of skill steps with a budget
    steps = simulate(api, {"steps": [{"skill": f"function.{fn}", "count": 3}], "budget_usd": 1})
    assert steps["estimated_cost_usd"] == pytest.approx(0.006)
    assert steps["budget_sufficient"] is True and steps["budget_remaining_usd"] == pytest.approx(0.994)
    missing = simulate(api, {"steps": [{"skill": "function.nope"}]})
    assert not missing["feasible"] and missing["problems"][0]["pointer"] == "/steps/0/skill"


def test_no_side_effects(api, stand_in):
    fn = unique("simquiet")
    assert (
        api.post("/api/v1/functions", json={"name": fn, "runtime": "python", "code": {"source": SLEEPY}}).status_code
        == 201
    )
    name = unique("simquiet")
    definition = {
        "entry": "Post",
        "states": {
            "Post": {
                "type": "task",
                "action": "http",
                "parameters": {"method": "POST", "url": stand_in + "/hook"},
                "retry": [{"errors": ["States.ALL"]}],
                "next": "Fn",
            },
            "Fn": {"type": "task", "action": f"trn:aionixfn:default:function/{fn}", "end": True},
        },
    }
    assert api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    audit_before = len(api.get("/api/v1/audit", params={"limit": 10000}).json()["items"])
    Recorder.calls.clear()
    for body in ({"workflow": name, "input": {"x": 1}}, {"definition": definition, "input": {}}):
        result = simulate(api, body)
        assert result["feasible"], result["problems"]
    assert Recorder.calls == []  # the stand-in service was never called
    assert api.get(f"/api/v1/functions/{fn}/invocations").json()["items"] == []
    assert api.get("/api/v1/executions", params={"workflow": name}).json()["items"] == []
    # nothing written (simulate is not audited as a write)
    assert len(api.get("/api/v1/audit", params={"limit": 10000}).json()["items"]) == audit_before


def test_feasibility_problems(api, sim_server):
    definition = {
        "entry": "A",
        "states": {
            "A": {"type": "task", "action": "trn:aionixfn:default:function/missing-fn", "next": "B"},
            "B": {"type": "task", "action": "trn:openact:default:action/missing-action", "next": "C"},
            "C": {"type": "task", "action": "nosuchconnector", "next": "D"},
            "D": {
                "type": "set",
                "value": {"s": "{% $secret.missing_secret %}", "p": "{% $param('/missing/param') %}"},
                "end": True,
            },
        },
    }
    result = simulate(api, {"definition": definition, "input": {}})
    assert not result["feasible"]
    kinds = {(p["kind"], p["pointer"]) for p in result["problems"]}
    assert ("missing", "/states/A/action") in kinds
    assert ("missing", "/states/B/action") in kinds
    assert ("not_installed", "/states/C/action") in kinds
    assert ("missing_secret", "/states/D") in kinds and ("missing_param", "/states/D") in kinds
    invalid = simulate(api, {"definition": {"entry": "X", "states": {}}})
    assert not invalid["feasible"] and invalid["problems"][0]["kind"] == "invalid"
    # a viewer may simulate, but may not run: not feasible for that key
    viewer = api.post("/api/v1/keys", json={"name": unique("simviewer"), "role": "viewer"}).json()["key"]
    with sim_server.client(viewer) as v:
        ok = {"entry": "S", "states": {"S": {"type": "succeed"}}}
        r = v.post("/api/v1/runtime/simulate", json={"definition": ok})
        assert r.status_code == 200 and not r.json()["feasible"]
        assert r.json()["problems"][0]["kind"] == "permission"
    # bad bodies: 422 naming the field
    for body, field in (
        ({}, "body"),
        ({"workflow": "a", "steps": []}, "body"),
        ({"definition": {"entry": "S"}, "version": 2}, "version"),
        ({"steps": [{"skill": ""}]}, "steps.0.skill"),
        ({"workflow": "no such"}, "workflow"),
    ):
        r = api.post("/api/v1/runtime/simulate", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text
    assert api.post("/api/v1/runtime/simulate", json={"workflow": "never-made"}).status_code == 404


def test_every_risk_rule(api, stand_in):
    secret = unique("simsecret").replace("-", "_")
    r = api.post(
        "/api/v1/secrets",
        json={
            "name": secret,
            "type": "api_key",
            "value": "s3cr3t",
            "readers": ["trn:stepflow:default:template/someone-else"],
        },
    )
    assert r.status_code == 201, r.text
    name = unique("simrisky")
    definition = {
        "entry": "Call",
        "states": {
            "Call": {
                "type": "task",
                "action": "http",
                "parameters": {"url": stand_in, "headers": {"X-Key": f"{{% $secret.{secret} %}}"}},
                "next": "Items",
            },
            "Items": {
                "type": "map",
                "items": "{% input.rows %}",
                "processor": {"entry": "One", "states": {"One": {"type": "set", "value": 1, "end": True}}},
                "next": "Known",
            },
            "Known": {
                "type": "map",
                "items": "{% [1, 2, 3] %}",
                "max_concurrency": 2,
                "processor": {"entry": "Two", "states": {"Two": {"type": "set", "value": 2, "end": True}}},
                "next": "Dyn",
            },
            "Dyn": {
                "type": "task",
                "action": "{% 'tra' & 'nsform' %}",
                "parameters": {"expression": "1"},
                "next": "Long",
            },
            "Long": {"type": "wait", "seconds": 31 * 86400, "end": True},
        },
    }
    assert api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    result = simulate(api, {"workflow": name, "input": {"rows": 5}, "budget_usd": 0})
    found = rules(result)
    assert {
        "network_task_without_retry",
        "unbounded_map",
        "unknown_map_size",
        "dynamic_target",
        "wait_exceeds_retention",
        "secret_not_readable",
        "over_budget",
    } <= found, found
    pointers = {r["rule"]: r["pointer"] for r in result["risks"]}
    assert pointers["network_task_without_retry"] == "/states/Call"
    assert pointers["unbounded_map"] == "/states/Items"
    assert pointers["wait_exceeds_retention"] == "/states/Long"
    # the stored workflow is not a reader of its secret: it would fail, so not feasible
    assert not result["feasible"] and any(p["kind"] == "permission" for p in result["problems"])
    known = next(s for s in result["step_estimates"] if s["state"] == "Known")
    assert known["skill"] == "map[3 items, 2 at once]"
    # the same workflow with a retry, a bounded map and a short wait has none of those risks
    fixed = dict(definition["states"])
    fixed["Call"] = {**fixed["Call"], "retry": [{"errors": ["States.ALL"]}]}
    fixed["Items"] = {**fixed["Items"], "max_concurrency": 4}
    fixed["Long"] = {"type": "wait", "seconds": 1, "end": True}
    clean = simulate(api, {"definition": {"entry": "Call", "states": fixed}, "input": {"rows": [1, 2]}})
    assert not {"network_task_without_retry", "unbounded_map", "wait_exceeds_retention", "unknown_map_size"} & rules(
        clean
    )
    assert clean["budget_sufficient"] is None and clean["budget_remaining_usd"] is None


def test_simulate_cli(sim_server, api, tmp_path: Path):
    import json
    import os
    import subprocess
    import sys

    name = unique("simcli")
    definition = {"entry": "S", "states": {"S": {"type": "wait", "seconds": 0.1, "end": True}}}
    assert api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    (tmp_path / "input.json").write_text('{"a": 1}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update(
        {
            "AIONIX_URL": sim_server.url,
            "AIONIX_API_KEY": sim_server.admin_key,
            "AIONIX_SECURITY_CREDENTIALS_FILE": os.devnull,
        }
    )
    aio = str(Path(sys.executable).parent / "aio")
    out = subprocess.run(
        [aio, "-o", "json", "wf", "simulate", name, "-i", f"@{tmp_path / 'input.json'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["feasible"] and result["estimated_duration_ms"]["p50"] >= 100
    caps = subprocess.run([aio, "runtime", "capabilities"], capture_output=True, text=True, env=env, timeout=60)
    assert caps.returncode == 0 and "connector.http" in caps.stdout


def test_connector_and_action_latency_from_recorded_task_calls(api):
    """A saved action's and a connector kind's latency come from task calls recorded in
    execution histories (TaskScheduled -> TaskSucceeded), and an inline definition that uses
    them is estimated from those calls."""
    act = unique("simact")
    r = api.post("/api/v1/actions", json={"name": act, "kind": "transform", "parameters": {"expression": "1"}})
    assert r.status_code == 201, r.text
    action_trn = r.json()["trn"]
    name = unique("simcalls")
    definition = {
        "entry": "Act",
        "states": {
            "Act": {"type": "task", "action": action_trn, "next": "Tx"},
            "Tx": {"type": "task", "action": "transform", "parameters": {"expression": "2"}, "end": True},
        },
    }
    assert api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    for _ in range(3):
        r = api.post(f"/api/v1/workflows/{name}/executions", json={"input": {}, "mode": "sync"})
        assert r.json()["status"] == "SUCCEEDED", r.text
    caps = api.get("/api/v1/runtime/capabilities").json()
    action = next(a for a in caps["actions"] if a["name"] == act)
    assert action["latency_ms"]["samples"] == 3 and action["latency_ms"]["p50"] is not None
    transform = next(c for c in caps["connectors"] if c["kind"] == "transform" and c["latency_ms"]["samples"])
    assert transform["latency_ms"]["samples"] >= 3
    inline = simulate(api, {"definition": definition, "input": {}})
    step = next(s for s in inline["step_estimates"] if s["state"] == "Act")
    assert step["skill"] == f"action.{act}"
    # the recorded calls' p50, not the 100 ms default for a skill never called
    assert step["latency"]["samples"] == 0 and step["latency"]["p50"] == action["latency_ms"]["p50"]
