"""Issue 15, finding 1: WASM user code never runs in the server process, and a read grant
never reaches the server's own state.

Before: wasmtime ran inside the server, `permissions.read: ["/"]` preopened the host's root
as root (credentials file, master.key, /etc/shadow, /proc/self/environ were readable) and a
module's memory was the server's memory. Now a WASM function runs in a confined worker
process (own uid, namespaces, cgroup) and its read grants are admin-only, under
`[functions] read_roots`, never into or above the data, config or credentials directories.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverproc import ServerProcess

MiB = 1024 * 1024

LOOP = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
# grows its memory to 300 MiB and writes every byte of it
FILL = """(module (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 4799)))
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 314572800))))"""


def reader(path: str) -> str:
    """A module that opens `path` relative to its first preopened directory (fd 3), following
    symlinks, and prints what it read; a failed open exits with the WASI errno (a failed read: 1)."""
    return f"""(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{path}")
  (func (export "_start") (local $err i32)
    (local.set $err (call $open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const {len(path)})
                                (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $err) (then (call $exit (local.get $err))))
    (i32.store (i32.const 32) (i32.const 1024))
    (i32.store (i32.const 36) (i32.const 4096))
    (local.set $err (call $read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 40)))
    (if (local.get $err) (then (call $exit (i32.const 1))))
    (i32.store (i32.const 36) (i32.load (i32.const 40)))
    (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 44)))))"""


def outside_tmp_dir(tmp_path: Path) -> Path:
    """A directory function workers can see: with the private /tmp of a root host, /tmp (and
    so pytest's tmp_path) is each worker's own, so the shared data lives under /srv."""
    if os.geteuid() == 0:
        path = Path("/srv") / f"aionix-test-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True, mode=0o755)
        os.chmod(path, 0o755)
        return path
    return tmp_path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = outside_tmp_dir(tmp_path_factory.mktemp("wasm-shared"))
    for sub, text in (("granted", '"hi from the granted root"'), ("other", '"not granted"')):
        (path / sub).mkdir(mode=0o755)
        (path / sub / "file.json").write_text(text)
        os.chmod(path / sub / "file.json", 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("wasm-confined")
    # two read roots: the shared tree, and the server's own directory (which holds the data
    # dir and the credentials file: nothing in it may be granted even though it is a root)
    proc = ServerProcess(root, env={"AIONIX_FUNCTIONS_READ_ROOTS": f"{shared},{root}"}).start()
    (shared / "granted" / "to-data").symlink_to(proc.data_dir)
    yield proc
    proc.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=120.0) as c:
        yield c


def deploy(client: httpx.Client, source: str, **config: Any) -> httpx.Response:
    body = {"name": f"w-{uuid.uuid4().hex[:10]}", "runtime": "wasm", "code": {"source": source}, **config}
    return client.post("/api/v1/functions", json=body)


def invoke(client: httpx.Client, name: str, **params: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/functions/{name}/invoke", params=params)
    assert r.status_code in (200, 202), r.text
    return r.json()


def test_server_state_is_never_grantable(admin: httpx.Client, server: ServerProcess, shared: Path) -> None:
    refused = [
        "/",
        str(server.data_dir),
        str(server.data_dir / "functions"),
        str(server.credentials.parent),  # the credentials file's directory (a read root here)
        str(server.data_dir) + "/../data",
        str(shared / "granted" / "to-data"),  # a symlink into the data dir
        "/proc",
        "/proc/self",
        "/etc",  # not under any read root
    ]
    for path in refused:
        r = deploy(admin, reader("master.key"), permissions={"read": [path]})
        assert r.status_code == 422, (path, r.status_code, r.text)
        error = r.json()["error"]
        assert error["details"][0]["field"] == "permissions.read.0", (path, error)


def test_a_granted_root_is_readable_and_nothing_beyond_it(admin: httpx.Client, shared: Path) -> None:
    granted = str(shared / "granted")
    made = deploy(admin, reader("file.json"), permissions={"read": [granted]})
    assert made.status_code == 201, made.text
    record = invoke(admin, made.json()["name"])
    assert record["status"] == "SUCCEEDED", record
    assert record["result"] == "hi from the granted root"
    for escape in ("../other/file.json", "to-data/master.key", "/etc/passwd"):
        name = deploy(admin, reader(escape), permissions={"read": [granted]}).json()["name"]
        record = invoke(admin, name)
        assert record["status"] == "FAILED" and record["error"]["errorType"] == "ExitError", (escape, record["error"])
        assert "code 1\n" not in record["error"]["errorMessage"] + "\n", record  # the open failed, not a read


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        chain.append(pid)
    return chain


def _wasm_workers(server_pid: int) -> list[tuple[int, int]]:
    """(pid, uid) of the server's descendants that are WASM workers."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if b"--worker" not in cmdline and b"aionix.functions.worker" not in cmdline:
            continue
        if b'"mode": "wasm"' not in cmdline or server_pid not in _ancestors(int(entry)):
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        found.append((int(entry), uid))
    return found


def test_wasm_runs_in_a_confined_worker_process(admin: httpx.Client, server: ServerProcess) -> None:
    assert server.proc is not None
    made = deploy(admin, LOOP, limits={"timeout_seconds": 6})
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    started = invoke(admin, name, mode="async")
    deadline = time.monotonic() + 5
    workers: list[tuple[int, int]] = []
    # until the module runs: a worker as its own uid (root hosts), or any worker
    while time.monotonic() < deadline:
        time.sleep(0.1)
        workers = _wasm_workers(server.proc.pid)
        if workers and (os.geteuid() != 0 or any(uid != 0 for _, uid in workers)):
            break
    assert workers, "no WASM worker process under the server while the module ran"
    assert all(pid != server.proc.pid for pid, _ in workers)
    if os.geteuid() == 0:
        assert any(uid != 0 for _, uid in workers), f"the module runs as root: {workers}"
    record = started
    while record["status"] == "RUNNING" and time.monotonic() < deadline + 15:
        time.sleep(0.2)
        record = admin.get(f"/api/v1/functions/{name}/invocations/{started['invocation_id']}").json()
    assert record["status"] == "TIMED_OUT", record


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) * 1024


def test_module_memory_is_not_the_servers(admin: httpx.Client, server: ServerProcess) -> None:
    assert server.proc is not None
    made = deploy(admin, FILL, limits={"memory_mb": 512, "timeout_seconds": 30})
    assert made.status_code == 201, made.text
    before = _peak_rss(server.proc.pid)
    record = invoke(admin, made.json()["name"])
    assert record["status"] == "SUCCEEDED", record["error"]
    assert record["max_memory_used_mb"] >= 290, record
    grown = _peak_rss(server.proc.pid) - before
    assert grown < 100 * MiB, f"the server's peak RSS grew by {grown / MiB:.0f} MB"
