"""Issue 15 finding 11: nothing an invocation leaves behind reaches the next one.

A background thread or process started by a handler is gone before the next invocation (the
worker is replaced when a thread is left), the private /tmp (and /var/tmp, /dev/shm) is
emptied after every invocation and capped in size, and the seccomp filter denies namespace
creation (`unshare(CLONE_NEWUSER)`), mounts and ptrace to user code; `/healthz` reports it.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from serverproc import ServerProcess

TMP_MB = 24

SOURCE = r"""
import ctypes, os, subprocess, threading, time

STATE = {"ticks": 0}

def spin():
    while True:
        STATE["ticks"] += 1
        time.sleep(0.001)

def handler(event, context):
    op = event["op"]
    if op == "thread":
        threading.Thread(target=spin, daemon=True).start()
        return threading.active_count()
    if op == "async_task":
        import asyncio
        async def run():
            async def forever():
                while True:
                    STATE["ticks"] += 1
                    await asyncio.sleep(0.001)
            asyncio.get_running_loop().create_task(forever())
            return "started"
        return run()
    if op == "to_thread":
        import asyncio
        STATE["calls"] = STATE.get("calls", 0) + 1
        async def run():
            return await asyncio.to_thread(lambda: STATE["calls"])
        return run()
    if op == "process":
        return subprocess.Popen(["sleep", "60"]).pid
    if op == "alive":
        try:
            with open("/proc/%d/cmdline" % event["pid"], "rb") as fh:
                return b"sleep" in fh.read()
        except OSError:
            return False
    if op == "state":
        return {"threads": threading.active_count(), "ticks": STATE["ticks"],
                "tmp": sorted(n for n in os.listdir("/tmp") if not n.startswith(".") and n != os.path.basename(os.getcwd())),
                "cwd": os.listdir("."),
                "var_tmp": os.listdir("/var/tmp"), "shm": os.listdir("/dev/shm")}
    if op == "fill":
        written, error = 0, None
        try:
            with open("/tmp/big", "wb") as fh:
                for _ in range(300):
                    fh.write(b"x" * (1 << 20))
                    fh.flush()
                    written += 1 << 20
        except OSError as exc:
            error = exc.strerror
        for path in ("/var/tmp/left", "/dev/shm/left", "/tmp/left-dir/x"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        return {"written": written, "error": error}
    if op == "syscalls":
        libc = ctypes.CDLL(None, use_errno=True)
        out = {}
        for name, call in (
            ("unshare_user", lambda: libc.unshare(0x10000000)),
            ("unshare_net", lambda: libc.unshare(0x40000000)),
            ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
            ("ptrace", lambda: libc.ptrace(16, os.getpid(), None, None)),
        ):
            ctypes.set_errno(0)
            rc = call()
            out[name] = "ok" if rc == 0 else os.strerror(ctypes.get_errno())
        return out
"""


DENO = r"""
let ticks = 0;
export default async function handler(event) {
  if (event.op === "timers") {
    setInterval(() => { ticks += 1; }, 1);
    setTimeout(() => { ticks += 1000; }, 100);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return "started";
  }
  if (event.op === "write") {
    await Deno.writeTextFile("/tmp/left.txt", "x".repeat(1000));
    await Deno.mkdir("/tmp/left-dir");
    return "wrote";
  }
  return { ticks, tmp: [...Deno.readDirSync("/tmp")].map((e) => e.name).filter((n) => !n.startsWith(".")) };
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("fn-leftovers"),
        env={"AIONIX_FUNCTIONS_TMP_MAX_MB": str(TMP_MB), "AIONIX_FUNCTIONS_POOL_SIZE": "1"},
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=120.0) as c:
        yield c


def _confinement(client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        report = client.get("/healthz").json()["confinement"]
        if report.get("status") != "detecting" or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def _fn(client: httpx.Client, **limits: Any) -> str:
    name = f"leftovers-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "runtime": "python", "code": {"source": SOURCE}, "limits": limits}
    r = client.post("/api/v1/functions", json=body)
    assert r.status_code == 201, r.text
    return name


def _call(client: httpx.Client, name: str, op: str, **event: Any) -> Any:
    r = client.post(f"/api/v1/functions/{name}/invoke", json={"op": op, **event})
    assert r.status_code == 200, r.text
    record = r.json()
    if record["status"] != "SUCCEEDED":
        logs = client.get(f"/api/v1/functions/{name}/logs", params={"invocation_id": record["invocation_id"]})
        pytest.fail(f"{op}: {record['error']}\n" + "\n".join(i["message"] for i in logs.json()["items"]))
    return record["result"]


def test_background_thread_and_task_do_not_survive_the_invocation(client) -> None:
    name = _fn(client)
    baseline = _call(client, name, "state")
    assert baseline["threads"] == 1
    assert _call(client, name, "thread") == 2
    after = _call(client, name, "state")
    assert after["threads"] == 1 and after["ticks"] == 0, after
    time.sleep(0.2)
    assert _call(client, name, "state")["ticks"] == 0, "nothing kept running between invocations"
    assert _call(client, name, "async_task") == "started"
    first = _call(client, name, "state")["ticks"]
    time.sleep(0.1)
    assert _call(client, name, "state")["ticks"] == first <= 1, "a task left on the event loop never runs again"


def test_finished_executor_threads_keep_the_warm_worker(client) -> None:
    name = _fn(client)
    assert [_call(client, name, "to_thread") for _ in range(3)] == [1, 2, 3], "the same warm worker answered"
    assert _call(client, name, "state")["threads"] == 1


def test_background_process_is_gone_before_the_next_invocation(client) -> None:
    name = _fn(client)
    pid = _call(client, name, "process")
    assert _call(client, name, "alive", pid=pid) is False


def test_tmp_is_capped_and_emptied(client) -> None:
    health = _confinement(client)
    assert health["private_tmp"], "a private /tmp needs root"
    assert health["tmp_max_bytes"] == TMP_MB << 20
    name = _fn(client, max_file_bytes=512 << 20, memory_mb=512)
    filled = _call(client, name, "fill")
    assert filled["error"] == "No space left on device", filled
    assert filled["written"] <= TMP_MB << 20
    state = _call(client, name, "state")
    assert state["tmp"] == [] and state["cwd"] == [] and state["var_tmp"] == [] and state["shm"] == [], state


def test_seccomp_denies_namespaces_mounts_and_ptrace(client) -> None:
    health = _confinement(client)
    assert health["seccomp"] is True, health
    assert health["seccomp_library"].startswith("libseccomp "), health
    name = _fn(client)
    result = _call(client, name, "syscalls")
    assert result == {
        "unshare_user": "Operation not permitted",
        "unshare_net": "Operation not permitted",
        "mount": "Operation not permitted",
        "ptrace": "Operation not permitted",
    }, result
    # the worker that was asked is still a normal, working worker
    assert _call(client, name, "state")["threads"] == 1


def test_deno_timers_and_temp_files_do_not_survive_the_invocation(client) -> None:
    health = _confinement(client)
    assert health["deno"]["available"], "the dev install includes deno (pip install 'aionix[deno]')"
    assert health["private_tmp"], "a private /tmp needs root"
    name = f"leftovers-deno-{uuid.uuid4().hex[:8]}"
    r = client.post("/api/v1/functions", json={"name": name, "runtime": "deno", "code": {"source": DENO}})
    assert r.status_code == 201, r.text
    assert _call(client, name, "timers") == "started"
    first = _call(client, name, "state")["ticks"]
    time.sleep(0.3)
    assert _call(client, name, "state")["ticks"] == first < 1000, "no timer of the last invocation fired since"
    assert _call(client, name, "write") == "wrote"
    assert _call(client, name, "state")["tmp"] == []
