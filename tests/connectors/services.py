"""Real database and mail servers from Debian's packages, started on free loopback ports in
temp dirs (scripts/system-deps.sh installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from serverproc import free_port


def _as(user: str, argv: list[str]) -> list[str]:
    """Run as `user` when we are root (database servers refuse to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *argv]
    return argv


def _chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text() if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s: {log.read_text() if log and log.exists() else ''}")


@dataclass
class Postgres:
    port: int
    user: str = "aionix"
    password: str = "pg-secret-pw"
    database: str = "aionix"
    root: Path = field(default_factory=Path)

    def stop(self) -> None:
        subprocess.run(
            _as("postgres", [pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    return shutil.which(name) or name


def start_postgres() -> Postgres:
    root = Path(tempfile.mkdtemp(prefix="aionix-pg-"))
    _chown(root, "postgres")
    pw = root / "pw"
    pg = Postgres(port=free_port(), root=root)
    pw.write_text(pg.password)
    _chown(pw, "postgres")
    subprocess.run(
        _as(
            "postgres",
            [
                pg_bin("initdb"),
                "-D",
                str(root / "data"),
                "-U",
                pg.user,
                f"--pwfile={pw}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as(
            "postgres",
            [
                pg_bin("pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        ),
        check=True,
        capture_output=True,
        timeout=90,
    )
    subprocess.run(
        _as("postgres", [pg_bin("createdb"), "-h", str(root), "-p", str(pg.port), "-U", pg.user, pg.database]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pg


@dataclass
class Redis:
    port: int
    password: str
    proc: subprocess.Popen
    root: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis(password: str = "redis-secret-pw") -> Redis:
    root = Path(tempfile.mkdtemp(prefix="aionix-redis-"))
    port = free_port()
    log = root / "log"
    argv = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        password,
        "--dir",
        str(root),
        "--logfile",
        str(log),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, 30, proc, log)
    return Redis(port, password, proc, root)
