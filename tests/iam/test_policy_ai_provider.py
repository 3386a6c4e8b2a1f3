"""The `provider` condition decided when the AI router picks a provider: the AI server of tests/ai
(stand-in providers on loopback, no real model). A statement denying `ai:SubmitTask` for a
provider makes the router skip its candidates; when nothing else fits the task is refused with
403 naming the statement. Over REST and in a workflow's AI step (a bus call on behalf of the
starter)."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

_spec = importlib.util.spec_from_file_location("ai_conftest", Path(__file__).parents[1] / "ai" / "conftest.py")
assert _spec is not None and _spec.loader is not None
ai_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ai_conftest)


@pytest.fixture(scope="module")
def ai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from ai_conftest.start_ai(tmp_path_factory, {})


def key_with(admin: httpx.Client, name: str, statements: list[dict[str, Any]]) -> str:
    k = admin.post("/api/v1/keys", json={"name": name, "role": "operator"}).json()
    assert admin.put(f"/api/v1/policies/{name}", json={"document": {"statements": statements}}).status_code == 200
    r = admin.post(f"/api/v1/policies/{name}/attach", json={"principal_kind": "key", "principal_id": k["id"]})
    assert r.status_code < 300, r.text
    return k["key"]


def submit(c: httpx.Client, intent: str) -> httpx.Response:
    return c.post("/api/v1/tasks", json={"intent": intent, "params": {"text": "hi"}})


NO_OLLAMA = {"sid": "no-local-models", "effect": "deny", "actions": ["ai:SubmitTask"], "conditions": {"provider": ["ollama"]}}  # fmt: skip
NO_CLOUD = {"sid": "no-cloud", "effect": "deny", "actions": ["ai:*"], "conditions": {"provider": ["cloud", "azure"]}}


def test_a_denied_provider_is_skipped_then_refused(ai) -> None:
    with ai.server.client() as admin:
        no_local = key_with(admin, "no-local", [NO_OLLAMA])
        neither = key_with(admin, "no-providers", [NO_OLLAMA, NO_CLOUD])
        # the role alone: the hybrid intent runs on the local model
        r = submit(admin, "hybrid-ok")
        assert r.status_code == 200 and r.json()["engine"]["provider"] == "ollama", r.text
    with ai.server.client(no_local) as c:
        r = submit(c, "hybrid-ok")  # the local candidate skipped: the API one serves it
        assert r.status_code == 200, r.text
        engine = r.json()["engine"]
        assert engine["provider"] == "cloud" and "no-local-models" in engine["reason"], engine
        r = submit(c, "local-ok")  # local-only: nothing else fits
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["code"] == "forbidden" and err["details"]["statement"]["sid"] == "no-local-models"
        assert "no-local-models" in err["message"] and "ai:SubmitTask" in err["message"]
        assert submit(c, "azure").status_code == 200  # another provider: untouched
    with ai.server.client(neither) as c:
        r = submit(c, "hybrid-ok")
        assert r.status_code == 403 and r.json()["error"]["details"]["statement"]["sid"] == "no-local-models"
        r = submit(c, "azure")
        assert r.status_code == 403 and r.json()["error"]["details"]["statement"]["sid"] == "no-cloud"
    with ai.server.client() as admin:
        rows = admin.get("/api/v1/audit", params={"action": "POST /api/v1/tasks", "limit": 20}).json()["items"]
        assert any(
            r["status"] == 403 and (r["details"] or {}).get("statement", {}).get("sid") == "no-cloud" for r in rows
        )


def test_a_workflows_ai_step_is_routed_under_the_starters_policies(ai) -> None:
    wf = {
        "entry": "Ask",
        "states": {
            "Ask": {"type": "task", "action": "trn:ai:default:intent/hybrid-ok", "parameters": {"text": "hi"}, "end": True}
        },
    }  # fmt: skip
    with ai.server.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": "ask-ai", "definition": wf}).status_code == 201
        no_local = key_with(admin, "wf-no-local", [NO_OLLAMA])
        neither = key_with(admin, "wf-no-providers", [NO_OLLAMA, NO_CLOUD])
    with ai.server.client(no_local) as c:
        env = c.post("/api/v1/workflows/ask-ai/executions", json={"input": {}, "mode": "sync"}).json()
        assert env["status"] == "SUCCEEDED", env
        assert env["output"]["engine"]["provider"] == "cloud", env["output"]
    with ai.server.client(neither) as c:
        env = c.post("/api/v1/workflows/ask-ai/executions", json={"input": {}, "mode": "sync"}).json()
        assert env["status"] == "FAILED", env
        assert "no-local-models" in json.dumps(env["error"]), env["error"]
    with ai.server.client() as admin:
        deadline = time.monotonic() + 10
        while True:
            rows = admin.get("/api/v1/audit", params={"action": "policy.denied", "limit": 20}).json()["items"]
            if any((r["details"] or {}).get("statement", {}).get("sid") == "no-local-models" for r in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
