from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serverproc import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the whole run; tests must not assume they are alone in it
    (use unique names) and must not stop it."""
    # Generous limits: many tests share this server and its client address.
    env = {
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
        "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("shared-server"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """A factory of private servers (for restart, crash and config tests)."""
    started: list[ServerProcess] = []

    def make(**kwargs: object) -> ServerProcess:
        proc = ServerProcess(tmp_path / f"server{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def admin(server: ServerProcess):
    with server.client() as c:
        yield c
