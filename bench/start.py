"""Start time of the three ways to run Aionix: the source install (`.venv/bin/aionix`), the
one-file executable (`make binary` → dist/aionix) and the one-directory build (`make
binary-dir` → the tarball, unpacked once into an empty directory). For each, the median of N
restarts on an existing data dir (and of N first starts on a fresh one) of:

- the wall time from `exec` to the first `GET /healthz` 200 (the URL is the first line the
  server prints once it answers; `--port 0`, so no port is guessed) and to the first
  authenticated API call (`GET /api/v1/workflows`, which needs StepFlow loaded) answered 200;
- the CPU time (user + system) of the server's processes at those two moments: the cost of a
  start, much less sensitive than the wall time to what else the machine is running;
- the resident memory of the server process 3 s after the start (idle).

A "fresh" start of the one file is also its first start in that HOME: it includes unpacking the
program into the user's cache (~/.cache/aionix/<hash>/), which restarts reuse.

Every start runs under `env -i` in its own directory, as on an offline machine. The machine's
load average is recorded with each variant: on a shared machine, compare figures taken at a
similar load. `AIONIX_BENCH_START_RUNS` sets N (default 7); `AIONIX_BENCH_START_ONLY` a comma
list of variants (source, onefile, onedir). Builds the binaries with make when missing or stale.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

from bench.binary import _cpu_seconds, _rss_mb, _tree
from bench.table import print_table

REPO = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("AIONIX_BENCH_START_RUNS", "7"))
VARIANTS = ("source", "onefile", "onedir")
ONEDIR_TARBALL = REPO / "dist" / "aionix-onedir.tar.gz"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _install(variant: str, into: Path) -> list[str]:
    """The command that starts `variant`, installed under `into` (the binaries copied or unpacked
    there, as a user would)."""
    into.mkdir(parents=True, exist_ok=True)
    if variant == "source":  # the entry point of the virtual environment running the benchmark
        return ["PYTHONPATH=" + str(REPO), str(Path(sys.executable).parent / "aionix")]
    if variant == "onefile":
        shutil.copy2(REPO / "dist" / "aionix", into / "aionix")
        return [str(into / "aionix")]
    with tarfile.open(ONEDIR_TARBALL) as tar:
        tar.extractall(into / "opt", filter="tar")
    return [str(into / "opt" / "aionix" / "aionix")]


def _start(cmd: list[str], home: Path) -> dict[str, float]:
    """One start: seconds and CPU seconds to the first /healthz 200 and the first API call."""
    env = ["env", "-i", f"HOME={home}", f"AIONIX_SECURITY_CREDENTIALS_FILE={home / 'credentials'}"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*env, *cmd, "--port", "0", "--data-dir", str(home / "data")],
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=open(home / "server.log", "ab"),  # noqa: SIM115 - the child holds it
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()  # the URL, once the server answers
        if not line.startswith("http"):
            raise RuntimeError(f"no URL on standard output: {(home / 'server.log').read_text()[-2000:]}")
        with httpx.Client(base_url=line, timeout=60) as client:
            if client.get("/healthz").status_code != 200:
                raise RuntimeError("/healthz did not answer 200")
            healthz = time.perf_counter() - started
            healthz_cpu = _cpu_seconds(_tree(proc.pid))
            key = tomllib.loads((home / "credentials").read_text())["default"]["api_key"]
            r = client.get("/api/v1/workflows", headers={"Authorization": f"Bearer {key}"})
            if r.status_code != 200:
                raise RuntimeError(f"the first API call answered {r.status_code}: {r.text[:300]}")
            api = time.perf_counter() - started
            api_cpu = _cpu_seconds(_tree(proc.pid))
        time.sleep(3)
        rss = max(_rss_mb(pid) for pid in _tree(proc.pid))  # the server (the one file's stub execs it: same pid)
        return {"healthz_s": healthz, "healthz_cpu_s": healthz_cpu, "api_s": api, "api_cpu_s": api_cpu, "rss_mb": rss}
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()


def _median(runs: list[dict[str, float]], key: str, scale: float = 1000) -> float:
    return round(statistics.median(r[key] for r in runs) * scale, 1)


def _variant(variant: str, root: Path) -> dict[str, object]:
    cmd = _install(variant, root / variant)
    fresh: list[dict[str, float]] = []
    restart: list[dict[str, float]] = []
    load_before = _load()
    for i in range(RUNS):
        home = root / variant / f"home{i}"
        home.mkdir()
        fresh.append(_start(cmd, home))  # creates the database, the master key, the first key
        restart.append(_start(cmd, home))  # the usual start: existing data
    out: dict[str, object] = {
        "runs": RUNS,
        "load_before": load_before,
        "load_after": _load(),
        "healthz_ms_median": _median(restart, "healthz_s"),
        "healthz_ms_min": round(min(r["healthz_s"] for r in restart) * 1000, 1),
        "healthz_cpu_ms_median": _median(restart, "healthz_cpu_s"),
        "first_api_call_ms_median": _median(restart, "api_s"),
        "first_api_call_cpu_ms_median": _median(restart, "api_cpu_s"),
        "fresh_healthz_ms_median": _median(fresh, "healthz_s"),
        "fresh_first_api_call_ms_median": _median(fresh, "api_s"),
        "idle_rss_mb_median": _median(restart, "rss_mb", 1),
    }
    if variant == "onefile":
        out["file_mb"] = round((REPO / "dist" / "aionix").stat().st_size / 1e6, 1)
    if variant == "onedir":
        out["tarball_mb"] = round(ONEDIR_TARBALL.stat().st_size / 1e6, 1)
    return out


def run() -> dict:
    only = [v for v in os.environ.get("AIONIX_BENCH_START_ONLY", ",".join(VARIANTS)).split(",") if v]
    if "onefile" in only:
        subprocess.run(["make", "--no-print-directory", "binary"], cwd=REPO, check=True, timeout=1800)
    if "onedir" in only:
        subprocess.run(["make", "--no-print-directory", "binary-dir"], cwd=REPO, check=True, timeout=1800)
    figures: dict[str, object] = {}
    rows: list[tuple[str, object, str]] = []
    with tempfile.TemporaryDirectory(prefix="aionix-bench-start-") as tmp:
        for variant in only:
            f = _variant(variant, Path(tmp))
            figures[variant] = f
            rows += [
                (f"{variant}: load average before / after", f"{f['load_before']} / {f['load_after']}", ""),
                (f"{variant}: restart to /healthz 200 (median of {RUNS})", f["healthz_ms_median"], "ms"),
                (f"{variant}: CPU time to /healthz 200", f["healthz_cpu_ms_median"], "ms"),
                (f"{variant}: restart to the first API call 200", f["first_api_call_ms_median"], "ms"),
                (f"{variant}: CPU time to the first API call", f["first_api_call_cpu_ms_median"], "ms"),
                (f"{variant}: fresh data dir to /healthz 200", f["fresh_healthz_ms_median"], "ms"),
                (f"{variant}: idle RSS of the server process", f["idle_rss_mb_median"], "MB"),
            ]
            if "file_mb" in f:
                rows.append((f"{variant}: size of dist/aionix", f["file_mb"], "MB"))
            if "tarball_mb" in f:
                rows.append((f"{variant}: size of the tarball", f["tarball_mb"], "MB"))
    print_table(rows)
    return figures
