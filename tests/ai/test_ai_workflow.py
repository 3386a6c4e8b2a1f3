"""AI steps in StepFlow workflows: the `ai` action kind and `trn:ai:{tenant}:intent/NAME`; the
execution envelope's usage sums every AI step; an execution AI budget is Ai.BudgetExceeded
(catchable). Providers are the stand-ins of standin.py."""

from __future__ import annotations

import uuid


def run(c, definition: dict, payload: dict | None = None) -> dict:
    name = f"aiflow-{uuid.uuid4().hex[:8]}"
    r = c.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    r = c.post(f"/api/v1/workflows/{name}/executions", json={"input": payload or {}, "mode": "sync"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_ai_steps_sum_usage_in_the_envelope(ai):
    definition = {
        "entry": "A",
        "states": {
            "A": {
                "type": "task",
                "action": "ai",
                "parameters": {"intent": "api-ok", "params": {"text": "{% input.text %}"}},
                "next": "B",
            },
            "B": {
                "type": "task",
                "action": "trn:ai:default:intent/local-ok",
                "parameters": {"text": "{% input.result.text %}"},
                "end": True,
            },
        },
    }
    with ai.server.client() as c:
        env = run(c, definition, {"text": "workflow"})
        assert env["status"] == "SUCCEEDED", (env["error"], env["output"])
        assert env["output"]["result"]["text"] == "Hello from stand-in"
        assert env["output"]["engine"]["provider"] == "ollama"
        # two steps: (12 in + 3 out) tokens each; only the api step costs
        assert env["usage"]["tokens"] == 30
        assert abs(env["usage"]["cost_usd"] - (12 * 0.001 + 3 * 0.002) / 1000) < 1e-9
        again = c.get(f"/api/v1/executions/{env['execution_id']}").json()
        assert again["usage"] == env["usage"]


def test_execution_budget_is_a_catchable_error(ai):
    definition = {
        "entry": "A",
        "states": {
            "A": {
                "type": "task",
                "action": "ai",
                "parameters": {"intent": "api-ok", "params": {"text": "x"}, "execution_budget_usd": 0.00002},
                "next": "B",
            },
            "B": {
                "type": "task",
                "action": "ai",
                "parameters": {"intent": "api-ok", "params": {"text": "y"}, "execution_budget_usd": 0.00002},
                "catch": [{"errors": ["Ai.BudgetExceeded"], "next": "Over"}],
                "end": True,
            },
            "Over": {"type": "succeed"},
        },
    }
    with ai.server.client() as c:
        env = run(c, definition)
        assert env["status"] == "SUCCEEDED", (env["error"], env["output"])
        assert env["output"]["error"] == "Ai.BudgetExceeded", env["output"]
        assert env["usage"]["cost_usd"] <= 0.00002 + 1e-12


def test_asl_bedrock_invoke_model_maps_to_an_intent(ai):
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::bedrock:invokeModel",
                "Parameters": {
                    "ModelId": "arn:aws:bedrock:eu-west-1::foundation-model/api-ok",
                    "Body": {"text.$": "$.question"},
                },
                "ResultSelector": {"answer.$": "$.Body.result.text", "cost.$": "$.Body.usage.cost_usd"},
                "Catch": [{"ErrorEquals": ["Ai.ProviderFailed"], "Next": "Failed"}],
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "NoAnswer"},
        },
    }
    with ai.server.client() as c:
        env = run(c, definition, {"question": "asl"})
        assert env["status"] == "SUCCEEDED", (env["error"], env["output"])
        assert env["output"]["answer"] == "Hello from stand-in" and env["output"]["cost"] > 0
        assert env["usage"]["tokens"] == 15
        assert ai.api.requests[-1]["body"]["messages"][-1]["content"] == "Say: asl"


def test_workflow_level_budget_stops_the_execution(ai):
    step = {"type": "task", "action": "ai", "parameters": {"intent": "api-ok", "params": {"text": "w"}}}
    definition = {
        "entry": "A",
        "budget_usd": 0.00002,
        "states": {
            "A": {**step, "next": "B"},
            "B": {**step, "next": "C"},
            "C": {**step, "end": True},
        },
    }
    with ai.server.client() as c:
        env = run(c, definition)
        assert env["status"] == "FAILED", env
        assert env["error"]["error"] == "Ai.BudgetExceeded", env["error"]
        assert 0 < env["usage"]["cost_usd"] <= 0.00002 + 1e-12
        r = c.post("/api/v1/workflows/validate", json={"definition": {**definition, "budget_usd": -1}})
        assert "budget_usd" in r.text
