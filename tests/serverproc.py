"""Starting the real `aionix` server process on loopback, for end-to-end tests.

The server binds the port itself (`--port 0`: the kernel picks a free one) and reports it
through `--port-file` once it serves, so no test races another program for a "free" port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A port free right now, for external test services that cannot report the port they bound
    (never for the aionix server: it binds port 0 itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port_file(path: Path, proc: subprocess.Popen[bytes], timeout: float, log: Callable[[], str]) -> int:
    """The port `aionix --port-file PATH` wrote once serving (the file is replaced atomically)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):
            return int(text)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log()}")
        time.sleep(0.02)
    raise TimeoutError(f"server did not write {path} within {timeout}s:\n{log()}")


class ServerProcess:
    """A real server process with its own data dir and credentials file."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.credentials = self.root / "credentials"
        self.log_path = self.root / "server.log"
        self.extra_env = env or {}
        self.extra_args = args or []
        self.port_file = self.root / "port"
        #: the port the server bound; None until the first start (a later start asks for it again)
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_key: str | None = None
        #: the PostgreSQL database of this server under AIONIX_TEST_STORE=postgres (tests/pgstore.py)
        self.store_env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server has no port before its first start")
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
        env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(self.credentials)
        if self.store_env is None and "AIONIX_DATABASE_URL" not in self.extra_env:
            import pgstore

            self.store_env = pgstore.store_env(str(self.data_dir))
        env.update(self.store_env or {})
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start on the port of the previous start (clients made before keep working), or on a
        port the server picks when there was none or that one is taken by now."""
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if self.port is not None:
            try:
                return self._start(self.port, timeout)
            except PortTaken:
                pass
        return self._start(0, max(timeout - (time.monotonic() - started), 5.0))

    def _start(self, port: int, timeout: float) -> ServerProcess:
        self.port_file.unlink(missing_ok=True)
        log_start = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aionix",
                    "--port",
                    str(port),
                    "--port-file",
                    str(self.port_file),
                    "--data-dir",
                    str(self.data_dir),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        try:
            self.port = wait_for_port_file(self.port_file, self.proc, timeout, self.log)
        except RuntimeError:
            if port and "cannot listen on" in self.log()[log_start:]:
                raise PortTaken(port) from None
            raise
        except TimeoutError:
            self.kill()
            raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError(f"server did not answer /healthz within {timeout}s:\n{self.log()}")
        if self.admin_key is None:
            profiles = tomllib.loads(self.credentials.read_text())
            self.admin_key = profiles["default"]["api_key"]
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        key = key if key is not None else self.admin_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30.0), **kwargs)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (a clean shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def restart(self) -> ServerProcess:
        """SIGKILL and start again, on a port the server picks."""
        self.kill()
        self.port = None
        return self.start()


class PortTaken(Exception):
    """The port of the previous start is taken by now."""
