"""StepFlow over HTTP, the peer harness's workloads against a real server process (durable SQLite,
synchronous=FULL as shipped; only the API rate limits are lifted, as a benchmark must):

- chain10_sync: 10 chained `set` states, 50 concurrent clients, `mode: sync` (durable transitions/s)
- async_starts: the same workflow started with `mode: async` by 50 clients (executions started/s)
- task_chain10: 10 `task` states calling the `transform` action, one client: p50/p99 latency
- parallel3: 3 branches of one `transform` task each, one client: p50/p99 latency

Besides wall figures (which follow the machine's load) it reports the server process's CPU time
(utime+stime from /proc/PID/stat over each run) per transition and per execution, much less
sensitive to other work on the machine. The client is a minimal keep-alive HTTP/1.1 client on
asyncio, so that the load generator costs as little CPU as it can.

    python -m bench throughput            # all, results in bench/results/throughput.json
    python bench/throughput.py [--seconds 8] [--only chain10_sync,task_chain10] [--profile OUT.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

CLIENTS = 50
TICKS = os.sysconf("SC_CLK_TCK")


def chain(n: int) -> dict[str, Any]:
    states: dict[str, Any] = {
        f"S{i}": {"type": "set", "value": {"i": i, "v": "{% input.v + 1 %}"}, "next": f"S{i + 1}"} for i in range(n - 1)
    }
    states[f"S{n - 1}"] = {"type": "set", "value": {"v": "{% input.v + 1 %}"}, "end": True}
    return {"entry": "S0", "states": states}


def _transform(nxt: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "type": "task",
        "action": "transform",
        "parameters": {"expression": "{'v': v + 1}", "data": "{% input %}"},
    }
    if nxt is None:
        state["end"] = True
    else:
        state["next"] = nxt
    return state


def task_chain(n: int) -> dict[str, Any]:
    return {"entry": "T0", "states": {f"T{i}": _transform(f"T{i + 1}" if i < n - 1 else None) for i in range(n)}}


PARALLEL3 = {
    "entry": "P",
    "states": {
        "P": {
            "type": "parallel",
            "branches": [{"entry": f"B{i}", "states": {f"B{i}": _transform(None)}} for i in range(3)],
            "end": True,
        }
    },
}


class Conn:
    """One keep-alive HTTP/1.1 connection (enough for the server's JSON answers)."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, (json.loads(payload) if payload else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def closed_loop(port: int | list[int], key: str, workflow: str, mode: str, seconds: float) -> tuple[int, float]:
    """CLIENTS clients, each starting executions back to back for `seconds`; (count, elapsed).
    Several ports (nodes): client i talks to port i mod their number."""
    ports = [port] if isinstance(port, int) else port
    stop = time.perf_counter() + seconds
    counts = [0] * CLIENTS
    path = f"/api/v1/workflows/{workflow}/executions"
    want = 200 if mode == "sync" else 202

    async def client(i: int) -> None:
        conn = Conn(ports[i % len(ports)], key)
        try:
            while time.perf_counter() < stop:
                status, body = await conn.request("POST", path, {"input": {"v": i}, "mode": mode})
                if status != want:
                    raise RuntimeError(f"{status}: {body}")
                counts[i] += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return sum(counts), time.perf_counter() - t0


async def latency(port: int, key: str, workflow: str, runs: int) -> list[float]:
    conn = Conn(port, key)
    path = f"/api/v1/workflows/{workflow}/executions"
    lat = []
    try:
        for i in range(runs):
            t0 = time.perf_counter()
            status, body = await conn.request("POST", path, {"input": {"v": i}, "mode": "sync"})
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200 or body["status"] != "SUCCEEDED":
                raise RuntimeError(f"{status}: {body}")
    finally:
        conn.close()
    return lat


async def _commits(port: int, key: str) -> tuple[float, float, float]:
    """(group commits, transactions, seconds spent committing) so far, from /metrics."""
    conn = Conn(port, key)
    try:
        conn_head = f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        await conn.request("GET", "/healthz")  # opens the connection
        assert conn.writer is not None and conn.reader is not None
        conn.writer.write(conn_head.encode())
        await conn.reader.readline()
        length = 0
        while (line := await conn.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        text = (await conn.reader.readexactly(length)).decode()
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        for name in (
            "aionix_store_commit_seconds_count",
            "aionix_store_commit_seconds_sum",
            "aionix_store_commit_transactions_sum",
        ):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    return (
        values.get("aionix_store_commit_seconds_count", 0.0),
        values.get("aionix_store_commit_transactions_sum", 0.0),
        values.get("aionix_store_commit_seconds_sum", 0.0),
    )


async def _wait_idle(port: int, key: str) -> None:
    """Until the async starts have finished (no RUNNING execution left)."""
    conn = Conn(port, key)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            _, body = await conn.request("GET", "/api/v1/executions?status=RUNNING&limit=1")
            if not body["items"]:
                return
            await asyncio.sleep(0.2)
    finally:
        conn.close()


class Server:
    def __init__(self, root: Path, profile: str | None = None, tree: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
        if tree:  # another checkout (e.g. `git archive` of an earlier commit), for before/after
            env["PYTHONPATH"] = tree
        env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(root / "cred")
        # the benchmark's only departure from the defaults: no API rate limit
        env["AIONIX_SECURITY_RATE_LIMIT_PER_KEY"] = "1000000"
        env["AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST"] = "1000000"
        env["AIONIX_SECURITY_RATE_LIMIT_PER_IP"] = "1000000"
        env["AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST"] = "1000000"
        self.root = root
        args = [sys.executable]
        if profile:
            args += ["-m", "cProfile", "-o", profile]
        args += ["-m", "aionix", "--port", "0", "--port-file", str(root / "port"), "--data-dir", str(root / "data")]
        self.log = open(root / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tree)
        deadline = time.monotonic() + 60
        port_file = root / "port"
        while not (port_file.exists() and port_file.read_text().endswith("\n")):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((root / "server.log").read_text())
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.key = tomllib.loads((root / "cred").read_text())["default"]["api_key"]

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGINT)  # a clean stop (cProfile writes its file)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def _bench(server: Server, seconds: float, only: set[str] | None) -> dict[str, Any]:
    port, key = server.port, server.key
    conn = Conn(port, key)
    for name, definition in (("chain10", chain(10)), ("taskchain10", task_chain(10)), ("parallel3", PARALLEL3)):
        status, body = await conn.request("POST", "/api/v1/workflows", {"name": name, "definition": definition})
        if status != 201:
            raise RuntimeError(f"{status}: {body}")
    conn.close()
    figures: dict[str, Any] = {"load1_before": round(os.getloadavg()[0], 2)}

    def want(name: str) -> bool:
        return only is None or name in only

    # warm every path (plan caches, statements, imports on first use)
    await latency(port, key, "chain10", 20)
    await latency(port, key, "taskchain10", 20)
    await latency(port, key, "parallel3", 20)

    if want("chain10_sync"):
        k0 = await _commits(port, key)
        c0 = server.cpu()
        n, elapsed = await closed_loop(port, key, "chain10", "sync", seconds)
        cpu = server.cpu() - c0
        k1 = await _commits(port, key)
        figures["chain10_sync_commits_per_execution"] = round((k1[0] - k0[0]) / n, 3)
        figures["chain10_sync_transactions_per_execution"] = round((k1[1] - k0[1]) / n, 2)
        figures["chain10_sync_commit_busy_share"] = round((k1[2] - k0[2]) / elapsed, 2)
        figures["chain10_sync_transitions_per_s"] = round(n * 10 / elapsed)
        figures["chain10_sync_executions_per_s"] = round(n / elapsed)
        figures["chain10_sync_cpu_us_per_transition"] = round(cpu * 1e6 / (n * 10), 1)
        figures["chain10_sync_server_cpu_share"] = round(cpu / elapsed, 2)
    if want("async_starts"):
        c0 = server.cpu()
        n, elapsed = await closed_loop(port, key, "chain10", "async", seconds)
        started_cpu = server.cpu() - c0
        await _wait_idle(port, key)
        cpu = server.cpu() - c0
        figures["async_starts_per_s"] = round(n / elapsed)
        figures["async_cpu_us_per_execution"] = round(cpu * 1e6 / n, 1)  # start + its 10 states
        figures["async_cpu_share_while_starting"] = round(started_cpu / elapsed, 2)
    for name, workflow, runs in (("task_chain10", "taskchain10", 200), ("parallel3", "parallel3", 300)):
        if want(name):
            c0 = server.cpu()
            lat = await latency(port, key, workflow, runs)
            cpu = server.cpu() - c0
            figures[f"{name}_p50_ms"] = round(percentile(lat, 50), 2)
            figures[f"{name}_p99_ms"] = round(percentile(lat, 99), 2)
            figures[f"{name}_min_ms"] = round(min(lat), 2)
            figures[f"{name}_cpu_us_per_execution"] = round(cpu * 1e6 / runs, 1)
    figures["load1_after"] = round(os.getloadavg()[0], 2)
    return figures


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of a process (where the server's time goes besides the loop)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = f"{(task / 'comm').read_text().strip()}:{task.name}"
            out[name] = out.get(name, 0.0) + cpu_seconds_path(task / "stat")
        except FileNotFoundError:
            continue
    return out


def cpu_seconds_path(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(
    seconds: float = 8.0,
    only: set[str] | None = None,
    profile: str | None = None,
    pyspy: str | None = None,
    tree: str | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), profile, tree)
        try:
            spy = None
            if pyspy:  # dev only: `pip install py-spy`; samples every thread of the server
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "-p",
                        str(server.proc.pid),
                        "-o",
                        pyspy,
                        "-f",
                        "raw",
                        "-r",
                        os.environ.get("PYSPY_RATE", "250"),
                        "--threads",
                        *(["--native"] if os.environ.get("PYSPY_NATIVE") else []),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            from bench.table import MachineState

            machine = MachineState()
            before = thread_cpu(server.proc.pid)
            figures = asyncio.run(_bench(server, seconds, only))
            figures["machine"] = machine.figures()
            after = thread_cpu(server.proc.pid)
            figures["thread_cpu_s"] = {
                k: round(v - before.get(k, 0.0), 2) for k, v in after.items() if v - before.get(k, 0.0) > 0.005
            }
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
            return figures
        finally:
            server.stop()


def run() -> dict[str, Any]:
    from bench.table import print_table

    figures = measure()
    print_table(
        [
            ("chain10, 50 clients, sync", figures["chain10_sync_transitions_per_s"], "durable transitions/s"),
            ("chain10 server CPU", figures["chain10_sync_cpu_us_per_transition"], "µs/transition"),
            ("async starts, 50 clients", figures["async_starts_per_s"], "executions/s"),
            ("async server CPU", figures["async_cpu_us_per_execution"], "µs/execution (start + 10 states)"),
            ("task chain10 (transform) p50", figures["task_chain10_p50_ms"], "ms"),
            ("task chain10 server CPU", figures["task_chain10_cpu_us_per_execution"], "µs/execution"),
            ("parallel3 p50", figures["parallel3_p50_ms"], "ms"),
            ("load average (1 min) before/after", f"{figures['load1_before']}/{figures['load1_after']}", ""),
            ("speed reference before (bench/table.py)", figures["machine"]["reference_ms"], "ms"),
            ("CPU stolen by the hypervisor meanwhile", figures["machine"].get("steal_pct"), "%"),
        ]
    )
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--only", default=None)
    p.add_argument("--profile", default=None, help="run the server under cProfile, writing this file")
    p.add_argument("--pyspy", default=None, help="sample the server with py-spy (raw format) into this file")
    p.add_argument("--tree", default=None, help="run the server from this checkout (PYTHONPATH) instead")
    a = p.parse_args()
    only = set(a.only.split(",")) if a.only else None
    print(json.dumps(measure(a.seconds, only, a.profile, a.pyspy, a.tree), indent=1))
