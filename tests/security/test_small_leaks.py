"""Issue 15 finding 13: webhook names cannot be enumerated, an SSE stream ends when its key is
revoked, `aio admin backup` writes an owner-only file, and operators cannot publish events as
the platform."""

from __future__ import annotations

import stat
import threading
import time
import uuid

import httpx
from triggers.support import post_signed

from aionix.cli.main import run


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_unknown_webhook_names_answer_like_a_bad_signature(server, admin):
    name = _name("known")
    r = admin.post("/api/v1/triggers", json={"name": name, "target": "transform", "webhook": {}})
    assert r.status_code == 201, r.text
    token_hook = _name("known-token")
    r = admin.post("/api/v1/triggers", json={"name": token_hook, "target": "transform", "webhook": {"auth": "token"}})
    assert r.status_code == 201, r.text
    unknown = _name("missing")

    def answer(path: str, **kwargs) -> tuple[int, str, str]:
        resp = kwargs.pop("send")(path)
        err = resp.json()["error"]
        return resp.status_code, err["code"], err["message"]

    attempts = [
        lambda p: post_signed(server.url, p, "whsec_guessed", b"{}"),
        lambda p: httpx.post(server.url + p, content=b"{}", headers={"content-type": "application/json"}),
        lambda p: httpx.post(server.url + p, content=b"{}", headers={"authorization": "Bearer whtok_guess"}),
        lambda p: httpx.post(
            server.url + p,
            content=b"{}",
            headers={"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        ),
        lambda p: post_signed(server.url, p, "whsec_guessed", b"{}", stamp=int(time.time()) - 3600),
    ]
    for send in attempts:
        seen = {answer(f"/hooks/default/{n}", send=send) for n in (name, token_hook, unknown)} | {
            answer(f"/hooks/{_name('tenant')}/{name}", send=send)
        }
        assert len(seen) == 1, seen
        status, code, _ = seen.pop()
        assert status == 401 and code == "unauthorized"


def test_sse_stream_ends_when_its_key_is_revoked(server, admin):
    wf = _name("slow")
    definition = {
        "entry": "W",
        "states": {
            "W": {"type": "wait", "seconds": 120, "next": "S"},
            "S": {"type": "set", "value": 1, "end": True},
        },
    }
    assert admin.post("/api/v1/workflows", json={"name": wf, "definition": definition}).status_code == 201
    eid = admin.post(f"/api/v1/workflows/{wf}/executions", json={}).json()["execution_id"]
    viewer = admin.post("/api/v1/keys", json={"name": _name("watcher"), "role": "viewer"}).json()
    lines: list[str] = []
    ended = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            with (
                server.client(viewer["key"]) as c,
                c.stream("GET", f"/api/v1/executions/{eid}/stream", timeout=httpx.Timeout(30, read=25)) as resp,
            ):
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    lines.append(line)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    deadline = time.monotonic() + 15
    while not any(line.startswith("event: WaitStarted") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(line.startswith("event: WaitStarted") for line in lines), lines
    assert not ended.is_set()
    revoked_at = time.monotonic()
    assert admin.delete(f"/api/v1/keys/{viewer['id']}").status_code == 200
    assert ended.wait(6), "the stream kept going after its key was revoked"
    assert time.monotonic() - revoked_at < 6
    assert not errors, errors
    assert "event: error" in lines
    admin.post(f"/api/v1/executions/{eid}/cancel")


def test_aio_admin_backup_writes_an_owner_only_file(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "creds"))
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    monkeypatch.delenv("AIONIX_PROFILE", raising=False)
    import os

    old = os.umask(0o022)  # a usual umask: without care the file would be 0644
    try:
        target = tmp_path / "backup.db"
        assert run(["admin", "backup", str(target)]) == 0
        existing = tmp_path / "again.db"
        existing.write_bytes(b"")
        existing.chmod(0o644)
        assert run(["admin", "backup", str(existing)]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600


def test_operators_cannot_publish_events_as_the_platform(server, admin):
    operator = admin.post("/api/v1/keys", json={"name": _name("op"), "role": "operator"}).json()["key"]
    with server.client(operator) as op:
        for source in ("aionix.stepflow", "aionix.functions", "Aionix.Triggers", "aionix", "credvault"):
            r = op.post(
                "/api/v1/events",
                json={"source": source, "type": "Execution Status Change", "detail": {"status": "SUCCEEDED"}},
            )
            assert r.status_code == 422, (source, r.text)
            assert r.json()["error"]["details"][0]["field"] == "source"
        ok = op.post("/api/v1/events", json={"source": "shop", "type": "Order Placed", "detail": {}})
        assert ok.status_code == 202, ok.text
        ok = op.post("/api/v1/events", json={"source": "aionixer.app", "type": "X", "detail": {}})
        assert ok.status_code == 202, ok.text
