"""Tenants and roles: another tenant sees none of the triggers; a viewer cannot change them;
a webhook is addressed in its own tenant only."""

from __future__ import annotations

import httpx

from triggers.support import post_signed, unique


def key(admin, tenant: str, role: str) -> str:
    r = admin.post("/api/v1/keys", json={"name": unique("k"), "role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def test_tenants_and_roles(server, admin) -> None:
    name = unique("iso")
    r = admin.post("/api/v1/triggers", json={"name": name, "target": "transform", "webhook": {}})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    other = unique("tenant").lower()
    with server.client(key(admin, other, "admin")) as stranger:
        assert stranger.get(f"/api/v1/triggers/{name}").status_code == 404
        assert name not in stranger.get("/api/v1/triggers", params={"limit": 500}).text
        assert stranger.delete(f"/api/v1/triggers/{name}").status_code == 404
        assert stranger.get(f"/api/v1/triggers/{name}/history").status_code == 404
        r = stranger.post(
            "/api/v1/triggers", json={"name": name, "target": "trn:stepflow:default:template/x", "webhook": {}}
        )
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "target"
    assert post_signed(server.url, f"/hooks/{other}/{name}", secret, b"{}").status_code == 401
    with server.client(key(admin, "default", "viewer")) as viewer:
        assert viewer.get(f"/api/v1/triggers/{name}").status_code == 200
        assert viewer.post(f"/api/v1/triggers/{name}/disable").status_code == 403
        assert viewer.post("/api/v1/events", json={"source": "s", "type": "t"}).status_code == 403
        assert viewer.post(f"/api/v1/triggers/{name}/rotate-secret", json={}).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/triggers").status_code == 401
