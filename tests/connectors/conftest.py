from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serverproc import ServerProcess

from connectors.services import start_postgres, start_redis, start_smtp
from connectors.support import Recorder, start_http


@pytest.fixture(scope="session")
def http_target() -> Iterator[Recorder]:
    server = start_http()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("connector-roots")
    out = {"fs": base / "fs", "sql": base / "sql"}
    for p in out.values():
        p.mkdir()
    # what the default tenant may touch: its own part of each root ({root}/{tenant})
    out["fs_part"] = out["fs"] / "default"
    out["sql_part"] = out["sql"] / "default"
    for p in (out["fs_part"], out["sql_part"]):
        p.mkdir(mode=0o700)
    return out


@pytest.fixture(scope="session")
def conn_server(tmp_path_factory: pytest.TempPathFactory, roots: dict[str, Path]) -> Iterator[ServerProcess]:
    """A server whose SSRF guard lets loopback through (AIONIX_CONNECTORS_ALLOW_HOSTS)."""
    env = {
        "AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1",
        "AIONIX_CONNECTORS_FS_ROOTS": str(roots["fs"]),
        "AIONIX_CONNECTORS_SQL_ROOTS": str(roots["sql"]),
        "AIONIX_CONNECTORS_MAX_RESULT_BYTES": "65536",
        "AIONIX_CONNECTORS_TIMEOUT_SECONDS": "10",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("conn-server"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def api(conn_server: ServerProcess) -> Iterator[httpx.Client]:
    with conn_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def postgres():
    pg = start_postgres()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis_server():
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory):
    box = start_smtp(tmp_path_factory.mktemp("smtp"))
    yield box
    box.stop()
