"""The single executable: size, `--version` time, cold start until every service answers (the
`--port-file` is written then; median of 5, fresh data dir and restart; `bench/start.py` measures
the first `/healthz` 200, which comes earlier), idle RSS, and the first Python function call (which
starts a worker: the binary re-invoked as `aionix --worker`). Each start runs a copy of
dist/aionix in an empty directory under `env -i`, as on an offline machine. Builds the binary
with `make binary` when it is missing or stale."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

from bench.table import print_table

REPO = Path(__file__).resolve().parents[1]
BINARY = REPO / "dist" / "aionix"
RUNS = 5
FUNCTION = "def handler(event, context):\n    return {'n': event['n'] + 1}\n"


def _wait_port_file(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port `aionix --port 0 --port-file PATH` bound, once it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        time.sleep(0.005)
    raise RuntimeError(f"the server wrote no port file within {timeout} s")


def _env(home: Path) -> list[str]:
    return ["env", "-i", f"HOME={home}", f"AIONIX_SECURITY_CREDENTIALS_FILE={home / 'credentials'}"]


def _start(home: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    (home / "port").unlink(missing_ok=True)
    started = time.perf_counter()
    log = open(home / "server.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [*_env(home), "./aionix", "--port", "0", "--port-file", str(home / "port")],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{_wait_port_file(home / 'port', proc, 120)}"
    deadline = started + 120
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the binary exited with {proc.returncode}: {(home / 'server.log').read_text()[-2000:]}"
                )
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return proc, url, time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.005)
    _stop(proc)
    raise RuntimeError("no /healthz 200 within 120 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (and their reaped children): start cost
    independent of how busy the machine is."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _tree(pid: int) -> list[int]:
    """The bootloader and its Python child (and any function workers below them)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return found


def _install(into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BINARY, into / "aionix")
    return into


def _ensure_binary() -> None:
    subprocess.run(["make", "--no-print-directory", "binary"], cwd=REPO, check=True, timeout=1800)


def run() -> dict:
    _ensure_binary()
    size_mb = BINARY.stat().st_size / 1e6
    figures: dict[str, float] = {"size_mb": round(size_mb, 1)}
    with tempfile.TemporaryDirectory(prefix="aionix-bench-") as tmp:
        root = Path(tmp)
        version_times = []
        home = _install(root / "version")
        version_cpu = []
        for _ in range(RUNS):
            before = os.times()
            t = time.perf_counter()
            subprocess.run([*_env(home), "./aionix", "--version"], cwd=home, check=True, capture_output=True)
            version_times.append(time.perf_counter() - t)
            after = os.times()
            version_cpu.append(
                after.children_user - before.children_user + after.children_system - before.children_system
            )
        figures["version_s_median"] = round(statistics.median(version_times), 3)
        figures["version_cpu_s_median"] = round(statistics.median(version_cpu), 3)

        fresh, restart, restart_cpu = [], [], []
        for i in range(RUNS):
            home = _install(root / f"start{i}")
            proc, _url, elapsed = _start(home)  # first start: creates the database, keys, master key
            fresh.append(elapsed)
            _stop(proc)
            proc, _url, elapsed = _start(home)  # a restart on existing data
            restart.append(elapsed)
            restart_cpu.append(_cpu_seconds(_tree(proc.pid)))
            _stop(proc)
        figures["cold_start_fresh_s_median"] = round(statistics.median(fresh), 3)
        figures["cold_start_restart_s_median"] = round(statistics.median(restart), 3)
        figures["cold_start_restart_cpu_s_median"] = round(statistics.median(restart_cpu), 3)

        home = _install(root / "idle")
        proc, url, _ = _start(home)
        try:
            key = tomllib.loads((home / "credentials").read_text())["default"]["api_key"]
            time.sleep(3)
            pids = _tree(proc.pid)
            figures["idle_rss_server_mb"] = round(max(_rss_mb(p) for p in pids), 1)
            figures["idle_rss_total_mb"] = round(sum(_rss_mb(p) for p in pids), 1)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
                c.post(
                    "/api/v1/functions",
                    json={"name": "bench-fn", "runtime": "python", "code": {"source": FUNCTION, "filename": "main.py"}},
                ).raise_for_status()
                t = time.perf_counter()
                first = c.post("/api/v1/functions/bench-fn/invoke", json={"n": 1}).json()
                figures["first_python_call_ms"] = round((time.perf_counter() - t) * 1000, 1)
                if first.get("status") != "SUCCEEDED" or first.get("result") != {"n": 2}:
                    raise RuntimeError(f"the first function call failed: {first}")
                warm = []
                for i in range(20):
                    t = time.perf_counter()
                    c.post("/api/v1/functions/bench-fn/invoke", json={"n": i}).raise_for_status()
                    warm.append(time.perf_counter() - t)
                figures["warm_python_call_ms_median"] = round(statistics.median(warm) * 1000, 2)
        finally:
            _stop(proc)
    print_table(
        [
            ("binary size", figures["size_mb"], "MB"),
            ("./aionix --version (median of 5)", round(figures["version_s_median"] * 1000), "ms"),
            ("CPU time of ./aionix --version (median of 5)", round(figures["version_cpu_s_median"] * 1000), "ms"),
            (
                "cold start until every service answers, fresh data (median of 5)",
                round(figures["cold_start_fresh_s_median"] * 1000),
                "ms",
            ),
            (
                "cold start until every service answers, restart (median of 5)",
                round(figures["cold_start_restart_s_median"] * 1000),
                "ms",
            ),
            (
                "CPU time of that restart (median of 5)",
                round(figures["cold_start_restart_cpu_s_median"] * 1000),
                "ms",
            ),
            ("idle RSS, server process", figures["idle_rss_server_mb"], "MB"),
            ("idle RSS, bootloader + server", figures["idle_rss_total_mb"], "MB"),
            ("first Python function call (starts a worker)", figures["first_python_call_ms"], "ms"),
            ("warm Python function call over HTTP (median of 20)", figures["warm_python_call_ms_median"], "ms"),
        ]
    )
    return figures
