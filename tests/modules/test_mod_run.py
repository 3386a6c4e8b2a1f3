"""Running modules: JSON over stdio validated against the schemas, confinement per manifest
(network denied, read-only filesystem, memory/cpu limits, only declared secrets), timeout and
retries, the circuit breaker, and a module as a workflow task."""

from __future__ import annotations

import time

import modpkg as pkg
from conftest import CANARY, install, unique

PROBE = r"""
import json, os, socket, sys, time
event = json.load(sys.stdin)
op = event.get("op")
out = {"op": op}
if op == "echo":
    out["text"] = event.get("text", "")
elif op == "net":
    try:
        socket.create_connection((event["host"], event["port"]), timeout=2).close()
        out["net"] = "connected"
    except OSError as exc:
        out["net"] = "blocked: " + type(exc).__name__
elif op == "write":
    res = {}
    for path in ("main.py.new", "/etc/aionix-module-probe", os.path.join(os.path.dirname(os.path.abspath(__file__)), "x")):
        try:
            with open(path, "w") as f:
                f.write("x")
            res[path] = "written"
        except OSError as exc:
            res[path] = "denied: " + type(exc).__name__
    out["write"] = res
elif op == "env":
    out["env"] = {k: v for k, v in os.environ.items() if k.startswith(("MOD_", "DECLARED", "UNDECLARED", "CUDA_"))}
elif op == "mem":
    try:
        blob = bytearray(event["mb"] * 1024 * 1024)
        out["mem"] = len(blob)
    except MemoryError:
        out["mem"] = "MemoryError"
elif op == "spin":
    while True:
        pass
elif op == "sleep":
    time.sleep(event["s"])
elif op == "bad":
    out = {"not": "matching"}
elif op == "fail":
    sys.stderr.write("boom\n")
    sys.exit(3)
elif op == "flaky":
    marker = "/tmp/flaky-" + event["id"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        sys.exit(1)
json.dump(out, sys.stdout)
"""
IN = {"type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]}
OUT = {"type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]}


def _probe(mc, trusted, tmp_path, **over):
    name = unique("probe")
    doc = pkg.manifest(name, "subprocess", **over)
    d = pkg.write_dir(tmp_path, doc, code={"main.py": PROBE}, input_schema=IN, output_schema=OUT)
    out = install(mc, pkg.build(d, trusted)[0])
    assert out["state"] == "verified", out
    return name


def run(mc, name, event, expect=200):
    r = mc.post(f"/api/v1/modules/{name}/run", json=event)
    assert r.status_code == expect, r.text
    return r.json()


def test_subprocess_module_confined(mc, mod_server, trusted, tmp_path):
    r = mc.post("/api/v1/secrets", json={"name": "DECLARED_TOKEN", "type": "api_key", "value": "s3cr3t-declared"})
    assert r.status_code == 201, r.text
    r = mc.post("/api/v1/secrets", json={"name": "UNDECLARED_TOKEN", "type": "api_key", "value": "s3cr3t-other"})
    assert r.status_code == 201, r.text
    name = _probe(
        mc,
        trusted,
        tmp_path,
        permissions={"filesystem": "read-only", "network": "deny", "secrets": ["DECLARED_TOKEN", "MISSING_ONE?"]},
    )
    assert run(mc, name, {"op": "echo", "text": "hello"})["result"] == {"op": "echo", "text": "hello"}
    # network: default deny, even to the server's own port on loopback
    port = int(mod_server.url.rsplit(":", 1)[1])
    assert run(mc, name, {"op": "net", "host": "127.0.0.1", "port": port})["result"]["net"].startswith("blocked")
    # read-only: the package and the host's files cannot be written
    writes = run(mc, name, {"op": "write"})["result"]["write"]
    assert all(v.startswith("denied") for v in writes.values()), writes
    # only the declared secret; nothing of the server's environment
    env = run(mc, name, {"op": "env"})["result"]["env"]
    assert env == {"DECLARED_TOKEN": "s3cr3t-declared"}, env
    assert CANARY not in str(env)


def test_memory_cpu_timeout_and_errors(mc, trusted, tmp_path):
    name = _probe(
        mc,
        trusted,
        tmp_path / "a",
        runtime={"type": "subprocess", "resources": {"cpu": 1, "memory": "64Mi"}},
        policies={"timeout_ms": 1500, "retries": 0},
    )
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "mem", "mb": 400})
    assert (r.status_code == 200 and r.json()["result"]["mem"] == "MemoryError") or r.status_code == 502, r.text
    t0 = time.monotonic()
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "spin"})
    assert r.status_code == 502 and time.monotonic() - t0 < 15, r.text
    assert r.json()["error"]["error"] == "Module.Timeout", r.text
    # schema validation: input refused before it runs, output checked after
    r = mc.post(f"/api/v1/modules/{name}/run", json={"no-op": 1})
    assert r.status_code == 422 and r.json()["error"]["error"] == "Module.InvalidInput" and "op" in r.text
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "bad"})
    assert r.status_code == 502 and r.json()["error"]["error"] == "Module.InvalidOutput", r.text
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "fail"})
    assert r.status_code == 502 and "boom" in r.text


def test_cpu_limit(mc, trusted, tmp_path):
    # cpu 0.1 core over a 10 s timeout: at most 1 s of CPU time, long before the timeout
    name = _probe(
        mc,
        trusted,
        tmp_path,
        runtime={"type": "subprocess", "resources": {"cpu": 0.1, "memory": "64Mi"}},
        policies={"timeout_ms": 10000, "retries": 0},
    )
    t0 = time.monotonic()
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "spin"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 502 and elapsed < 8, (elapsed, r.text)
    assert r.json()["error"]["error"] != "Module.Timeout", r.text


def test_retries_and_circuit_breaker(mc, trusted, tmp_path):
    name = _probe(mc, trusted, tmp_path / "a", policies={"timeout_ms": 5000, "retries": 1})
    # each attempt starts clean (its private /tmp is emptied): a failing call is tried twice
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "flaky", "id": unique("f")})
    assert r.status_code == 502 and r.json()["error"]["details"]["attempts"] == 2, r.text
    assert run(mc, name, {"op": "echo"})["attempts"] == 1
    name = _probe(mc, trusted, tmp_path / "b", policies={"timeout_ms": 5000, "retries": 0})
    for _ in range(3):  # [modules] breaker_failures = 3 in this server
        assert mc.post(f"/api/v1/modules/{name}/run", json={"op": "fail"}).status_code == 502
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "echo"})
    assert r.status_code == 503 and r.json()["error"]["error"] == "Module.CircuitOpen"
    assert mc.get(f"/api/v1/modules/{name}").json()["breaker"] == "open"
    time.sleep(2.2)  # the cooldown is 2 s here: one trial call closes it again
    assert run(mc, name, {"op": "echo"})["result"]["op"] == "echo"


def test_wasm_module_limits(mc, trusted, tmp_path):
    name = unique("spin")
    d = pkg.write_dir(
        tmp_path / "a",
        pkg.manifest(name, policies={"timeout_ms": 500}),
        code={"module.wat": pkg.SPIN_WAT},
        input_schema=pkg.ANY_SCHEMA,
        output_schema=pkg.ANY_SCHEMA,
    )
    assert install(mc, pkg.build(d, trusted)[0])["state"] == "verified"
    r = mc.post(f"/api/v1/modules/{name}/run", json={})
    assert r.status_code == 502 and r.json()["error"]["error"] == "Module.Timeout", r.text
    name = unique("grow")
    d = pkg.write_dir(
        tmp_path / "b",
        pkg.manifest(name, runtime={"type": "wasm", "resources": {"memory": "64Mi"}}),
        code={"module.wat": pkg.GROW_WAT},
        input_schema=pkg.ANY_SCHEMA,
        output_schema=pkg.ANY_SCHEMA,
    )
    assert install(mc, pkg.build(d, trusted)[0])["state"] == "verified"
    r = mc.post(f"/api/v1/modules/{name}/run", json={})
    assert r.status_code == 502 and r.json()["error"]["error"] in ("Module.MemoryLimitExceeded", "Module.Error.Trap"), (
        r.text
    )


def test_module_as_workflow_task(mc, trusted, tmp_path):
    name = unique("wf")
    d = pkg.write_dir(tmp_path, pkg.manifest(name))
    assert install(mc, pkg.build(d, trusted)[0])["state"] == "verified"
    tenant = mc.get(f"/api/v1/modules/{name}").json()["trn"].split(":")[2]
    wf = unique("wf")
    definition = {
        "StartAt": "Summarize",
        "States": {"Summarize": {"Type": "Task", "Resource": f"trn:modules:{tenant}:module/{name}:1.0.0", "End": True}},
    }
    r = mc.post("/api/v1/workflows", json={"name": wf, "definition": definition})
    assert r.status_code == 201, r.text
    r = mc.post(
        f"/api/v1/workflows/{wf}/executions",
        json={"input": {"text": "from a workflow"}, "mode": "sync", "wait_seconds": 60},
    )
    assert r.status_code in (200, 201), r.text
    ex = r.json()
    assert ex["status"] == "SUCCEEDED", ex
    assert ex["output"] == {"text": "from a workflow"}
    # a quarantined module fails the task by name (a workflow can Catch Module.Quarantined)
    mc.post(f"/api/v1/modules/{name}/quarantine", json={"reason": "test"})
    r = mc.post(
        f"/api/v1/workflows/{wf}/executions",
        json={"input": {"text": "x"}, "mode": "sync", "wait_seconds": 60},
    )
    ex = r.json()
    assert ex["status"] == "FAILED" and "Module.Quarantined" in str(ex), ex


def test_gpu_module_through_the_scheduler(mc, trusted, tmp_path):
    """A module requiring a GPU gets one from the functions GPU scheduler (its device in
    CUDA_VISIBLE_DEVICES); on a host without one the call fails clearly, it never runs blind."""
    from aionix.functions.gpu import detect_devices

    name = _probe(
        mc,
        trusted,
        tmp_path,
        runtime={
            "type": "subprocess",
            "resources": {"cpu": 1, "memory": "128Mi", "gpu": {"required": True, "vendor": "nvidia", "count": 1}},
        },
    )
    r = mc.post(f"/api/v1/modules/{name}/run", json={"op": "env"})
    if any(d.vendor == "nvidia" for d in detect_devices()):
        assert r.status_code == 200, r.text
        assert r.json()["result"]["env"]["CUDA_VISIBLE_DEVICES"].isdigit(), r.text
    else:
        assert r.status_code == 502 and r.json()["error"]["error"] == "Module.GpuUnavailable", r.text
