"""Fixtures of the functions tests: one private server (its environment carries a canary that
no function may see) and helpers to create and invoke functions."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from serverproc import ServerProcess

CANARY = "fn-canary-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def fn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("functions-server"),
        env={
            "FN_TEST_CANARY": CANARY,
            "AIONIX_FUNCTIONS_POOL_SIZE": "2",
            "AIONIX_FUNCTIONS_IDLE_SECONDS": "120",
            # the Deno test grants a read of /etc/hostname (an admin may, under a read root)
            "AIONIX_FUNCTIONS_READ_ROOTS": "/etc",
        },
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def fn(fn_server: ServerProcess) -> Iterator[httpx.Client]:
    with fn_server.client(timeout=120.0) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(
    client: httpx.Client, runtime: str, source: str, *, name: str | None = None, expect: int = 201, **config: Any
) -> dict[str, Any]:
    body = {"name": name or unique(runtime), "runtime": runtime, "code": {"source": source}, **config}
    r = client.post("/api/v1/functions", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def invoke(
    client: httpx.Client, name: str, event: Any = None, qualifier: str | None = None, **params: Any
) -> dict[str, Any]:
    if qualifier is not None:
        params["qualifier"] = qualifier
    r = client.post(f"/api/v1/functions/{name}/invoke", json=event, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def confinement(client: httpx.Client) -> dict[str, Any]:
    """`/healthz`'s confinement report, once the server has finished probing the host."""
    deadline = time.monotonic() + 60
    while True:
        report = client.get("/healthz").json()["confinement"]
        if report.get("status") != "detecting" or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
