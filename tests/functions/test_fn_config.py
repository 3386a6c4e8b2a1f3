"""`[functions]` settings on a private server: no Deno binary, and idle worker retirement."""

from __future__ import annotations

import time

from conftest import confinement, create, invoke

UID = "import os\n\ndef handler(event, context):\n    return os.getuid()\n"


def test_missing_deno_and_idle_workers_retire(make_server, fn) -> None:
    srv = make_server(
        env={"AIONIX_FUNCTIONS_DENO_PATH": "/nonexistent/deno", "AIONIX_FUNCTIONS_IDLE_SECONDS": "1"}
    ).start()
    with srv.client(timeout=120) as c:
        health = confinement(c)
        assert health["deno"]["available"] is False
        r = c.post(
            "/api/v1/functions", json={"name": "d", "runtime": "deno", "code": {"source": "export default () => 1;"}}
        )
        assert r.status_code == 422 and "deno is not available" in r.json()["error"]["message"]
        name = create(c, "python", "def handler(event, context):\n    return 1\n")["name"]
        assert invoke(c, name, {})["result"] == 1
        assert confinement(c)["python"]["warm_workers"] == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if confinement(c)["python"]["warm_workers"] == 0:
                break
            time.sleep(0.2)
        assert invoke(c, name, {})["cold_start"] is True, "the idle worker was retired"
        if health["uid_drop"]:
            # two servers on one host never hand out the same sandbox uids
            mine = invoke(c, create(c, "python", UID)["name"], {})["result"]
            theirs = invoke(fn, create(fn, "python", UID)["name"], {})["result"]
            assert (mine - 61000) // 256 != (theirs - 61000) // 256
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()
