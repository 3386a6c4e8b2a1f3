"""Fixtures of the modules tests: one private server, an admin client, a trusted ECDSA key."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

from serverproc import ServerProcess

import modpkg as pkg

CANARY = "mod-canary-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def mod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("modules-server"),
        env={"MOD_TEST_CANARY": CANARY, "AIONIX_FUNCTIONS_POOL_SIZE": "1", "AIONIX_MODULES_BREAKER_FAILURES": "3",
             "AIONIX_MODULES_BREAKER_COOLDOWN_SECONDS": "2"},
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def mc(mod_server: ServerProcess) -> Iterator[httpx.Client]:
    with mod_server.client(timeout=120.0) as c:
        yield c


@pytest.fixture(scope="session")
def trusted(mod_server: ServerProcess) -> Any:
    """A signing key the server trusts (ECDSA P-256)."""
    key, pub = pkg.keypair("ecdsa")
    with mod_server.client() as c:
        r = c.post("/api/v1/module-keys", json={"name": "test-ecdsa", "public_key": pub})
        assert r.status_code == 201, r.text
    return key


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def install(client: httpx.Client, tar: bytes, expect: int = 201) -> dict[str, Any]:
    r = client.post("/api/v1/modules", content=tar, headers={"Content-Type": "application/x-tar"})
    assert r.status_code == expect, r.text
    return r.json()
