"""Building `dist/aionix` (through `make binary`, which skips an up-to-date build) and running it
as a user on an offline machine would: a copy in an empty directory, started under `env -i`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "dist" / "aionix"


def build_and_install(into: Path, timeout: float = 1500) -> Path:
    """`make binary` (a no-op when the inputs' hash matches the last build), then `install` the
    result into `into`. Test runs side by side in one checkout take turns (one build/ and dist/)."""
    import fcntl

    lock_path = REPO / "build" / ".aionix-binary.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["make", "--no-print-directory", "binary"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"make binary failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
            )
        if not os.access(BUILT, os.X_OK):
            raise RuntimeError(f"make binary succeeded but {BUILT} is missing:\n{result.stdout[-4000:]}")
        return install(BUILT, into)


def install(binary: Path, into: Path) -> Path:
    """Copy the one file into an empty directory (as a user would), with an `aio` symlink to it."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / "aionix"
    shutil.copy2(binary, target)
    (into / "aio").symlink_to("aionix")
    return target


def bare_env(home: Path, credentials: Path) -> list[str]:
    """`env -i` with only HOME and the credentials file: no PATH, no virtualenv, nothing else."""
    return ["env", "-i", f"HOME={home}", f"AIONIX_SECURITY_CREDENTIALS_FILE={credentials}"]


def run_bare(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `./<args[0]> args[1:]` in `home` under `env -i`."""
    return subprocess.run(
        [*bare_env(home, home / "credentials"), f"./{args[0]}", *args[1:]],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class BinaryServer:
    """`./aionix --port 0 --port-file F` started in its directory (data in ./data) under `env -i`:
    the binary binds a port itself and reports it (a later start asks for the same port again,
    or any when that one is taken by now)."""

    def __init__(self, home: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.credentials = home / "credentials"
        self.log_path = home / "server.log"
        self.extra_env = extra_env or {}
        self.port_file = home / "port"
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_key: str | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the binary server has no port before its first start")
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> float:
        """Start and wait for the first `GET /healthz` 200; the seconds that took."""
        if self.port is not None:
            try:
                return self._start(self.port, timeout)
            except PortTaken:
                pass
        return self._start(0, timeout)

    def _start(self, port: int, timeout: float) -> float:
        self.port_file.unlink(missing_ok=True)
        log_start = len(self.log())
        command = [
            *bare_env(self.home, self.credentials),
            *(f"{k}={v}" for k, v in self.extra_env.items()),
            "./aionix",
            "--port",
            str(port),
            "--port-file",
            str(self.port_file),
        ]
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if port and "cannot listen on" in self.log()[log_start:]:
                    raise PortTaken(port)
                raise RuntimeError(f"the binary exited with {self.proc.returncode}:\n{self.log()}")
            try:
                text = self.port_file.read_text()
            except FileNotFoundError:
                text = ""
            if not text.endswith("\n"):
                time.sleep(0.02)
                continue
            self.port = int(text)
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        else:
            self.kill()
            raise RuntimeError(f"the binary did not answer /healthz within {timeout}s:\n{self.log()}")
        elapsed = time.monotonic() - started
        if self.admin_key is None:
            self.admin_key = tomllib.loads(self.credentials.read_text())["default"]["api_key"]
        return elapsed

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 120.0), **kwargs)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a clean shutdown) and wait; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


class PortTaken(Exception):
    """The port of the previous start is taken by now."""
