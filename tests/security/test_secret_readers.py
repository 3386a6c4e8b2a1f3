"""Issue 15 finding 4: who may read a secret.

Each secret has `readers` (TRN patterns, like a Secrets Manager resource policy); the default
is any resource of the tenant, and only an admin sets it. A workflow, function or parameter
read by anything not listed fails with `CredVault.AccessDenied`, and the audit row names the
reader — the platform-set caller, which a payload cannot claim to be.
"""

from __future__ import annotations

import time
import uuid

import httpx

WF = "trn:stepflow:default:template/"


def _key(admin: httpx.Client, role: str) -> str:
    r = admin.post("/api/v1/keys", json={"name": f"readers-{role}-{uuid.uuid4().hex[:6]}", "role": role})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _run(c: httpx.Client, name: str, definition: dict) -> dict:
    r = c.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    r = c.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "wait_seconds": 60})
    assert r.status_code == 200, r.text
    return r.json()


def _reads(admin: httpx.Client, secret: str) -> list[dict]:
    items = admin.get("/api/v1/audit", params={"action": "credvault.resolve", "limit": 1000}).json()["items"]
    return [i for i in items if i["resource"] == f"trn:credvault:default:credential/{secret}"]


def test_only_listed_readers_resolve_a_secret_and_denials_are_audited(server, admin):
    tag = uuid.uuid4().hex[:8]
    secret, value = f"guarded-{tag}", f"guarded-value-{uuid.uuid4().hex}"
    allowed, other = f"allowed-{tag}", f"other-{tag}"
    r = admin.post("/api/v1/secrets", json={"name": secret, "type": "api_key", "value": value})
    assert r.status_code == 201, r.text
    assert r.json()["readers"] == ["trn:*:default:*"]  # the stated default: any resource of the tenant

    r = admin.put(f"/api/v1/secrets/{secret}/policy", json={"readers": [WF + allowed]})
    assert r.status_code == 200 and r.json()["readers"] == [WF + allowed], r.text

    use = {
        "entry": "S",
        "states": {"S": {"type": "set", "value": "{% $length($secret.`" + secret + "`) %}", "end": True}},
    }
    ok = _run(admin, allowed, use)
    assert ok["status"] == "SUCCEEDED" and ok["output"] == len(value), ok

    denied = _run(admin, other, use)
    assert denied["status"] == "FAILED", denied
    assert denied["error"]["error"] == "CredVault.AccessDenied", denied["error"]

    # a credvault task that claims to read for the allowed workflow is still the other one
    task = {
        "entry": "T",
        "states": {
            "T": {
                "type": "task",
                "action": f"trn:credvault:default:credential/{secret}",
                "parameters": {"op": "resolve", "reader": WF + allowed},
                "end": True,
            }
        },
    }
    spoof = _run(admin, f"spoof-{tag}", task)
    assert spoof["status"] == "FAILED" and spoof["error"]["error"] == "CredVault.AccessDenied", spoof
    assert value not in str(spoof)

    # a secret_ref parameter read by a workflow is a read by that workflow
    r = admin.put(f"/api/v1/params/guarded/{tag}", json={"type": "secret_ref", "value": secret})
    assert r.status_code in (200, 201), r.text
    via_param = {
        "entry": "S",
        "states": {"S": {"type": "set", "value": "{% $param('/guarded/" + tag + "') %}", "end": True}},
    }
    param = _run(admin, f"param-{tag}", via_param)
    assert param["status"] == "FAILED" and "CredVault.AccessDenied" in str(param["error"]), param

    reads = _reads(admin, secret)
    granted = [r for r in reads if r["status"] == 200]
    refused = [r for r in reads if r["status"] == 403]
    assert [r["details"]["reader"] for r in granted] == [WF + allowed]
    assert {r["details"]["reader"] for r in refused} == {WF + other, WF + f"spoof-{tag}", WF + f"param-{tag}"}
    spoofed = next(r for r in refused if r["details"]["reader"] == WF + f"spoof-{tag}")
    assert spoofed["details"]["on_behalf_of"] == WF + allowed  # what it claimed is recorded, not trusted
    assert value not in str(reads)


def test_a_function_outside_the_readers_cannot_read_its_granted_secret(server, admin):
    tag = uuid.uuid4().hex[:8]
    secret = f"fnsecret_{tag}"
    r = admin.post(
        "/api/v1/secrets",
        json={
            "name": secret,
            "type": "password",
            "value": f"fn-value-{uuid.uuid4().hex}",
            "readers": [f"trn:aionixfn:default:function/trusted-{tag}"],
        },
    )
    assert r.status_code == 201, r.text
    source = "import os\n\ndef handler(event, context):\n    return len(os.environ.get(event, ''))\n"
    for name in (f"trusted-{tag}", f"untrusted-{tag}"):
        body = {"name": name, "runtime": "python", "code": {"source": source}, "secrets": [secret]}
        assert admin.post("/api/v1/functions", json=body).status_code == 201
    trusted = admin.post(f"/api/v1/functions/trusted-{tag}/invoke", json=secret).json()
    assert trusted["status"] == "SUCCEEDED" and trusted["result"] > 0, trusted
    untrusted = admin.post(f"/api/v1/functions/untrusted-{tag}/invoke", json=secret).json()
    assert untrusted["status"] == "FAILED", untrusted
    assert "CredVault.AccessDenied" in untrusted["error"]["errorMessage"], untrusted
    time.sleep(0.2)
    refused = [r for r in _reads(admin, secret) if r["status"] == 403]
    assert [r["details"]["reader"] for r in refused] == [f"trn:aionixfn:default:function/untrusted-{tag}"]


def test_only_an_admin_sets_readers_and_bad_patterns_are_named(server, admin):
    tag = uuid.uuid4().hex[:8]
    secret = f"policy-{tag}"
    operator_key = _key(admin, "operator")
    with server.client(operator_key) as op:
        body = {"name": secret, "type": "api_key", "value": "v-" + tag, "readers": ["trn:*:default:*"]}
        r = op.post("/api/v1/secrets", json=body)
        assert r.status_code == 403 and "readers" in r.text, r.text
        body.pop("readers")
        r = op.post("/api/v1/secrets", json=body)
        assert r.status_code == 201 and r.json()["readers"] == ["trn:*:default:*"], r.text
        r = op.put(f"/api/v1/secrets/{secret}", json={"readers": [WF + "mine"]})
        assert r.status_code == 403, r.text
        r = op.put(f"/api/v1/secrets/{secret}/policy", json={"readers": [WF + "mine"]})
        assert r.status_code == 403, r.text
        # the operator can still change the value and metadata
        assert op.put(f"/api/v1/secrets/{secret}", json={"description": "d"}).status_code == 200
    assert admin.get(f"/api/v1/secrets/{secret}").json()["readers"] == ["trn:*:default:*"]

    for readers, field in (
        (["nope"], "readers[0]"),
        ([WF + "a", "trn:stepflow:other-tenant:template/x"], "readers[1]"),
        ("trn:*:default:*", "readers"),
        ([""], "readers[0]"),
    ):
        r = admin.put(f"/api/v1/secrets/{secret}/policy", json={"readers": readers})
        assert r.status_code == 422, r.text
        assert field in r.text, r.text
    r = admin.put(f"/api/v1/secrets/{secret}", json={"readers": []})
    assert r.status_code == 200 and r.json()["readers"] == [], r.text
    r = admin.put("/api/v1/secrets/absent-" + tag + "/policy", json={"readers": []})
    assert r.status_code == 404, r.text
