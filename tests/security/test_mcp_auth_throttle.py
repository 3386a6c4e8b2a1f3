"""/mcp throttles guessed keys like the REST API: after `auth_failures_per_minute` failures from
an address, further attempts are refused with 429 (even with a valid key the address is not
blocked: a valid key is never refused for what guessed keys did)."""

from __future__ import annotations

import httpx

BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def test_guessed_keys_on_mcp_are_throttled(make_server):
    srv = make_server(env={"AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "3"}).start()
    statuses = [
        httpx.post(srv.url + "/mcp", json=BODY, headers={"Authorization": f"Bearer aio_guess{i}"}).status_code
        for i in range(6)
    ]
    assert statuses[:3] == [401, 401, 401] and 429 in statuses[3:], statuses
    r = httpx.post(srv.url + "/mcp", json=BODY, headers={"Authorization": "Bearer aio_guess9"})
    assert r.status_code == 429 and r.headers.get("Retry-After")
    ok = httpx.post(srv.url + "/mcp", json=BODY, headers={"Authorization": f"Bearer {srv.admin_key}"})
    assert ok.status_code not in (401, 429), ok.text
