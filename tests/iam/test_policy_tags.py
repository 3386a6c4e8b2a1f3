"""The `tags` condition on live requests against a real server: tags set on resources through
`PUT /api/v1/tags` (and `aio policy tag`), a secret's labels counting as its tags, decisions on
API calls and on a workflow's bus calls taken on the target resource's tags, a tag change
applying at once (the cached tags forgotten on write), a deleted resource's tags going with it,
simulate reading the resource's tags, and bad input answered 4xx naming the field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_policy_api import PASS_WF, aio, new_key, srv, wait_ready  # noqa: F401

FN_SOURCE = "def handler(event, context):\n    return {'ok': True}\n"
DENY_HR = {
    "statements": [
        {
            "sid": "not-hr",
            "effect": "deny",
            "actions": ["stepflow:StartExecution", "aionixfn:*", "credvault:GetSecret"],
            "conditions": {"tags": {"team": "hr*"}},
        }
    ]
}


def tag(c, trn: str, **tags: str):
    r = c.put("/api/v1/tags", json={"trn": trn, "tags": tags})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def limited(srv):  # noqa: F811
    with srv.client() as admin:
        for name in ("tag-pay", "tag-hire"):
            assert admin.post("/api/v1/workflows", json={"name": name, "definition": PASS_WF}).status_code == 201
        key = new_key(admin, "tag-limited", "operator")
        assert admin.put("/api/v1/policies/not-hr", json={"document": DENY_HR}).status_code == 200
        r = admin.post("/api/v1/policies/not-hr/attach", json={"principal_kind": "key", "principal_id": key["id"]})
        assert r.status_code < 300, r.text
    return key


def test_api_calls_decide_on_the_resources_tags(srv, limited):  # noqa: F811
    with srv.client() as admin:
        tag(admin, "trn:stepflow:default:template/tag-pay", team="billing")
        view = tag(admin, "trn:stepflow:default:template/tag-hire", team="hr-core", cost="12")
        assert view["tags"] == {"team": "hr-core", "cost": "12"} and view["updated_by"]
    with srv.client(limited["key"]) as c:
        start = {"input": {}, "mode": "sync"}
        assert c.post("/api/v1/workflows/tag-pay/executions", json=start).status_code == 200
        r = c.post("/api/v1/workflows/tag-hire/executions", json=start)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"]["statement"]["sid"] == "not-hr"
        # a viewer-level read of the tags, by anyone of the tenant
        assert (
            c.get("/api/v1/tags", params={"trn": "trn:stepflow:default:template/tag-hire"}).json()["tags"]["cost"]
            == "12"
        )
        assert (
            c.put("/api/v1/tags", json={"trn": "trn:stepflow:default:template/tag-hire", "tags": {}}).status_code == 403
        )
    with srv.client() as admin:
        tag(admin, "trn:stepflow:default:template/tag-hire", team="billing")  # applies at once
    with srv.client(limited["key"]) as c:
        assert c.post("/api/v1/workflows/tag-hire/executions", json={"input": {}}).status_code in (200, 202)
    with srv.client() as admin:
        assert admin.delete("/api/v1/tags", params={"trn": "trn:stepflow:default:template/tag-hire"}).status_code == 204
        r = admin.delete("/api/v1/tags", params={"trn": "trn:stepflow:default:template/tag-hire"})
        assert r.status_code == 404


def test_a_secrets_labels_are_its_tags(srv, limited):  # noqa: F811
    with srv.client() as admin:
        r = admin.post(
            "/api/v1/secrets", json={"name": "hr-db", "type": "password", "value": "pw-1", "labels": {"team": "hr"}}
        )
        assert r.status_code == 201, r.text
    with srv.client(limited["key"]) as c:
        r = c.get("/api/v1/secrets/hr-db")
        assert r.status_code == 403 and "not-hr" in r.text, r.text
    with srv.client() as admin:
        assert admin.put("/api/v1/secrets/hr-db", json={"labels": {"team": "ops"}}).status_code == 200
        # the tags set on the secret add to (and win over) its labels
        assert admin.get("/api/v1/tags", params={"trn": "trn:credvault:default:credential/hr-db"}).json()["tags"] == {}
    with srv.client(limited["key"]) as c:
        assert c.get("/api/v1/secrets/hr-db").status_code == 200  # the label change applied at once
    with srv.client() as admin:
        tag(admin, "trn:credvault:default:credential/hr-db", team="hr")
    with srv.client(limited["key"]) as c:
        assert c.get("/api/v1/secrets/hr-db").status_code == 403


def test_a_workflows_bus_call_decides_on_the_targets_tags(srv, limited):  # noqa: F811
    with srv.client() as admin:
        r = admin.post("/api/v1/functions", json={"name": "hr-fn", "runtime": "python", "code": {"source": FN_SOURCE}})
        assert r.status_code == 201, r.text
        wf = {
            "entry": "Call",
            "states": {"Call": {"type": "task", "action": "trn:aionixfn:default:function/hr-fn", "end": True}},
        }
        assert admin.post("/api/v1/workflows", json={"name": "tag-call", "definition": wf}).status_code == 201
        tag(admin, "trn:aionixfn:default:function/hr-fn", team="hr")
        ok = admin.post("/api/v1/workflows/tag-call/executions", json={"input": {}, "mode": "sync"}).json()
        assert ok["status"] == "SUCCEEDED", ok
    with srv.client(limited["key"]) as c:
        env = c.post("/api/v1/workflows/tag-call/executions", json={"input": {}, "mode": "sync"}).json()
        assert env["status"] == "FAILED" and "not-hr" in str(env["error"]), env
        # the function's alias or version has the function's tags
        r = c.post("/api/v1/functions/hr-fn/invoke", params={"qualifier": "$LATEST"}, content=b"{}")
        assert r.status_code == 403, r.text


def test_simulate_reads_the_tags_and_deleted_resources_lose_theirs(srv, limited):  # noqa: F811
    with srv.client() as admin:
        assert admin.post("/api/v1/workflows", json={"name": "tag-gone", "definition": PASS_WF}).status_code == 201
        trn = "trn:stepflow:default:template/tag-gone"
        tag(admin, trn, team="hr")
        body = {"action": "stepflow:StartExecution", "resource": trn, "key_id": limited["id"]}
        r = admin.post("/api/v1/policies/simulate", json=body).json()
        assert r["decision"] == "deny" and r["statement"]["sid"] == "not-hr", r
        assert admin.delete("/api/v1/workflows/tag-gone").status_code in (200, 204)
        assert admin.get("/api/v1/tags", params={"trn": trn}).status_code == 404
        assert admin.post("/api/v1/workflows", json={"name": "tag-gone", "definition": PASS_WF}).status_code == 201
        assert admin.get("/api/v1/tags", params={"trn": trn}).json()["tags"] == {}  # created again: untagged
        assert admin.post("/api/v1/policies/simulate", json=body).json()["decision"] == "allow"


def test_bad_input_names_the_field(srv):  # noqa: F811
    with srv.client() as admin:
        r = admin.put("/api/v1/tags", json={"trn": "trn:stepflow:default:template/nope", "tags": {"a": "b"}})
        assert r.status_code == 404
        r = admin.put("/api/v1/tags", json={"trn": "trn:stepflow:default:execution/x", "tags": {"a": "b"}})
        assert r.status_code == 422 and "trn" in r.text
        r = admin.put("/api/v1/tags", json={"trn": "trn:stepflow:default:template/tag-pay", "tags": {"-bad": "b"}})
        assert r.status_code == 422 and "tags" in r.text
        r = admin.put("/api/v1/tags", json={"trn": "trn:stepflow:default:template/tag-pay:3", "tags": {}})
        assert r.status_code == 422 and "qualifier" in r.text
        r = admin.get("/api/v1/tags", params={"trn": "trn:stepflow:elsewhere:template/tag-pay"})
        assert r.status_code == 404
        r = admin.get("/api/v1/tags", params={"trn": "nope"})
        assert r.status_code == 422 and "trn" in r.text


def test_aio_policy_tag(srv):  # noqa: F811
    trn = "trn:stepflow:default:template/tag-pay"
    r = aio(srv, "policy", "tag", trn, "team=billing", "tier=gold")
    assert r.returncode == 0, r.stderr
    r = aio(srv, "-o", "json", "policy", "tags", trn)
    assert r.returncode == 0 and '"gold"' in r.stdout, r.stdout + r.stderr
    r = aio(srv, "policy", "tag", trn, "no-equals")
    assert r.returncode != 0 and "KEY=VALUE" in r.stderr
    r = aio(srv, "policy", "untag", trn)
    assert r.returncode == 0, r.stderr
