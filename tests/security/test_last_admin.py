"""Issue 26 point 3: the last active cross-tenant admin key cannot be revoked (nobody could
administer the server after it); the refusal says the way out."""

from __future__ import annotations

import httpx


def test_the_last_cross_tenant_admin_key_cannot_revoke_itself(make_server):
    srv = make_server().start()
    with srv.client() as root:
        me = root.get("/api/v1/whoami").json()
        r = root.delete(f"/api/v1/keys/{me['key_id']}")
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert "last active cross-tenant admin key" in err["message"]
        assert "cross_tenant" in err["message"] and "--cross-tenant" in err["message"]
        assert root.get("/api/v1/whoami").status_code == 200
        # tenant admins and other keys are revoked as before
        tenant_admin = root.post("/api/v1/keys", json={"name": "tenant-admin", "role": "admin"}).json()
        assert root.delete(f"/api/v1/keys/{tenant_admin['id']}").status_code == 200
        # with a second cross-tenant admin, the first may go ...
        second = root.post("/api/v1/keys", json={"name": "root-2", "role": "admin", "cross_tenant": True}).json()
        assert root.delete(f"/api/v1/keys/{me['key_id']}").status_code == 200
    assert (
        httpx.get(srv.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {srv.admin_key}"}).status_code == 401
    )
    with srv.client(second["key"]) as root2:
        # ... and the one left is the last again
        r = root2.delete(f"/api/v1/keys/{second['id']}")
        assert r.status_code == 409, r.text
        assert root2.get("/api/v1/whoami").json()["cross_tenant"] is True
        # a cross-tenant admin acting in another tenant is refused the same way
        r = root2.delete(f"/api/v1/keys/{second['id']}", headers={"X-Aionix-Tenant": "default"})
        assert r.status_code == 409
