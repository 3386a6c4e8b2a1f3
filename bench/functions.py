"""Functions: invocation latency per runtime through the HTTP API of a real server — cold (a new
version, so a new worker or a new compiled module) and warm p50/p99 over 500 calls — then
invocations/s with 8 concurrent callers, and the server's peak RSS with 10 warm Python workers.
`warm_runtime_p50_ms` is the server-side duration of the call (worker round trip, or the WASM
run) without HTTP."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import httpx

from bench.table import percentile, print_table

ROOT = Path(__file__).resolve().parent.parent
WARM_CALLS = 500
COLD_CALLS = 5
CONCURRENCY = 8
THROUGHPUT_CALLS = 800

SOURCES = {
    "python": {"source": "def handler(event, context):\n    return {'n': event['n']}\n"},
    "deno": {"source": "export default function handler(event) { return { n: event.n }; }\n"},
    "wasm": {"wasm_base64": base64.b64encode((ROOT / "examples/functions/wasm-echo/echo.wasm").read_bytes()).decode()},
}


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


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env.update(
        {
            "AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp / "credentials"),
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
            "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
            "AIONIX_FUNCTIONS_POOL_SIZE": "10",
            "AIONIX_LOGGING_ACCESS_LOG": "false",
        }
    )
    with open(tmp / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aionix",
                "--port",
                "0",
                "--port-file",
                str(tmp / "port"),
                "--data-dir",
                str(tmp / "data"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{_wait_port_file(tmp / 'port', proc, 60)}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    key = tomllib.loads((tmp / "credentials").read_text())["default"]["api_key"]
    return proc, url, key


def _invoke(
    client: httpx.Client, name: str, n: int, qualifier: str | None = None, runtime_ms: list[float] | None = None
) -> float:
    started = time.perf_counter()
    r = client.post(
        f"/api/v1/functions/{name}/invoke", json={"n": n}, params={"qualifier": qualifier} if qualifier else None
    )
    elapsed = (time.perf_counter() - started) * 1000
    if r.status_code != 200 or r.json()["status"] != "SUCCEEDED":
        raise RuntimeError(f"{name}: {r.text[:300]}")
    if runtime_ms is not None:
        runtime_ms.append(r.json()["duration_ms"])
    return elapsed


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _bench_runtime(client: httpx.Client, runtime: str, url: str, key: str) -> dict[str, float]:
    name = f"bench-{runtime}"
    body = {
        "name": name,
        "runtime": runtime,
        "code": SOURCES[runtime],
        "limits": {"timeout_seconds": 30, "memory_mb": 256},
    }
    r = client.post("/api/v1/functions", json=body)
    if r.status_code != 201:
        raise RuntimeError(r.text)
    cold = []
    for i in range(COLD_CALLS):
        # a config change publishes a new version: new workers / a newly compiled module
        version = client.post(
            f"/api/v1/functions/{name}/versions", json={"config": {"env": {"COLD": str(i)}, "limits": body["limits"]}}
        ).json()["version"]
        if runtime == "wasm":  # compiled modules are cached per code sha256: change the code
            wat = (ROOT / "examples/functions/wasm-echo/echo.wat").read_text() + f"\n;; {i}\n"
            version = client.post(f"/api/v1/functions/{name}/versions", json={"code": {"source": wat}}).json()[
                "version"
            ]
        cold.append(_invoke(client, name, i, version))
    for i in range(20):
        _invoke(client, name, i)
    inside: list[float] = []
    warm = [_invoke(client, name, i, runtime_ms=inside) for i in range(WARM_CALLS)]
    counter = iter(range(THROUGHPUT_CALLS))
    lock = threading.Lock()
    errors: list[str] = []

    def caller() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    _invoke(c, name, i)
                except Exception as exc:
                    errors.append(str(exc))

    threads = [threading.Thread(target=caller) for _ in range(CONCURRENCY)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = THROUGHPUT_CALLS / (time.perf_counter() - started)
    if errors:
        raise RuntimeError(f"{len(errors)} failed calls: {errors[0]}")
    return {
        "cold_p50_ms": round(percentile(cold, 50), 2),
        "warm_p50_ms": round(percentile(warm, 50), 2),
        "warm_p99_ms": round(percentile(warm, 99), 2),
        "warm_runtime_p50_ms": round(percentile(inside, 50), 2),
        "invocations_per_s_8_callers": round(rate, 1),
    }


def _rss_with_warm_python_workers(client: httpx.Client, url: str, key: str, pid: int) -> dict[str, float]:
    name = "bench-rss"
    client.post(
        "/api/v1/functions",
        json={
            "name": name,
            "runtime": "python",
            "code": {"source": "import time\n\ndef handler(event, context):\n    time.sleep(1.5)\n    return 1\n"},
            "limits": {"timeout_seconds": 60},
        },
    )
    barrier = threading.Barrier(10)
    errors: list[str] = []

    def call() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            barrier.wait()
            r = c.post(f"/api/v1/functions/{name}/invoke", json={})
            if r.status_code != 200 or r.json()["status"] != "SUCCEEDED":
                errors.append(r.text[:300])

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed calls: {errors[0]}")
    time.sleep(1.5)  # /healthz counts refresh every second
    warm = client.get("/healthz").json()["confinement"]["python"]["warm_workers"]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    worker_rss = sum(_rss_kb(int(c), "VmRSS") for c in children if Path(f"/proc/{c}").exists())
    return {
        "warm_python_workers": warm,
        "server_peak_rss_mb": round(_rss_kb(pid, "VmHWM") / 1024, 1),
        "server_rss_mb": round(_rss_kb(pid, "VmRSS") / 1024, 1),
        "workers_rss_total_mb": round(worker_rss / 1024, 1),
    }


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = _start(Path(tmp))
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
                figures: dict[str, dict[str, float]] = {}
                # first, so that exactly the 10 workers of one function are warm
                memory = _rss_with_warm_python_workers(client, url, key, proc.pid)
                deno = client.get("/healthz").json()["confinement"]["deno"]["available"]
                for runtime in ("python", "wasm", "deno") if deno else ("python", "wasm"):
                    figures[runtime] = _bench_runtime(client, runtime, url, key)
                figures["memory"] = memory
                figures["host"] = {"load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count() or 0}
        finally:
            proc.terminate()
            proc.wait(30)
    rows = []
    for runtime, data in figures.items():
        for metric, value in data.items():
            unit = (
                "ms"
                if metric.endswith("_ms")
                else "MB"
                if metric.endswith("_mb")
                else "/s"
                if "per_s" in metric
                else ""
            )
            rows.append((f"{runtime} {metric}", value, unit))
    print_table(rows)
    return figures
