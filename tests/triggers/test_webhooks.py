"""Webhook triggers against the real server: signatures, replay, limits, token mode, rotation,
synchronous replies; every refusal starts nothing and shows in the trigger's history."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from triggers.support import create_workflow, execution, finished_execution, history, post_signed, unique, wait_for


@pytest.fixture
def hook(server, admin) -> dict[str, Any]:
    """A webhook trigger on a one-state workflow."""
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("hook")
    r = admin.post(
        "/api/v1/triggers",
        json={"name": name, "target": f"trn:stepflow:default:template/{wf}", "webhook": {"max_body_bytes": 1024}},
    )
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["secret"].startswith("whsec_")
    assert data["webhook_path"] == f"/hooks/default/{name}"
    return {"name": name, "path": data["webhook_path"], "secret": data["secret"], "workflow": wf}


def executions(admin: httpx.Client, workflow: str) -> list[dict[str, Any]]:
    r = admin.get("/api/v1/executions", params={"workflow": workflow, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_signed_webhook_starts_one_execution_with_the_body(server, admin, hook) -> None:
    r = post_signed(server.url, hook["path"], hook["secret"], b'{"order": 42}', msg_id="msg-good-1")
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "delivered" and answer["webhook_id"] == "msg-good-1"
    done = finished_execution(admin, answer["result_id"])
    assert done["status"] == "SUCCEEDED"
    assert done["input"]["body"] == {"order": 42}
    assert done["input"]["id"] == "msg-good-1"
    assert "webhook-signature" not in done["input"]["headers"]
    [fire] = wait_for(
        lambda: [f for f in history(admin, hook["name"]) if f["status"] == "delivered"], 30, what="record"
    )
    assert fire["result_id"] == answer["result_id"]
    assert fire["fire_key"] == "msg-good-1" and fire["payload_digest"].startswith("sha256:")


def test_the_secret_is_never_shown_again(admin, hook) -> None:
    r = admin.get(f"/api/v1/triggers/{hook['name']}")
    assert r.status_code == 200
    assert hook["secret"] not in r.text
    assert hook["secret"] not in admin.get("/api/v1/triggers", params={"kind": "webhook", "limit": 500}).text


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("bad_signature", 401, "signature_invalid"),
        ("wrong_secret", 401, "signature_invalid"),
        ("stale", 401, "timestamp_out_of_window"),
        ("future", 401, "timestamp_out_of_window"),
        ("oversize", 413, "payload_too_large"),
        ("content_type", 415, "unsupported_media_type"),
        ("unsigned", 401, "signature_missing"),
        ("malformed_json", 400, "bad_request"),
        ("too_deep", 400, "bad_request"),
    ],
)
def test_refused_deliveries_start_nothing_and_are_recorded(
    server, admin, hook, case: str, status: int, code: str
) -> None:
    url, path, secret = server.url, hook["path"], hook["secret"]
    body = b'{"order": 1}'
    if case == "bad_signature":
        r = httpx.post(
            url + path,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": "x1",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,bm9wZQ==",
            },
        )
    elif case == "wrong_secret":
        r = post_signed(url, path, "whsec_not-the-secret", body)
    elif case == "stale":
        r = post_signed(url, path, secret, body, stamp=int(time.time()) - 301)
    elif case == "future":
        r = post_signed(url, path, secret, body, stamp=int(time.time()) + 600)
    elif case == "oversize":
        r = post_signed(url, path, secret, b'{"pad": "' + b"x" * 2000 + b'"}')
    elif case == "content_type":
        r = post_signed(url, path, secret, body, content_type="text/plain")
    elif case == "unsigned":
        r = httpx.post(url + path, content=body, headers={"content-type": "application/json"})
    elif case == "too_deep":
        r = post_signed(url, path, secret, b"[" * 100 + b"]" * 100)
    else:
        r = post_signed(url, path, secret, b'{"order": ')
    assert r.status_code == status, r.text
    # authentication failures all answer one 401 (names cannot be enumerated); the history says which
    assert r.json()["error"]["code"] == ("unauthorized" if status == 401 else code)
    [fire] = history(admin, hook["name"])
    assert fire["status"] == "rejected" and fire["error"] == code and fire["result_id"] is None
    assert executions(admin, hook["workflow"]) == []


def test_a_replayed_delivery_is_refused_and_starts_nothing_more(server, admin, hook) -> None:
    body = b'{"n": 1}'
    stamp = int(time.time())
    first = post_signed(server.url, hook["path"], hook["secret"], body, msg_id="replay-1", stamp=stamp)
    assert first.status_code == 202, first.text
    again = post_signed(server.url, hook["path"], hook["secret"], body, msg_id="replay-1", stamp=stamp)
    assert again.status_code == 409 and again.json()["error"]["code"] == "replayed"
    wait_for(
        lambda: sorted(f["status"] for f in history(admin, hook["name"])) == ["delivered", "rejected"],
        30,
        what="records",
    )
    assert len(executions(admin, hook["workflow"])) == 1


def test_unknown_and_disabled_webhooks(server, admin, hook) -> None:
    r = post_signed(server.url, "/hooks/default/" + unique("nope"), hook["secret"], b"{}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"  # as a bad signature
    assert admin.post(f"/api/v1/triggers/{hook['name']}/disable").status_code == 200
    r = post_signed(server.url, hook["path"], hook["secret"], b"{}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "trigger_disabled"
    assert admin.post(f"/api/v1/triggers/{hook['name']}/enable").status_code == 200
    assert post_signed(server.url, hook["path"], hook["secret"], b"{}").status_code == 202


def test_rotation_accepts_both_secrets_during_the_grace_period(server, admin, hook) -> None:
    r = admin.post(f"/api/v1/triggers/{hook['name']}/rotate-secret", json={"grace_seconds": 3600})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != hook["secret"]
    assert post_signed(server.url, hook["path"], hook["secret"], b"{}").status_code == 202
    assert post_signed(server.url, hook["path"], new, b"{}").status_code == 202
    r = admin.post(f"/api/v1/triggers/{hook['name']}/rotate-secret", json={"grace_seconds": 0})
    newest = r.json()["secret"]
    assert post_signed(server.url, hook["path"], new, b"{}").status_code == 401
    assert post_signed(server.url, hook["path"], newest, b"{}").status_code == 202


def test_bearer_token_mode_and_form_bodies(server, admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("tok")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:stepflow:default:template/{wf}",
            "input": "body",
            "webhook": {"auth": "token", "content_types": ["application/x-www-form-urlencoded"]},
        },
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert r.json()["secret"] is None
    url = f"{server.url}/hooks/default/{name}"
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=b"a=1", headers={**form, "authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(url, content=b"a=1", headers=form).status_code == 401
    ok = httpx.post(
        url, content=b"a=1&b=x", headers={**form, "authorization": f"Bearer {token}", "webhook-id": "tok-1"}
    )
    assert ok.status_code == 202, ok.text
    done = finished_execution(admin, ok.json()["result_id"])
    assert done["input"] == {"a": "1", "b": "x"}
    dup = httpx.post(
        url, content=b"a=1&b=x", headers={**form, "authorization": f"Bearer {token}", "webhook-id": "tok-1"}
    )
    assert dup.status_code == 409


def test_sync_reply_returns_the_workflow_output(server, admin) -> None:
    wf = unique("wf")
    create_workflow(admin, wf)
    name = unique("sync")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:stepflow:default:template/{wf}",
            "input": "body",
            "webhook": {"reply": "sync", "reply_timeout_seconds": 20},
        },
    )
    assert r.status_code == 201, r.text
    reply = post_signed(server.url, f"/hooks/default/{name}", r.json()["secret"], b'{"q": "hi"}')
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"got": {"q": "hi"}, "marker": "ok"}


def test_sync_reply_of_a_failing_workflow_is_a_502_with_the_error(server, admin) -> None:
    wf = unique("wf")
    create_workflow(
        admin, wf, {"entry": "Boom", "states": {"Boom": {"type": "fail", "error": "Order.Bad", "cause": "no"}}}
    )
    name = unique("syncfail")
    r = admin.post(
        "/api/v1/triggers",
        json={"name": name, "target": f"trn:stepflow:default:template/{wf}", "webhook": {"reply": "sync"}},
    )
    reply = post_signed(server.url, f"/hooks/default/{name}", r.json()["secret"], b"{}")
    assert reply.status_code == 502, reply.text
    err = reply.json()["error"]
    assert err["code"] == "execution_failed" and err["details"]["error"]["error"] == "Order.Bad"
    assert execution(admin, err["details"]["execution_id"])["status"] == "FAILED"


def test_other_methods_and_paths_under_hooks(server, hook) -> None:
    for method in ("GET", "OPTIONS", "PUT", "DELETE"):
        r = httpx.request(method, server.url + hook["path"])
        assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.text)
    r = httpx.post(server.url + "/hooks/default", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_sync_reply_past_its_bound_is_504_and_the_run_is_started_once(server, admin) -> None:
    wf = unique("wf")
    slow = {
        "entry": "Wait",
        "states": {"Wait": {"type": "wait", "seconds": 3, "next": "Done"}, "Done": {"type": "succeed"}},
    }
    create_workflow(admin, wf, slow)
    name = unique("syncslow")
    r = admin.post(
        "/api/v1/triggers",
        json={
            "name": name,
            "target": f"trn:stepflow:default:template/{wf}",
            "webhook": {"reply": "sync", "reply_timeout_seconds": 1},
            "retry": {"interval_seconds": 0.5},
        },
    )
    assert r.status_code == 201, r.text
    reply = post_signed(server.url, f"/hooks/default/{name}", r.json()["secret"], b"{}")
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["code"] == "reply_timeout"
    # the fire stays in the outbox and is completed under the same key: one execution, not two
    [fire] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "delivered"], 60, what="re-delivery")
    runs = executions(admin, wf)
    assert [e["execution_id"] for e in runs] == [fire["result_id"]]
    assert finished_execution(admin, fire["result_id"])["status"] == "SUCCEEDED"


def test_a_flood_of_refused_deliveries_is_counted_but_recorded_only_up_to_the_cap(make_server) -> None:
    srv = make_server(
        env={"AIONIX_TRIGGERS_REJECTED_RECORD_BURST": "3", "AIONIX_TRIGGERS_REJECTED_RECORD_RATE": "0.001"}
    )
    srv.start()
    with srv.client() as c:
        r = c.post("/api/v1/triggers", json={"name": "flooded", "target": "transform", "webhook": {}})
        assert r.status_code == 201, r.text
        for _ in range(6):
            assert post_signed(srv.url, "/hooks/default/flooded", "whsec_wrong", b"{}").status_code == 401
        assert [f["status"] for f in history(c, "flooded")] == ["rejected"] * 3
        metrics = c.get("/metrics").text
    assert 'aionix_trigger_webhooks_rejected_total{reason="signature_invalid"} 6.0' in metrics
    srv.stop()
