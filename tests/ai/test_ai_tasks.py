"""Tasks API against stand-in providers (local HTTP servers speaking the OpenAI SSE, Azure and
Ollama NDJSON wire formats; no real model runs here)."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx


def submit(c: httpx.Client, intent: str, text: str = "hi", **extra: object) -> httpx.Response:
    return c.post("/api/v1/tasks", json={"intent": intent, "params": {"text": text}, **extra})


def sse(c: httpx.Client, task_id: str, last: str | None = None) -> list[tuple[str | None, str, dict]]:
    headers = {"Last-Event-ID": last} if last else {}
    out: list[tuple[str | None, str, dict]] = []
    with c.stream("GET", f"/api/v1/tasks/{task_id}/stream", headers=headers, timeout=30) as r:
        assert r.status_code == 200
        ident = event = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((ident, event or "", json.loads(line[6:])))
                ident = event = None
    return out


def test_openai_stream_usage_and_envelope(ai):
    with ai.server.client() as c:
        r = submit(c, "api-ok", "hello")
        assert r.status_code == 200, r.text
        env = r.json()
        assert env["status"] == "OK"
        assert env["result"]["text"] == "Hello from stand-in"
        assert env["engine"]["route"] == "api" and env["engine"]["provider"] == "cloud"
        assert env["engine"]["chosen_by"] == "policy" and env["engine"]["reason"]
        assert env["usage"]["tokens_in"] == 12 and env["usage"]["tokens_out"] == 3
        assert abs(env["usage"]["cost_usd"] - (12 * 0.001 + 3 * 0.002) / 1000) < 1e-9
        assert set(env) >= {"schema_version", "task_id", "intent", "status", "engine", "result", "usage", "error"}
        req = ai.api.requests[-1]
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["Authorization"] == "Bearer sk-standin-secret-123"
        assert req["body"]["stream"] is True and req["body"]["messages"][-1]["content"] == "Say: hello"
        assert c.get(f"/api/v1/tasks/{env['task_id']}").json()["status"] == "OK"
        assert c.get(f"/v1/tasks/{env['task_id']}").json()["task_id"] == env["task_id"]


def test_ollama_ndjson_and_counted_usage(ai):
    with ai.server.client() as c:
        env = submit(c, "local-ok").json()
        assert env["status"] == "OK" and env["engine"]["route"] == "local"
        assert env["result"]["text"] == "Hello from stand-in" and env["usage"]["tokens_out"] == 3
        assert ai.local.requests[-1]["path"] == "/api/chat"
        env = submit(c, "api-nousage").json()
        assert env["status"] == "OK" and env["usage"]["tokens_out"] >= 1 and env["usage"]["tokens_in"] >= 1


def test_azure_url_shape(ai):
    with ai.server.client() as c:
        env = submit(c, "azure").json()
        assert env["status"] == "OK", env
        req = ai.api.requests[-1]
        assert req["path"] == "/openai/deployments/ok/chat/completions?api-version=2024-06-01"
        assert req["headers"]["Api-Key"] == "sk-standin-secret-123"


def test_sse_stream_tokens_done_and_resume(ai):
    with ai.server.client() as c:
        r = submit(c, "api-ok", stream=True)
        assert r.status_code in (200, 202)
        task_id = r.json()["task_id"]
        events = sse(c, task_id)
        kinds = [e[1] for e in events]
        assert kinds.count("token") == 3 and kinds[-1] == "done"
        assert "".join(e[2]["text"] for e in events if e[1] == "token") == "Hello from stand-in"
        assert events[-1][2]["status"] == "OK"
        resumed = sse(c, task_id, last=events[1][0])
        assert [e[0] for e in resumed] == [e[0] for e in events[2:]]
        assert c.get(f"/v1/stream/{task_id}").status_code == 200


def test_partials_hold_the_text_so_far_and_resume(ai):
    """Every 16th token a `partial` event carries the whole text so far (stored as a count of
    tokens, made when sent); a stream resumed with Last-Event-ID sends the same partials."""
    with ai.server.client() as c:
        task_id = submit(c, "api-flood", stream=True, max_tokens=100).json()["task_id"]
        events = sse(c, task_id)
        assert events[-1][1] == "done"
        text = ""
        partials = []
        for ident, kind, data in events:
            if kind == "token":
                text += data["text"]
            elif kind == "partial":
                assert data["text"] == text
                partials.append((ident, data["text"]))
        assert len(partials) >= 3 and events[-1][2]["result"]["text"].startswith(partials[-1][1])
        cut = next(i for i, e in enumerate(events) if e[0] == partials[1][0]) - 1
        resumed = sse(c, task_id, last=events[cut][0])
        assert resumed == events[cut + 1 :]


def test_retry_after_429_then_ok(ai):
    with ai.server.client() as c:
        before = len(ai.api.requests)
        t = time.monotonic()
        env = submit(c, "api-r429", f"retry-{time.time()}").json()
        assert env["status"] == "OK", env
        assert len(ai.api.requests) - before == 2
        assert time.monotonic() - t >= 0.2


def test_5xx_slow_and_cut_are_errors(ai):
    with ai.server.client() as c:
        env = submit(c, "api-e500").json()
        assert env["status"] == "ERROR" and "HTTP 500" in env["error"]["message"]
        env = submit(c, "api-slow").json()
        assert env["status"] == "TIMEOUT", env
        env = submit(c, "api-cut").json()
        assert env["status"] == "ERROR" and "before the answer was complete" in env["error"]["message"]
        assert "sk-standin-secret-123" not in json.dumps(env)


def test_hybrid_escalates_to_api_on_local_failure(ai):
    with ai.server.client() as c:
        for b in ("e500", "cut", "slow"):
            env = submit(c, f"hybrid-{b}").json()
            assert env["status"] == "OK", env
            assert env["engine"]["route"] == "hybrid" and env["engine"]["provider"] == "cloud"
            assert "escalated" in env["engine"]["reason"]
        env = submit(c, "hybrid-ok").json()
        assert env["engine"]["provider"] == "ollama"
        d = c.get("/api/v1/router/decisions", params={"task_id": env["task_id"]}).json()["items"]
        assert d and d[0]["provider"] == "ollama" and d[0]["reason"]


def test_local_only_never_reaches_the_api_provider(ai):
    """Every failure of the local route (5xx, slow first byte, mid-stream cut, connection
    refused) ends the task; the API stand-in sees no connection."""
    with ai.server.client() as c:
        before = ai.api.connections
        for intent in ("local-e500", "local-slow", "local-cut", "local-dead"):
            env = submit(c, intent).json()
            assert env["status"] in ("ERROR", "TIMEOUT"), env
            assert env["engine"]["route"] == "local"
        # a stricter override on an allow-api intent is local-only as well: refused before any call
        r = submit(c, "api-ok", privacy="local-only")
        assert r.status_code == 422 and r.json()["error"]["code"] == "no_route"
        assert ai.api.connections == before
        # and a looser override is refused
        r = submit(c, "local-ok", privacy="allow-api")
        assert r.status_code == 422 and "privacy" in r.text


def test_budget_estimate_over_cap_is_refused(ai):
    with ai.server.client() as c:
        before = ai.api.connections
        r = submit(c, "premium", "x" * 4000, budget_usd=50)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "budget_exceeded"
        assert ai.api.connections == before


def test_flood_cannot_push_cost_past_the_cap(ai):
    with ai.server.client() as c:
        env = submit(c, "api-flood", budget_usd=0.0001).json()
        assert env["status"] == "OK", env
        assert env["usage"]["cost_usd"] <= 0.0001 + 1e-12
        req = ai.api.requests[-1]
        assert req["body"]["max_tokens"] < 256
        assert env["usage"]["tokens_out"] <= req["body"]["max_tokens"]


def test_cancel_closes_the_provider_stream_fast(ai):
    with ai.server.client() as c:
        r = submit(c, "api-hang", stream=True)
        task_id = r.json()["task_id"]
        deadline = time.monotonic() + 5
        while (
            len([x for x in ai.api.requests if x["body"].get("model") == "hang"]) == 0 and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        time.sleep(0.1)
        closes = len(ai.api.closed_at)
        sent = time.time()
        r = c.post(f"/api/v1/tasks/{task_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "CANCELED"
        deadline = time.monotonic() + 2
        while len(ai.api.closed_at) == closes and time.monotonic() < deadline:
            time.sleep(0.002)
        assert len(ai.api.closed_at) > closes
        assert ai.api.closed_at[-1] - sent < 0.1


def test_idempotent_submits_call_the_provider_once(ai):
    with ai.server.client() as c:
        text = f"idem-{time.time()}"
        before = len([x for x in ai.api.requests if text in json.dumps(x["body"])])

        def one(_: int) -> httpx.Response:
            with ai.server.client() as cc:
                return cc.post(
                    "/api/v1/tasks",
                    json={"intent": "api-ok", "params": {"text": text}},
                    headers={"Idempotency-Key": "same-" + text},
                )

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(one, range(20)))
        ok = [a for a in answers if a.status_code in (200, 202)]
        assert ok and all(a.status_code in (200, 202, 409) for a in answers)
        assert len({a.json()["task_id"] for a in ok}) == 1
        again = c.post(
            "/api/v1/tasks",
            json={"intent": "api-ok", "params": {"text": text}},
            headers={"Idempotency-Key": "same-" + text},
        )
        assert again.json()["task_id"] == ok[0].json()["task_id"]
        assert len([x for x in ai.api.requests if text in json.dumps(x["body"])]) - before == 1


def test_bad_input_is_a_clear_4xx(ai):
    with ai.server.client() as c:
        r = c.post("/api/v1/tasks", json={"intent": "nope", "params": {}})
        assert r.status_code == 422 and "intent" in r.text
        r = c.post("/api/v1/tasks", json={"intent": "schema", "params": {"text": "x" * 60}})
        assert r.status_code == 422 and "params.text" in r.text
        r = c.post("/api/v1/tasks", json={"intent": "api-ok", "params": {}})
        assert r.status_code == 422 and "params.text" in r.text
        r = c.post("/api/v1/tasks", json={"intent": "api-ok", "budget_usd": -1})
        assert r.status_code == 422 and "budget_usd" in r.text
        assert c.get("/api/v1/tasks/doesnotexist").status_code == 404


def test_backpressure_answers_503_with_retry_after(ai):
    with ai.server.client() as c:
        ids = []
        for _ in range(2):
            r = submit(c, "saturate", stream=True)
            assert r.status_code == 202, r.text
            ids.append(r.json()["task_id"])
        r = submit(c, "saturate", stream=True)
        assert r.status_code == 503 and r.headers["Retry-After"]
        assert r.json()["error"]["code"] == "provider_saturated"
        for i in ids:
            c.post(f"/api/v1/tasks/{i}/cancel")
        r = submit(c, "saturate", stream=True)
        assert r.status_code == 202
        c.post(f"/api/v1/tasks/{r.json()['task_id']}/cancel")


def test_usage_ledger_metrics_and_budgets(ai):
    with ai.server.client() as c:
        submit(c, "api-ok")
        u = c.get("/api/v1/usage", params={"group_by": "provider"}).json()
        cloud = [i for i in u["items"] if i["provider"] == "cloud"]
        assert cloud and cloud[0]["tasks"] >= 1 and cloud[0]["cost_usd"] > 0
        assert c.get("/api/v1/usage", params={"group_by": "bogus"}).status_code == 422
        metrics = c.get("/metrics").text
        assert "aionix_ai_tokens_total" in metrics and "aionix_ai_cost_usd_total" in metrics
        assert 'aionix_ai_breaker_state{provider="cloud"}' in metrics
        r = c.put("/api/v1/usage/budget", json={"daily_usd": 0.0000001})
        assert r.status_code == 200
        r = submit(c, "api-ok")
        assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
        assert r.headers["Retry-After"] and "resets_at" in r.json()["error"]["details"]
        assert c.put("/api/v1/usage/budget", json={"daily_usd": None}).status_code == 200
        assert submit(c, "api-ok").status_code == 200


def test_traceparent_sets_the_trace_id_and_decisions_are_events(ai):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with ai.server.client() as c:
        env = c.post(
            "/api/v1/tasks",
            json={"intent": "api-ok", "params": {"text": "t"}},
            headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
        ).json()
        assert env["trace_id"] == trace
        assert "aionix_ai_router_decision_seconds" in c.get("/metrics").text


def test_running_tasks_hold_their_estimate_against_the_budget(ai):
    """Concurrent submits cannot all pass the same remaining budget: a running task's estimate
    counts until it is charged (a canceled one frees it)."""
    with ai.server.client() as c:
        today = c.get("/api/v1/usage", params={"group_by": "day"}).json()["items"]
        spent = today[-1]["cost_usd"] if today else 0.0
        per_task = 2 / 1000 * 0.001 + 256 / 1000 * 0.002  # api-hang: ~2 prompt tokens, max_tokens 256
        assert c.put("/api/v1/usage/budget", json={"daily_usd": spent + 2.5 * per_task}).status_code == 200
        try:
            first = [submit(c, "api-hang", stream=True) for _ in range(2)]
            assert [r.status_code for r in first] == [202, 202], [r.text for r in first]
            third = submit(c, "api-hang", stream=True)
            assert third.status_code == 429 and third.json()["error"]["code"] == "budget_exceeded"
            for r in first:
                assert c.post(f"/api/v1/tasks/{r.json()['task_id']}/cancel").json()["status"] == "CANCELED"
            again = submit(c, "api-hang", stream=True)
            assert again.status_code == 202, again.text
            c.post(f"/api/v1/tasks/{again.json()['task_id']}/cancel")
        finally:
            c.put("/api/v1/usage/budget", json={"daily_usd": None})


def test_router_model_answer_is_validated_and_kept_within_policy(ai):
    with ai.server.client() as c:
        env = submit(c, "routed").json()
        assert env["status"] == "OK", env
        assert env["engine"]["chosen_by"] == "router" and env["engine"]["provider"] == "cloud"
        assert env["engine"]["reason"].startswith("router model: long input")
        before = ai.api.connections
        env = submit(c, "routed-private").json()
        assert env["engine"]["provider"] == "ollama" and env["engine"]["chosen_by"] == "policy"
        assert "out of policy" in env["engine"]["reason"]
        assert ai.api.connections == before
        env = submit(c, "routed-junk").json()
        assert env["engine"]["provider"] == "ollama" and "router model ignored" in env["engine"]["reason"]
