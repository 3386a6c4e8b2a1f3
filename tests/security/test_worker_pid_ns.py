"""Issue 15, finding 8 (PID namespace): a function worker gets its own PID namespace and
`/proc` where the host allows (root with mount namespaces), so user code cannot list the
host's processes or read their command lines (the server's holds its data dir and port), and
`/healthz` says whether it is in force.

Before: a Python function saw every process of the host in `/proc`, the server's included.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverproc import ServerProcess

LIST = """import os
def handler(event, context):
    seen = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/cmdline', 'rb') as fh:
                    seen[entry] = fh.read().replace(b'\\0', b' ').decode('utf-8', 'replace')
            except OSError:
                seen[entry] = None
    return {'pid': os.getpid(), 'processes': seen}
"""
LOOP = "def handler(event, context):\n    while True:\n        pass\n"
DENO = """export default async function handler() {
  const seen = [];
  for await (const e of Deno.readDir('/proc')) if (/^[0-9]+$/.test(e.name)) seen.push(e.name);
  return seen;
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("pidns")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=120.0) as c:
        yield c


def confinement(client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        report = client.get("/healthz").json()["confinement"]
        if report.get("status") != "detecting" or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def deploy(client: httpx.Client, runtime: str, source: str, **config: Any) -> str:
    name = f"p-{uuid.uuid4().hex[:10]}"
    r = client.post("/api/v1/functions", json={"name": name, "runtime": runtime, "code": {"source": source}, **config})
    assert r.status_code == 201, r.text
    return name


def invoke(client: httpx.Client, name: str, event: Any = None) -> dict[str, Any]:
    r = client.post(f"/api/v1/functions/{name}/invoke", json=event)
    assert r.status_code == 200, r.text
    return r.json()


def test_healthz_reports_the_pid_namespace(admin: httpx.Client) -> None:
    report = confinement(admin)
    assert "pid_namespace" in report, report
    if os.geteuid() == 0 and report["private_tmp"]:
        assert report["pid_namespace"] is True, report


def test_a_function_cannot_see_the_servers_process(admin: httpx.Client, server: ServerProcess) -> None:
    assert server.proc is not None
    record = invoke(admin, deploy(admin, "python", LIST))
    assert record["status"] == "SUCCEEDED", record["error"]
    if not confinement(admin)["pid_namespace"]:  # not root: no namespaces, and /healthz says so
        assert os.geteuid() != 0 and record["result"]["pid"] != 2
        return
    seen = record["result"]["processes"]
    server_cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert str(server.data_dir) in server_cmdline  # what the function must not learn
    for pid, cmdline in seen.items():
        assert cmdline is None or str(server.data_dir) not in cmdline, (pid, cmdline)
    # only the namespace's init and the worker itself (plus the host's pid 1 never appears)
    assert record["result"]["pid"] == 2 and set(seen) <= {"1", "2"}, seen


def test_deno_sees_only_its_own_namespace(admin: httpx.Client) -> None:
    if not confinement(admin)["deno"]["available"]:
        r = admin.post("/api/v1/functions", json={"name": "d", "runtime": "deno", "code": {"source": DENO}})
        assert r.status_code == 422 and "deno" in r.text  # said plainly, never run half-confined
        return
    # Deno reads /proc only with a grant, and /proc is never grantable: it is simply denied
    record = invoke(admin, deploy(admin, "deno", DENO))
    assert record["status"] == "FAILED", record
    assert record["error"]["errorType"] in ("NotCapable", "PermissionDenied"), record["error"]


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        chain.append(pid)
    return chain


def _worker_processes(server_pid: int) -> int:
    """Live processes under the server (workers, their inits and supervisors, their children)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != b"Z" and server_pid in _ancestors(int(entry)):
            count += 1
    return count


def test_timeouts_and_cpu_limits_still_end_the_worker(admin: httpx.Client, server: ServerProcess) -> None:
    assert server.proc is not None
    before = _worker_processes(server.proc.pid)
    wall = deploy(admin, "python", LOOP, limits={"timeout_seconds": 1})
    cpu = deploy(admin, "python", LOOP, limits={"timeout_seconds": 120, "cpu_seconds": 1})
    for _ in range(2):
        record = invoke(admin, wall)
        assert record["status"] == "TIMED_OUT", record
    record = invoke(admin, cpu)
    assert record["error"]["error"] == "Function.Timeout" and "CPU time" in record["error"]["errorMessage"], record
    # the killed workers left nothing behind: no supervisor, init or worker process
    deadline = time.monotonic() + 10
    while _worker_processes(server.proc.pid) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _worker_processes(server.proc.pid) <= before
