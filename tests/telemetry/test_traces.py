"""OpenTelemetry traces end to end: a real server exports OTLP/HTTP protobuf to a receiver on
loopback that decodes `ExportTraceServiceRequest` with opentelemetry-proto; one execution with a
parallel (a function call and an HTTP call) and a map gives the expected parent/child tree, the
request's `traceparent` is honoured and one is sent on the outgoing HTTP call; drops are counted
when the receiver is down or slow."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from serverproc import ServerProcess

from telemetry.receiver import Receiver, Target

FUNCTION = "def handler(event, context):\n    return {'double': event['n'] * 2}\n"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


def _server(root, endpoint: str, **env: str) -> ServerProcess:
    return ServerProcess(
        root,
        env={
            "AIONIX_TELEMETRY_OTLP_ENDPOINT": endpoint,
            "AIONIX_TELEMETRY_EXPORT_INTERVAL_SECONDS": "0.1",
            "AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1",  # the HTTP target is on loopback
            "AIONIX_FUNCTIONS_POOL_SIZE": "1",
            **env,
        },
    ).start()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[ServerProcess]:
    proc = _server(tmp_path_factory.mktemp("traced"), receiver.endpoint)
    yield proc
    proc.stop()


def _metric(client: httpx.Client, name: str, labels: str = "") -> float:
    text = client.get("/metrics").text
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def _workflow(tenant: str, fn: str, url: str) -> dict:
    return {
        "entry": "Fanout",
        "states": {
            "Fanout": {
                "type": "parallel",
                "branches": [
                    {
                        "entry": "Fn",
                        "states": {
                            "Fn": {
                                "type": "task",
                                "action": f"trn:aionixfn:{tenant}:function/{fn}",
                                "parameters": {"n": 21},
                                "end": True,
                            }
                        },
                    },
                    {
                        "entry": "Call",
                        "states": {
                            "Call": {
                                "type": "task",
                                "action": "http",
                                "parameters": {"url": f"{url}/hello", "method": "GET"},
                                "output": {"expression": "{% result.body %}"},
                                "end": True,
                            }
                        },
                    },
                ],
                "next": "Each",
            },
            "Each": {
                "type": "map",
                "items": "{% [1, 2] %}",
                "processor": {
                    "entry": "Square",
                    "states": {"Square": {"type": "set", "value": "{% input * input %}", "end": True}},
                },
                "end": True,
            },
        },
    }


def test_one_execution_is_one_trace_with_the_expected_tree(traced, receiver, target):
    with traced.client(timeout=120.0) as api:
        tenant = api.get("/api/v1/whoami").json()["tenant"]
        fn = f"tel-{uuid.uuid4().hex[:8]}"
        r = api.post("/api/v1/functions", json={"name": fn, "runtime": "python", "code": {"source": FUNCTION}})
        assert r.status_code == 201, r.text
        wf = f"traced-{uuid.uuid4().hex[:8]}"
        r = api.post("/api/v1/workflows", json={"name": wf, "definition": _workflow(tenant, fn, target.url)})
        assert r.status_code == 201, r.text

        trace_id, remote_parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        r = api.post(
            f"/api/v1/workflows/{wf}/executions",
            json={"input": {}, "mode": "sync", "wait_seconds": 60},
            headers={"traceparent": f"00-{trace_id}-{remote_parent}-01"},
        )
        env = r.json()
        assert env["status"] == "SUCCEEDED", env
        assert env["output"] == [1, 4]
        # the incoming traceparent's trace id is the execution's (one id: envelope, records, spans)
        assert env["trace_id"] == trace_id
        records = api.get(f"/api/v1/functions/{fn}/invocations").json()["items"]
        assert [rec["trace_id"] for rec in records] == [trace_id]

        spans = receiver.wait_for(
            trace_id,
            lambda s: (
                {"POST /api/v1/workflows/{name}/executions", "function handler", "HTTP GET"} <= {x["name"] for x in s}
                and any(x["name"].startswith("execution") for x in s)
            ),
        )
        by_id = {s["span_id"]: s for s in spans}
        named = {}
        for s in spans:
            named.setdefault(s["name"], []).append(s)

        def parent(s):
            return by_id.get(s["parent_id"])

        def only(name):
            assert len(named.get(name, [])) == 1, (name, sorted(named))
            return named[name][0]

        # API request: a server span whose parent is the caller's span (from the traceparent)
        request = only("POST /api/v1/workflows/{name}/executions")
        assert request["kind"] == 2 and request["parent_id"] == remote_parent
        assert request["attrs"]["http.response.status_code"] == 200
        execution = only(f"execution {wf}")
        assert parent(execution) is request
        assert execution["attrs"]["aionix.execution_id"] == env["execution_id"]
        fanout, each = only("state Fanout"), only("state Each")
        assert parent(fanout) is execution and parent(each) is execution
        assert fanout["attrs"]["aionix.state_type"] == "parallel" and each["attrs"]["aionix.state_type"] == "map"
        assert fanout["end"] <= each["start"]

        iterations = named["iteration"]
        assert len(iterations) == 4
        assert sorted(parent(i)["name"] for i in iterations) == [
            "state Each",
            "state Each",
            "state Fanout",
            "state Fanout",
        ]
        squares = named["state Square"]
        assert len(squares) == 2 and all(parent(parent(s)) is each for s in squares)

        # the function call: state → bus → function → its worker-side handler (from the worker's timings)
        fn_state = only("state Fn")
        assert parent(parent(fn_state)) is fanout
        fn_bus = only("bus aionixfn:function")
        assert parent(fn_bus) is fn_state
        function = only(f"function {fn}")
        assert parent(function) is fn_bus
        assert function["attrs"]["aionix.invocation_id"] == records[0]["invocation_id"]
        handler = only("function handler")
        assert parent(handler) is function
        assert function["start"] <= handler["start"] <= handler["end"] <= function["end"]
        if "function init" in named:  # a cold start
            assert parent(only("function init")) is function

        # the HTTP call: state → bus → client span, whose traceparent the target received
        call_state = only("state Call")
        assert parent(parent(call_state)) is fanout
        http_bus = only("bus kind:http")
        assert parent(http_bus) is call_state
        http = only("HTTP GET")
        assert parent(http) is http_bus and http["kind"] == 3
        assert http["attrs"]["url.full"] == f"{target.url}/hello"
        assert http["attrs"]["http.response.status_code"] == 200
        sent = [c["headers"].get("traceparent") for c in target.calls if c["path"] == "/hello"]
        assert sent == [f"00-{trace_id}-{http['span_id']}-01"]

        assert all(s["resource"]["service.name"] == "aionix" for s in spans)
        assert all(s["end"] >= s["start"] > 0 for s in spans)
        assert _metric(api, "aionix_telemetry_spans_exported_total") >= len(spans)


def test_a_request_without_traceparent_starts_a_trace_and_x_trace_id_is_kept(traced, receiver):
    with traced.client() as api:
        r = api.get("/api/v1/whoami")
        assert r.status_code == 200
        given = "my-own-trace"
        assert api.get("/api/v1/whoami", headers={"x-trace-id": given}).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with receiver.lock:
                mine = [s for s in receiver.spans if s["attrs"].get("aionix.trace_id") == given]
            if mine:
                break
            time.sleep(0.05)
        assert mine and mine[0]["name"] == "GET /api/v1/whoami" and mine[0]["parent_id"] is None
        assert re.fullmatch(r"[0-9a-f]{32}", mine[0]["trace_id"])
        # a malformed traceparent is ignored (a new trace), never an error
        assert api.get("/api/v1/whoami", headers={"traceparent": "00-zz-yy-01"}).status_code == 200


def _chain(n: int) -> dict:
    states = {f"S{i}": {"type": "set", "value": {"i": i}, "next": f"S{i + 1}"} for i in range(n - 1)}
    states[f"S{n - 1}"] = {"type": "set", "value": {"i": n - 1}, "end": True}
    return {"entry": "S0", "states": states}


def _run_chain(api: httpx.Client, n: int = 30) -> float:
    wf = f"chain-{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/workflows", json={"name": wf, "definition": _chain(n)}).status_code == 201
    t0 = time.monotonic()
    env = api.post(f"/api/v1/workflows/{wf}/executions", json={"input": {}, "mode": "sync", "wait_seconds": 60}).json()
    assert env["status"] == "SUCCEEDED", env
    return time.monotonic() - t0


def test_receiver_down_drops_and_counts_without_slowing_the_engine(tmp_path):
    # a port nothing listens on: every export fails, and the tiny queue overflows
    dead = Receiver()
    endpoint = dead.endpoint
    dead.close()
    proc = _server(
        tmp_path / "down",
        endpoint,
        AIONIX_TELEMETRY_QUEUE_SIZE="4",
        AIONIX_TELEMETRY_BATCH_SIZE="2",
        AIONIX_TELEMETRY_EXPORT_TIMEOUT_SECONDS="1",
    )
    try:
        with proc.client(timeout=60.0) as api:
            elapsed = _run_chain(api)
            assert elapsed < 30  # the engine never waits for the exporter
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                full = _metric(api, "aionix_telemetry_spans_dropped_total", '{reason="queue_full"}')
                failed = _metric(api, "aionix_telemetry_spans_dropped_total", '{reason="export_failed"}')
                if full > 0 and failed > 0:
                    break
                time.sleep(0.1)
            assert full > 0 and failed > 0, (full, failed)
            assert _metric(api, "aionix_telemetry_spans_exported_total") == 0
    finally:
        proc.stop()


def test_slow_receiver_fills_the_bounded_queue_and_drops_are_counted(tmp_path):
    slow = Receiver(delay=3.0)
    proc = _server(
        tmp_path / "slow",
        slow.endpoint,
        AIONIX_TELEMETRY_QUEUE_SIZE="8",
        AIONIX_TELEMETRY_BATCH_SIZE="4",
    )
    try:
        with proc.client(timeout=60.0) as api:
            _run_chain(api)
            assert _metric(api, "aionix_telemetry_spans_dropped_total", '{reason="queue_full"}') > 0
            deadline = time.monotonic() + 30
            while not slow.spans and time.monotonic() < deadline:
                time.sleep(0.1)
            assert slow.spans  # what fitted in the queue still arrives
    finally:
        proc.stop()
        slow.close()


def test_off_by_default_nothing_is_exported(tmp_path, receiver):
    proc = ServerProcess(tmp_path / "off").start()
    try:
        with proc.client() as api:
            assert api.get("/api/v1/whoami").status_code == 200
            # the incoming traceparent still gives the execution its trace id (nothing is exported)
            trace_id = uuid.uuid4().hex
            wf = f"off-{uuid.uuid4().hex[:8]}"
            assert api.post("/api/v1/workflows", json={"name": wf, "definition": _chain(2)}).status_code == 201
            env = api.post(
                f"/api/v1/workflows/{wf}/executions",
                json={"input": {}, "mode": "sync", "wait_seconds": 30},
                headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
            ).json()
            assert env["status"] == "SUCCEEDED" and env["trace_id"] == trace_id
            text = api.get("/metrics").text
            assert "aionix_telemetry_spans_exported_total 0.0" in text
            assert "aionix_telemetry_queue_spans 0.0" in text
    finally:
        proc.stop()


def test_a_webhook_traceparent_carries_through_the_trigger_delivery_to_the_execution(traced, receiver):
    with traced.client(timeout=60.0) as api:
        wf = f"hooked-{uuid.uuid4().hex[:8]}"
        definition = {"entry": "Echo", "states": {"Echo": {"type": "set", "value": "{% input %}", "end": True}}}
        assert api.post("/api/v1/workflows", json={"name": wf, "definition": definition}).status_code == 201
        name = f"hook-{uuid.uuid4().hex[:8]}"
        r = api.post(
            "/api/v1/triggers",
            json={
                "name": name,
                "target": f"trn:stepflow:default:template/{wf}",
                "input": "body",
                "webhook": {"auth": "token"},
            },
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        trace_id, sender = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        r = httpx.post(
            f"{traced.url}/hooks/default/{name}",
            json={"a": 1},
            headers={"authorization": f"Bearer {token}", "traceparent": f"00-{trace_id}-{sender}-01"},
        )
        assert r.status_code == 202, r.text
        execution_id = r.json()["result_id"]
        deadline = time.monotonic() + 30
        while (env := api.get(f"/api/v1/executions/{execution_id}").json())["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert env["status"] == "SUCCEEDED" and env["trace_id"] == trace_id

        # The hook's request span ends after its 202 is sent, the execution's spans on the
        # delivery task: they may reach the collector in different export batches.
        wanted = {
            "POST /hooks/{tenant}/{name}",
            f"trigger {name}",
            "bus stepflow:template",
            f"execution {wf}",
            "state Echo",
        }
        spans = receiver.wait_for(trace_id, lambda s: wanted <= {x["name"] for x in s})
        by_id = {s["span_id"]: s for s in spans}
        names = {s["name"]: s for s in spans}
        hook = names["POST /hooks/{tenant}/{name}"]
        assert hook["parent_id"] == sender
        delivery = names[f"trigger {name}"]
        assert delivery["parent_id"] == hook["span_id"]
        bus = names["bus stepflow:template"]
        assert bus["parent_id"] == delivery["span_id"]
        execution = names[f"execution {wf}"]
        assert by_id[execution["parent_id"]]["trace_id"] == trace_id
        assert by_id[names["state Echo"]["parent_id"]] is execution
