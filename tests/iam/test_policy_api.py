"""Policies end to end against a real server: CRUD and attach/detach over REST and `aio policy`,
enforcement on API calls (explicit deny naming action, resource and statement; the role still
answering alone for keys without policies), denials in the audit trail, cache invalidation on
change, the source-IP condition, cross-tenant admins, simulate / `aio policy test`, the OpenAPI
document's `x-aionix-action`, and a bus call made on behalf of the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from serverproc import ServerProcess

PASS_WF = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def wait_ready(srv: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    with srv.client() as c:
        while time.monotonic() < deadline:
            if c.get("/api/v1/workflows").status_code == 200 and c.get("/api/v1/params").status_code == 200:
                return
            time.sleep(0.2)
    raise AssertionError("the services did not come up")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("policies")).start()
    wait_ready(proc)
    yield proc
    proc.stop()


def new_key(c: httpx.Client, name: str, role: str, **extra) -> dict:
    r = c.post("/api/v1/keys", json={"name": name, "role": role, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def aio(srv: ServerProcess, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIONIX_URL": srv.url, "AIONIX_API_KEY": key or srv.admin_key or ""}
    return subprocess.run(
        [sys.executable, "-m", "aionix.cli.main", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_billing_team_policy_end_to_end(srv):
    with srv.client() as admin:
        for name in ("billing-run", "hr-payroll"):
            r = admin.post("/api/v1/workflows", json={"name": name, "definition": PASS_WF})
            assert r.status_code == 201, r.text
        team = new_key(admin, "billing-team", "operator")
        doc = {
            "statements": [
                {
                    "sid": "start-billing",
                    "effect": "allow",
                    "actions": ["stepflow:StartExecution"],
                    "resources": ["trn:stepflow:default:template/billing-*"],
                },
                {
                    "sid": "only-billing",
                    "effect": "deny",
                    "actions": ["stepflow:*"],
                    "not_resources": [
                        "trn:stepflow:default:template/billing-*",
                        "trn:stepflow:default:execution/*",
                        "trn:stepflow:default:service",
                    ],
                },
                {"sid": "no-deletes", "effect": "deny", "actions": ["*:Delete*"]},
            ]
        }
        r = admin.put("/api/v1/policies/billing-team", json={"description": "billing", "document": doc})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1 and r.json()["builtin"] is False
        r = admin.post(
            "/api/v1/policies/billing-team/attach", json={"principal_kind": "key", "principal_id": team["id"]}
        )
        assert r.status_code == 200 and r.json()["items"][0]["principal_id"] == team["id"]

    with srv.client(team["key"]) as c:
        ok = c.post("/api/v1/workflows/billing-run/executions", json={"input": {}, "mode": "sync"})
        assert ok.status_code in (200, 201), ok.text
        denied = c.post("/api/v1/workflows/hr-payroll/executions", json={"input": {}})
        assert denied.status_code == 403
        err = denied.json()["error"]
        assert (
            "stepflow:StartExecution" in err["message"] and "trn:stepflow:default:template/hr-payroll" in err["message"]
        )
        assert err["details"]["statement"] == {
            "policy": "billing-team",
            "sid": "only-billing",
            "index": 1,
            "effect": "deny",
        }
        assert c.get("/api/v1/workflows/hr-payroll").status_code == 403  # reads nothing else
        assert c.get("/api/v1/workflows/billing-run").status_code == 200
        r = c.delete("/api/v1/workflows/billing-run")
        assert r.status_code == 403 and r.json()["error"]["details"]["statement"]["sid"] == "no-deletes"

    with srv.client() as admin:
        # the denials are audited with the statement that denied (the GET too, not otherwise audited)
        rows = admin.get("/api/v1/audit", params={"limit": 50}).json()["items"]
        reads = [r for r in rows if r["action"] == "GET /api/v1/workflows/{name}" and r["status"] == 403]
        assert reads and reads[0]["details"]["statement"]["sid"] == "only-billing"
        assert reads[0]["resource"] == "trn:stepflow:default:template/hr-payroll"
        starts = [r for r in rows if r["action"] == "POST /api/v1/workflows/{name}/executions" and r["status"] == 403]
        assert starts and starts[0]["details"]["action"] == "stepflow:StartExecution"

        # a change takes effect at once (the compiled set is invalidated)
        r = admin.post(
            "/api/v1/policies/billing-team/detach", json={"principal_kind": "key", "principal_id": team["id"]}
        )
        assert r.status_code == 200 and r.json()["items"] == []
    with srv.client(team["key"]) as c:
        assert c.get("/api/v1/workflows/hr-payroll").status_code == 200


def test_keys_without_policies_answer_as_before(srv):
    with srv.client() as admin:
        viewer = new_key(admin, "plain-viewer", "viewer")
    with srv.client(viewer["key"]) as c:
        r = c.post("/api/v1/workflows", json={"name": "nope", "definition": PASS_WF})
        assert r.status_code == 403
        assert r.json()["error"]["message"] == "this action needs the operator role; the key has viewer"
        assert c.get("/api/v1/workflows").status_code == 200
        assert c.get("/api/v1/keys").status_code == 403
    with srv.client() as admin:
        rows = admin.get("/api/v1/audit", params={"action": "GET /api/v1/keys", "limit": 5}).json()["items"]
        assert all(r["key_id"] != viewer["id"] for r in rows)  # a role-only refusal of a read adds no row


def test_source_ip_condition_and_groups_of_builtins(srv):
    with srv.client() as admin:
        op = new_key(admin, "loopback-blocked", "operator")
        doc = {
            "statements": [
                {
                    "sid": "office-only",
                    "effect": "deny",
                    "actions": ["*"],
                    "conditions": {"source_ip": ["127.0.0.0/8", "::1/128"]},
                }
            ]
        }
        assert admin.put("/api/v1/policies/office-only", json={"document": doc}).status_code == 200
        admin.post("/api/v1/policies/office-only/attach", json={"principal_kind": "key", "principal_id": op["id"]})
        # a built-in policy can be attached too: the viewer key gains the admin role's actions
        viewer = new_key(admin, "promoted", "viewer")
        r = admin.post(
            "/api/v1/policies/aionix-admin/attach", json={"principal_kind": "key", "principal_id": viewer["id"]}
        )
        assert r.status_code == 200
        assert admin.delete("/api/v1/policies/aionix-admin").status_code == 409
        assert admin.put("/api/v1/policies/aionix-mine", json={"document": doc}).status_code == 422
    with srv.client(op["key"]) as c:
        r = c.get("/api/v1/whoami")
        assert r.status_code == 403 and r.json()["error"]["details"]["statement"]["sid"] == "office-only"
    with srv.client(viewer["key"]) as c:
        assert c.get("/api/v1/keys").status_code == 200


def test_cross_tenant_admin_kept_out_of_one_tenant(srv):
    with srv.client() as admin:
        ops = new_key(admin, "ops-admin", "admin", cross_tenant=True)
        doc = {
            "statements": [{"sid": "not-prod", "effect": "deny", "actions": ["*"], "conditions": {"tenant": ["prod"]}}]
        }
        admin.put("/api/v1/policies/not-prod", json={"document": doc})
        admin.post("/api/v1/policies/not-prod/attach", json={"principal_kind": "key", "principal_id": ops["id"]})
    with srv.client(ops["key"]) as c:
        assert c.get("/api/v1/workflows", headers={"X-Aionix-Tenant": "staging"}).status_code == 200
        r = c.get("/api/v1/workflows", headers={"X-Aionix-Tenant": "prod"})
        assert r.status_code == 403 and r.json()["error"]["details"]["resource"] == "trn:stepflow:prod:service"


def test_simulate_and_aio_policy(srv, tmp_path):
    with srv.client() as admin:
        op = new_key(admin, "sim-op", "operator")
        doc = {
            "statements": [
                {"sid": "no-reveal", "effect": "deny", "actions": ["credvault:Reveal*", "credvault:Resolve"]}
            ]
        }
        file = tmp_path / "p.json"
        file.write_text(json.dumps(doc))
        done = aio(srv, "policy", "put", "no-reveal", str(file), "--description", "guard")
        assert done.returncode == 0, done.stderr
        done = aio(srv, "policy", "attach", "no-reveal", "--key", op["id"])
        assert done.returncode == 0, done.stderr
        assert "no-reveal" in aio(srv, "policy", "list").stdout

        r = admin.post(
            "/api/v1/policies/simulate",
            json={
                "key_id": op["id"],
                "action": "stepflow:StartExecution",
                "resource": "trn:stepflow:default:template/x",
            },
        )
        assert r.json() | {"policies": None} == {
            "decision": "allow",
            "reason": "allow",
            "action": "stepflow:StartExecution",
            "resource": "trn:stepflow:default:template/x",
            "policies": None,
            "statement": {"policy": "aionix-operator", "sid": "role-operator", "index": 0, "effect": "allow"},
        }
        assert r.json()["policies"] == ["aionix-operator", "no-reveal"]
        r = admin.post("/api/v1/policies/simulate", json={"key_id": "key_nope", "action": "a:B", "resource": "trn:x"})
        assert r.status_code == 422 and "key_id" in r.text

    test = aio(
        srv,
        "policy",
        "test",
        "credvault:Resolve",
        "trn:credvault:default:credential/db",
        "--key",
        op["id"],
        "--via",
        "bus",
    )
    assert test.returncode == 1 and test.stdout.startswith("DENY") and "no-reveal" in test.stdout
    test = aio(srv, "policy", "test", "aionix:ListKeys", "trn:aionix:default:service", "--key", op["id"])
    assert test.returncode == 1 and "implicit_deny" in test.stdout
    test = aio(srv, "policy", "test", "aionix:ListKeys", "trn:aionix:default:service", "--role", "admin")
    assert test.returncode == 0 and test.stdout.startswith("ALLOW")
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps({"statements": [{"effect": "allow", "actions": ["aionix:ListKeys"]}]}))
    test = aio(
        srv, "policy", "test", "aionix:ListKeys", "trn:aionix:default:service", "--key", op["id"], "--with", str(draft)
    )
    assert test.returncode == 0, test.stdout
    actions = json.loads(aio(srv, "-o", "json", "policy", "actions").stdout)["items"]
    assert {
        "action": "stepflow:StartExecution",
        "method": "POST",
        "path": "/api/v1/workflows/{name}/executions",
        "role": "operator",
        "resource": "trn:stepflow:{tenant}:template/{name}",
    } in actions
    spec = httpx.get(srv.url + "/api/openapi.json").json()
    assert spec["paths"]["/api/v1/workflows/{name}/executions"]["post"]["x-aionix-action"] == "stepflow:StartExecution"
    assert spec["paths"]["/api/v1/policies/simulate"]["post"]["x-aionix-action"] == "iam:SimulatePolicy"


def test_bus_call_on_behalf_of_the_caller(srv):
    """A parameter whose value refers to a secret is resolved over the bus with the caller as the
    principal: an attached deny of `credvault:Resolve` stops it (and it is audited)."""
    with srv.client() as admin:
        r = admin.post("/api/v1/secrets", json={"name": "db-pass", "type": "password", "value": "s3cr3t-value"})
        assert r.status_code == 201, r.text
        r = admin.put("/api/v1/params/app-db-pass", json={"type": "secret_ref", "value": "db-pass"})
        assert r.status_code in (200, 201), r.text
        boss = new_key(admin, "no-resolve-admin", "admin")
        doc = {
            "statements": [
                {
                    "sid": "no-bus-secrets",
                    "effect": "deny",
                    "actions": ["credvault:Resolve"],
                    "conditions": {"via": ["bus"]},
                }
            ]
        }
        admin.put("/api/v1/policies/no-bus-secrets", json={"document": doc})
        assert admin.get("/api/v1/params/app-db-pass", params={"evaluate": "true"}).status_code == 200
        admin.post("/api/v1/policies/no-bus-secrets/attach", json={"principal_kind": "key", "principal_id": boss["id"]})
    with srv.client(boss["key"]) as c:
        r = c.get("/api/v1/params/app-db-pass", params={"evaluate": "true"})
        assert r.status_code == 403, r.text
        assert "credvault:Resolve" in r.text and "s3cr3t-value" not in r.text
        assert c.get("/api/v1/params/app-db-pass").status_code == 200  # unevaluated: no bus call
    with srv.client() as admin:
        rows = admin.get("/api/v1/audit", params={"action": "policy.denied", "limit": 5}).json()["items"]
        assert rows and rows[0]["key_id"] == boss["id"] and rows[0]["details"]["statement"]["sid"] == "no-bus-secrets"


@asynccontextmanager
async def mcp_client(url: str, key: str):
    """The MCP SDK's own client over Streamable HTTP (as tests/mcp/conftest.py)."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http), cache=None) as client:
        yield client


async def test_mcp_tool_calls_are_checked(srv):
    """`mcp:CallTool` on the tool is checked by the MCP server, and the REST call behind the tool
    by the API: a deny of either ends the call with a 403 naming the action."""
    with srv.client() as admin:
        for name in ("mcp-a", "mcp-b", "mcp-c"):
            assert admin.post("/api/v1/workflows", json={"name": name, "definition": PASS_WF}).status_code == 201
        op = new_key(admin, "mcp-op", "operator")
        doc = {
            "statements": [
                {
                    "sid": "no-tool-b",
                    "effect": "deny",
                    "actions": ["mcp:CallTool"],
                    "resources": ["trn:agents:default:tool/workflow.mcp-b"],
                },
                {
                    "sid": "no-start-c",
                    "effect": "deny",
                    "actions": ["stepflow:StartExecution"],
                    "resources": ["trn:stepflow:default:template/mcp-c"],
                },
            ]
        }
        assert admin.put("/api/v1/policies/mcp-guard", json={"document": doc}).status_code == 200
        admin.post("/api/v1/policies/mcp-guard/attach", json={"principal_kind": "key", "principal_id": op["id"]})
    async with mcp_client(srv.url, op["key"]) as client:
        ok = await client.call_tool("workflow.mcp-a", {"input": {}, "mode": "sync"})
        assert not ok.is_error, ok.content
        tool_denied = await client.call_tool("workflow.mcp-b", {"input": {}, "mode": "sync"})
        assert tool_denied.is_error
        err = json.loads(tool_denied.content[0].text)["error"]
        assert err["code"] == "forbidden" and err["details"]["statement"]["sid"] == "no-tool-b"
        assert "mcp:CallTool" in err["message"]
        rest_denied = await client.call_tool("workflow.mcp-c", {"input": {}, "mode": "sync"})
        assert rest_denied.is_error
        err = json.loads(rest_denied.content[0].text)["error"]
        assert err["details"]["statement"]["sid"] == "no-start-c" and "stepflow:StartExecution" in err["message"]


def test_a_workflows_bus_calls_carry_the_starter(srv):
    """An execution started over the API makes its task calls on behalf of the caller: the
    caller's deny of the action kind fails the task (audited), another caller's run succeeds."""
    wf = {
        "entry": "Calc",
        "states": {
            "Calc": {
                "type": "task",
                "action": "transform",
                "parameters": {"expression": "a + 1", "data": {"a": 41}},
                "end": True,
            }
        },
    }
    with srv.client() as admin:
        r = admin.post("/api/v1/workflows", json={"name": "bus-calc", "definition": wf})
        assert r.status_code == 201, r.text
        limited = new_key(admin, "no-transform", "operator")
        doc = {
            "statements": [
                {
                    "sid": "no-transform",
                    "effect": "deny",
                    "actions": ["openact:Call"],
                    "resources": ["trn:openact:default:kind/transform"],
                    "conditions": {"via": ["bus"]},
                }
            ]
        }
        admin.put("/api/v1/policies/no-transform", json={"document": doc})
        admin.post(
            "/api/v1/policies/no-transform/attach", json={"principal_kind": "key", "principal_id": limited["id"]}
        )
        ok = admin.post("/api/v1/workflows/bus-calc/executions", json={"input": {}, "mode": "sync"}).json()
        assert ok["status"] == "SUCCEEDED" and ok["output"] == 42, ok
    with srv.client(limited["key"]) as c:
        r = c.post("/api/v1/workflows/bus-calc/executions", json={"input": {}, "mode": "sync"})
        assert r.status_code == 200, r.text  # starting is allowed; the task's bus call is not
        env = r.json()
        assert env["status"] == "FAILED", env
        assert "openact:Call" in json.dumps(env["error"]) and "no-transform" in json.dumps(env["error"])
    with srv.client() as admin:
        rows = admin.get("/api/v1/audit", params={"action": "policy.denied", "limit": 5}).json()["items"]
        assert any(r["key_id"] == limited["id"] and r["resource"] == "trn:openact:default:kind/transform" for r in rows)


def test_intent_condition_reads_the_task_body(srv):
    """A statement on `intent` is decided once the body is validated (the AI task's intent)."""
    with srv.client() as admin:
        op = new_key(admin, "no-secret-intents", "operator")
        doc = {
            "statements": [
                {
                    "sid": "no-secret-intents",
                    "effect": "deny",
                    "actions": ["ai:SubmitTask"],
                    "conditions": {"intent": ["secret-*"]},
                }
            ]
        }
        admin.put("/api/v1/policies/no-secret-intents", json={"document": doc})
        admin.post(
            "/api/v1/policies/no-secret-intents/attach", json={"principal_kind": "key", "principal_id": op["id"]}
        )
    with srv.client(op["key"]) as c:
        r = c.post("/api/v1/tasks", json={"intent": "secret-dump", "params": {}})
        assert r.status_code == 403 and r.json()["error"]["details"]["statement"]["sid"] == "no-secret-intents"
        r = c.post("/v1/tasks", json={"intent": "secret-dump", "params": {}})  # the short route: the same action
        assert r.status_code == 403
        r = c.post("/api/v1/tasks", json={"intent": "summarize", "params": {}})
        assert r.status_code != 403, r.text  # past the policy (the intent may not exist here)
        assert c.post("/api/v1/tasks", json={"intent": "bad name!"}).status_code == 422  # validation first


def test_policies_on_users_and_groups(srv):
    """A signed-in user's access token: policies attached to the user and to its groups apply."""
    password = "correct horse battery"
    with srv.client() as admin:
        assert admin.post("/api/v1/groups", json={"name": "auditors"}).status_code == 201
        r = admin.post(
            "/api/v1/users", json={"name": "ada", "role": "viewer", "password": password, "groups": ["auditors"]}
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        doc = {"statements": [{"sid": "read-audit", "effect": "allow", "actions": ["aionix:ListAudit"]}]}
        admin.put("/api/v1/policies/read-audit", json={"document": doc})
        admin.post("/api/v1/policies/read-audit/attach", json={"principal_kind": "group", "principal_id": "auditors"})
        doc = {"statements": [{"sid": "no-workflows", "effect": "deny", "actions": ["stepflow:ListWorkflows"]}]}
        admin.put("/api/v1/policies/no-workflows", json={"document": doc})
        admin.post("/api/v1/policies/no-workflows/attach", json={"principal_kind": "user", "principal_id": user_id})
    r = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "ada", "password": password, "tenant": "default"})
    assert r.status_code == 200, r.text
    with srv.client(r.json()["access_token"]) as c:
        assert c.get("/api/v1/audit").status_code == 200  # the group's allow, beyond the viewer role
        assert c.get("/api/v1/keys").status_code == 403
        denied = c.get("/api/v1/workflows")
        assert denied.status_code == 403 and denied.json()["error"]["details"]["statement"]["sid"] == "no-workflows"
