"""Policy files: validation with file/line/field, reload as a new version, rollback, audit."""

from __future__ import annotations

import pytest

from aionix.ai.policy import PolicyError, parse


def test_bad_files_name_file_line_and_field():
    with pytest.raises(PolicyError) as exc:
        parse(
            {
                "models.yml": "providers:\n  p:\n    kind: openai\n    location: api\n    base_url: http://x\n    allow_hosts: [x]\n    timeout_s: -1\n"
            }
        )
    d = exc.value.details[0]
    assert (d["file"], d["line"], d["field"]) == ("models.yml", 7, "providers.p.timeout_s")
    with pytest.raises(PolicyError) as exc:
        parse({"intents.yml": "intents:\n  s:\n    candidates: [ghost]\n"})
    d = exc.value.details[0]
    assert d["file"] == "intents.yml" and d["field"] == "intents.s.candidates.0" and d["line"] == 3
    with pytest.raises(PolicyError) as exc:
        parse({"policies.yml": "budget: {default_usd: [\n"})
    assert exc.value.details[0]["file"] == "policies.yml" and exc.value.details[0]["line"]
    with pytest.raises(PolicyError) as exc:
        parse(
            {
                "models.yml": "providers:\n  p: {kind: openai, location: api, base_url: 'http://evil.example', allow_hosts: [good.example]}\n"
            }
        )
    assert "allow_hosts" in exc.value.details[0]["field"]
    with pytest.raises(PolicyError):
        parse({"modules.yml": "modules: [{name: 'bad name!'}]\n"})
    assert parse({}).intents.intents == {}


def test_reload_versions_rollback_and_audit(ai):
    with ai.server.client() as c:
        versions = c.get("/api/v1/router/policy/versions").json()["items"]
        assert versions and versions[0]["active"]
        start = versions[0]["version"]
        # unchanged files: no new version
        r = c.post("/api/v1/router/policy/reload")
        assert r.status_code == 200 and r.json() == {**r.json(), "changed": False, "version": start}
        assert (
            c.post("/api/v1/tasks", json={"intent": "local-ok", "params": {"text": "a"}}).json()["engine"]["provider"]
            == "ollama"
        )
        intents = ai.policy_dir / "intents.yml"
        original = intents.read_text()
        try:
            # a broken file is refused with file/line/field; the running version stays
            intents.write_text(original + "  broken:\n    candidates: [local-ok]\n    bogus_field: 1\n")
            r = c.post("/api/v1/router/policy/reload")
            assert r.status_code == 422, r.text
            detail = r.json()["error"]["details"][0]
            assert (
                detail["file"] == "intents.yml" and detail["field"] == "intents.broken.bogus_field" and detail["line"]
            )
            assert c.get("/api/v1/router/policy/versions").json()["items"][0]["version"] == start
            # a valid change: the local-ok intent now runs on the cloud stand-in
            intents.write_text(
                original.replace(
                    "  local-ok:\n    privacy: local-only\n    candidates: [local-ok, api-ok]",
                    "  local-ok:\n    privacy: allow-api\n    default_route: api\n    candidates: [local-ok, api-ok]",
                )
            )
            r = c.post("/api/v1/router/policy/reload")
            assert r.status_code == 200 and r.json()["changed"] and r.json()["version"] == start + 1
            assert (
                c.post("/api/v1/tasks", json={"intent": "local-ok", "params": {"text": "a"}}).json()["engine"][
                    "provider"
                ]
                == "cloud"
            )
            # rollback restores the previous decisions
            r = c.post("/api/v1/router/policy/rollback", json={"version": start})
            assert r.status_code == 200
            assert (
                c.post("/api/v1/tasks", json={"intent": "local-ok", "params": {"text": "a"}}).json()["engine"][
                    "provider"
                ]
                == "ollama"
            )
            items = c.get("/api/v1/router/policy/versions").json()["items"]
            assert [i["version"] for i in items if i["active"]] == [start]
            assert c.post("/api/v1/router/policy/rollback", json={"version": 999}).status_code == 404
            assert c.post("/api/v1/router/policy/rollback", json={"version": "x"}).status_code == 422
            audit = c.get("/api/v1/audit", params={"limit": 200}).json()["items"]
            actions = {a["action"] for a in audit}
            assert "ai.policy.reload" in actions and "ai.policy.rollback" in actions
        finally:
            intents.write_text(original)
            c.post("/api/v1/router/policy/reload")
            c.post("/api/v1/router/policy/rollback", json={"version": start})


def test_reload_is_admin_only(ai):
    with ai.server.client() as c:
        r = c.post("/api/v1/keys", json={"name": "ai-op", "role": "operator"})
        key = r.json()["key"]
    with ai.server.client(key) as op:
        assert op.post("/api/v1/router/policy/reload").status_code == 403
        assert op.post("/api/v1/router/policy/rollback", json={"version": 1}).status_code == 403
        assert op.get("/api/v1/router/policy/versions").status_code == 200


def test_router_model_must_be_local():
    models = (
        "providers:\n  c: {kind: openai, location: api, base_url: 'https://h/v1', allow_hosts: [h]}\n"
        "models:\n  m: {provider: c, tier: tier1}\n"
    )
    with pytest.raises(PolicyError) as exc:
        parse(
            {
                "models.yml": models,
                "intents.yml": "intents:\n  s: {candidates: [m], router_model: m, privacy: allow-api, default_route: api}\n",
            }
        )
    assert exc.value.details[0]["field"] == "intents.s.router_model" and "local" in exc.value.details[0]["message"]
