"""Every workflow in examples/workflows runs on a real server with its sample input."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def load(name: str) -> tuple[dict[str, Any], Any]:
    definition = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    sample = json.loads((EXAMPLES / f"{name}.input.json").read_text())
    return definition, sample


def finish(client, name: str, sample: Any, timeout: float = 30) -> dict[str, Any]:
    definition, _ = load(name)
    wf = f"ex-{name}"
    client.post("/api/v1/workflows", json={"name": wf, "definition": definition}).raise_for_status()
    env = client.post(f"/api/v1/workflows/{wf}/executions", json={"input": sample, "mode": "sync"}).json()
    deadline = time.monotonic() + timeout
    while env["status"] == "RUNNING":
        assert time.monotonic() < deadline, env
        time.sleep(0.05)
        env = client.get(f"/api/v1/executions/{env['execution_id']}").json()
    return env


class Approver:
    """An approver's webhook: receives the task token and answers through the callback API."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.tokens.append(body["token"])
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/approvals"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_examples_run(make_server):
    server = make_server(env={"AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1"}).start()
    with server.client() as c:
        _, sample = load("order-processing")
        env = finish(c, "order-processing", sample)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == {
            "orderId": "A-1001",
            "status": "fulfilled",
            "reserved": 2,
            "invoice": {"to": "ada@example.com", "amount": 31, "currency": "EUR"},
        }

        _, sample = load("map-tolerated-failure")
        env = finish(c, "map-tolerated-failure", sample)
        assert env["status"] == "SUCCEEDED", env
        assert env["output"][0] == {"sku": "a", "charged": 6} and env["output"][2] == {"sku": "c", "charged": 1}
        assert env["output"][1]["error"] == "Item.Invalid"

        env = finish(c, "retry-catch", None)
        assert env["output"] == {"status": "degraded", "reason": "Transform.Error"}
        history = c.get(f"/api/v1/executions/{env['execution_id']}/history").json()["items"]
        assert [e["type"] for e in history].count("RetryScheduled") == 2

        _, sample = load("durable-wait")
        sample["delay_seconds"] = 0.3
        env = finish(c, "durable-wait", sample)
        assert env["output"] == {"message": "reminder for ada"} and env["duration_ms"] >= 300

        approver = Approver()
        definition, sample = load("callback-approval")
        c.post("/api/v1/workflows", json={"name": "ex-callback", "definition": definition}).raise_for_status()
        ids = []
        for _ in range(2):
            ids.append(
                c.post(
                    "/api/v1/workflows/ex-callback/executions", json={"input": {**sample, "approver_url": approver.url}}
                ).json()["execution_id"]
            )
        deadline = time.monotonic() + 20
        while len(approver.tokens) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c.post(f"/api/v1/callbacks/{approver.tokens[0]}/heartbeat", json={}).raise_for_status()
        c.post(f"/api/v1/callbacks/{approver.tokens[0]}/success", json={"output": {"by": "grace"}}).raise_for_status()
        c.post(
            f"/api/v1/callbacks/{approver.tokens[1]}/failure",
            json={"error": "Approval.Denied", "cause": "too expensive"},
        ).raise_for_status()
        results = {}
        for eid in ids:
            while (env := c.get(f"/api/v1/executions/{eid}").json())["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            results[eid] = env
        first, second = (results[i] for i in ids)
        # which execution got which token depends on arrival order: check both outcomes happened
        outcomes = sorted(
            [(e["status"], json.dumps(e["output"] or e["error"], sort_keys=True)) for e in (first, second)]
        )
        assert outcomes == [
            ("FAILED", json.dumps({"cause": "too expensive", "error": "Order.Rejected"}, sort_keys=True)),
            ("SUCCEEDED", json.dumps({"approved_by": "grace", "order": "A-1001"}, sort_keys=True)),
        ]


def test_asl_example_runs_as_written(make_server):
    """The Step Functions (ASL) example: stored as written, drawn from Choice/Map/Parallel/Catch,
    and run to the documented output with its sample input; an empty order fails as it says."""
    text = (EXAMPLES / "order-fulfilment.asl.json").read_text()
    definition = json.loads(text)
    sample = json.loads((EXAMPLES / "order-fulfilment.asl.input.json").read_text())
    server = make_server().start()
    with server.client() as c:
        report = c.post("/api/v1/workflows/validate", json={"definition": definition}).json()
        assert report["valid"] is True, report
        c.post("/api/v1/workflows", json={"name": "ex-asl", "definition": definition}).raise_for_status()
        stored = c.get("/api/v1/workflows/ex-asl").json()["definition"]
        assert json.dumps(stored) == json.dumps(definition)  # ASL kept as ASL, key order included
        env = c.post("/api/v1/workflows/ex-asl/executions", json={"input": sample, "mode": "sync"}).json()
        deadline = time.monotonic() + 30
        while env["status"] == "RUNNING":
            assert time.monotonic() < deadline, env
            time.sleep(0.05)
            env = c.get(f"/api/v1/executions/{env['execution_id']}").json()
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == {
            "orderId": "A-2001",
            "customer": "ada@example.com",
            "lines": [{"sku": "book", "qty": 2, "amount": 25}, {"sku": "pen", "qty": 3, "amount": 6}],
            "total": 31,
            "payment": {"charged": 31, "currency": "EUR"},
            "shipment": {"reserved": 5, "parcel": "PARCEL-A-2001"},
        }
        states = {e["state"] for e in c.get(f"/api/v1/executions/{env['execution_id']}/history").json()["items"]}
        assert {"CheckOrder", "PriceLines", "PriceLine", "Fulfil", "WaitForCourier", "Charge", "Done"} <= states

        env = c.post("/api/v1/workflows/ex-asl/executions", json={"input": {**sample, "lines": []}, "mode": "sync"})
        env = env.json()
        while env["status"] == "RUNNING":
            assert time.monotonic() < deadline, env
            time.sleep(0.05)
            env = c.get(f"/api/v1/executions/{env['execution_id']}").json()
        assert env["status"] == "FAILED" and env["error"]["error"] == "Order.Empty", env
