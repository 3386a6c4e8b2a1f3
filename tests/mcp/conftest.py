"""Fixtures of the MCP tests: one private server, keys per role and tenant, and an SDK client."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from serverproc import ServerProcess

FN_SOURCE = "def handler(event, context):\n    return {'echo': event}\n"


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
        "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    proc = ServerProcess(tmp_path_factory.mktemp("mcp-server"), env=env).start()
    yield proc
    proc.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def keys(mcp_server: ServerProcess) -> dict[str, str]:
    """Keys of tenant `default` by role, and an operator key of tenant `other`."""
    out: dict[str, str] = {}
    with mcp_server.client() as admin:
        for role in ("viewer", "operator", "admin"):
            r = admin.post("/api/v1/keys", json={"name": f"mcp-{role}", "role": role})
            assert r.status_code == 201, r.text
            out[role] = r.json()["key"]
        r = admin.post("/api/v1/keys", json={"name": "mcp-other", "role": "operator", "tenant": "other"})
        assert r.status_code == 201, r.text
        out["other"] = r.json()["key"]
    return out


@pytest.fixture
def admin_http(mcp_server: ServerProcess) -> Iterator[httpx.Client]:
    with mcp_server.client(timeout=60.0) as c:
        yield c


@asynccontextmanager
async def mcp_client(url: str, key: str | None, **headers: str) -> Any:
    """The SDK's own client over Streamable HTTP, with an API key."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    if key:
        headers["Authorization"] = f"Bearer {key}"
    http = create_mcp_http_client(headers=headers)
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http), cache=None) as client:
        yield client
