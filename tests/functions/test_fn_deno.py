"""The Deno runtime: results, errors as data, limits, and every permission denied unless granted."""

from __future__ import annotations

import os
import time

import pgstore
from conftest import CANARY, confinement, create, healthy, invoke

SOURCE = r"""
export default async function handler(event: any, context: any) {
  const op = event?.op;
  const attempt = async (fn: () => Promise<unknown> | unknown) => {
    try { return "allowed: " + String(await fn()).slice(0, 40); }
    catch (e) { return "denied: " + (e as Error).name; }
  };
  switch (op) {
    case "ok":
      console.log("log line", event.n);
      return { n: event.n, version: context.function_version, key: context.idempotency_key, left: context.getRemainingTimeInMillis() > 0 };
    case "raise": throw new TypeError("bad thing " + event.n);
    case "loop": while (true) {}
    case "memory": { const keep = []; while (true) keep.push(new Array(1e6).fill(Math.random())); }
    case "env": return await attempt(() => JSON.stringify(Deno.env.toObject()));
    case "env_mine": return await attempt(() => Deno.env.get("MINE"));
    case "read": return await attempt(() => Deno.readTextFile(event.path));
    case "write": return await attempt(() => Deno.writeTextFile(event.path, "x"));
    case "net": return await attempt(() => fetch("http://127.0.0.1:" + event.port + "/healthz").then((r) => r.status));
    case "run": return await attempt(() => new Deno.Command("sh", { args: ["-c", "echo hi"] }).output().then(() => "ran"));
    case "import": return await attempt(() => import("https://deno.land/std/path/mod.ts"));
  }
  return null;
}
"""


def _fn(fn, **kw):
    kw.setdefault("limits", {"timeout_seconds": 5, "memory_mb": 128})
    return create(fn, "deno", SOURCE, **kw)["name"]


def test_success_logs_and_warm_reuse(fn) -> None:
    name = _fn(fn)
    first = invoke(fn, name, {"op": "ok", "n": 1})
    assert first["status"] == "SUCCEEDED", first
    assert first["result"] == {"n": 1, "version": "$LATEST", "key": None, "left": True}
    second = fn.post(
        f"/api/v1/functions/{name}/invoke", json={"op": "ok", "n": 2}, headers={"Idempotency-Key": "e:s:1"}
    ).json()
    assert second["cold_start"] is False and second["result"]["key"] == "e:s:1"
    logs = fn.get(f"/api/v1/functions/{name}/logs", params={"invocation_id": second["invocation_id"]}).json()["items"]
    assert [line["message"] for line in logs] == ["log line 2"]


def test_exception_comes_back_as_data(fn) -> None:
    record = invoke(fn, _fn(fn), {"op": "raise", "n": 3})
    assert record["status"] == "FAILED"
    assert record["error"]["errorType"] == "TypeError" and record["error"]["errorMessage"] == "bad thing 3"
    assert record["error"]["error"] == "Function.Error.TypeError"


def test_infinite_loop_times_out_and_worker_is_replaced(fn) -> None:
    name = _fn(fn, limits={"timeout_seconds": 1, "memory_mb": 128})
    started = time.monotonic()
    record = invoke(fn, name, {"op": "loop"})
    assert record["error"]["error"] == "Function.Timeout" and time.monotonic() - started < 15
    assert invoke(fn, name, {"op": "ok", "n": 1})["status"] == "SUCCEEDED"
    healthy(fn)


def test_memory_blowup_is_stopped(fn) -> None:
    name = _fn(fn, limits={"timeout_seconds": 20, "memory_mb": 64})
    record = invoke(fn, name, {"op": "memory"})
    assert record["status"] == "FAILED" and record["error"]["error"] == "Function.MemoryLimitExceeded", record["error"]
    assert invoke(fn, name, {"op": "ok", "n": 1})["status"] == "SUCCEEDED"
    healthy(fn)


def test_permissions_denied_unless_granted(fn, fn_server) -> None:
    name = _fn(fn, env={"MINE": "yes"})
    env = invoke(fn, name, {"op": "env"})["result"]
    assert env.startswith("denied") and CANARY not in env
    assert invoke(fn, name, {"op": "env_mine"})["result"] == "allowed: yes", "its own declared env is readable"
    for event in (
        {"op": "read", "path": str(fn_server.data_dir / ("node.id" if pgstore.on_postgres() else "aionix.db"))},
        {"op": "read", "path": "/etc/hostname"},
        {"op": "write", "path": str(fn_server.data_dir / "evil")},
        {"op": "write", "path": "/etc/aionix-deno-evil"},
        {"op": "net", "port": fn_server.port},
        {"op": "run"},
        {"op": "import"},
    ):
        assert invoke(fn, name, event)["result"].startswith("denied"), event
    health = confinement(fn)
    # its own temp directory is writable; with a private /tmp that is /tmp itself
    scratch = "/tmp/deno-scratch-" + name if health["private_tmp"] else None
    if scratch:
        assert invoke(fn, name, {"op": "write", "path": scratch})["result"].startswith("allowed")
        assert not os.path.exists(scratch), "the write landed in the private /tmp"
    granted = _fn(fn, permissions={"net": [f"127.0.0.1:{fn_server.port}"], "read": ["/etc/hostname"]})
    # the grant passes Deno's check; the server's egress proxy still refuses its own API
    assert invoke(fn, granted, {"op": "net", "port": fn_server.port})["result"] == "allowed: 403"
    assert invoke(fn, granted, {"op": "read", "path": "/etc/hostname"})["result"].startswith("allowed")
    assert invoke(fn, granted, {"op": "read", "path": "/etc/passwd"})["result"].startswith("denied")


def test_missing_default_export_is_422(fn) -> None:
    r = fn.post(
        "/api/v1/functions",
        json={"name": "deno-bad-" + str(time.time_ns()), "runtime": "deno", "code": {"source": "export const x = 1;"}},
    )
    assert r.status_code == 422 and "default export" in r.json()["error"]["message"]
