"""Durable async invocations (issue 17 part 5): an async invocation keeps its event and caller
context while it is RUNNING, so a server that was SIGKILLed while running it runs it again at
its restart, under the same invocation id, idempotency key and trace id; a clean stop gives its
attempt back; a node that dies during every attempt ends it as Function.AttemptsExhausted
([functions] async_max_attempts) instead of retrying it forever."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import create, unique
from serverproc import ServerProcess

SLOW = r"""
import time

def handler(event, context):
    print("attempt of", context.invocation_id)
    time.sleep(event.get("sleep", 3))
    return {"invocation_id": context.invocation_id, "key": context.idempotency_key,
            "trace_id": context.trace_id, "event": event}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("fn-async-durable"),
        env={"AIONIX_FUNCTIONS_POOL_SIZE": "1", "AIONIX_FUNCTIONS_ASYNC_MAX_ATTEMPTS": "2"},
    ).start()
    yield proc
    proc.kill()


def _client(proc: ServerProcess) -> httpx.Client:
    return proc.client(timeout=60.0)


def _start(proc: ServerProcess, name: str, event: Any, key: str) -> dict[str, Any]:
    with _client(proc) as c:
        r = c.post(
            f"/api/v1/functions/{name}/invoke", params={"mode": "async"}, json=event, headers={"Idempotency-Key": key}
        )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "RUNNING" and started["attempts"] == 1
    return started


def _record(proc: ServerProcess, name: str, invocation_id: str) -> dict[str, Any]:
    with _client(proc) as c:
        r = c.get(f"/api/v1/functions/{name}/invocations/{invocation_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _wait(proc: ServerProcess, name: str, invocation_id: str, until: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = _record(proc, name, invocation_id)
        if until(record):
            return record
        assert time.monotonic() < deadline, f"{record}\n{proc.log()[-3000:]}"
        time.sleep(0.2)


def test_sigkill_during_async_invocation_runs_it_again_after_restart(server: ServerProcess) -> None:
    with _client(server) as c:
        name = create(c, "python", SLOW, limits={"timeout_seconds": 30})["name"]
    key = "key-" + uuid.uuid4().hex
    event = {"sleep": 3, "n": 42}
    started = _start(server, name, event, key)
    time.sleep(1.5)  # the handler is in its sleep (cold start of a pool worker: well under that)
    assert _record(server, name, started["invocation_id"])["status"] == "RUNNING"
    server.restart()  # SIGKILL: the server and its workers die mid-run
    done = _wait(server, name, started["invocation_id"], lambda r: r["status"] != "RUNNING")
    assert done["status"] == "SUCCEEDED", done
    assert done["attempts"] == 2
    assert done["idempotency_key"] == key and done["trace_id"] == started["trace_id"]
    assert done["started_at"] == started["started_at"]
    # the function saw the same invocation id, idempotency key, trace and event
    assert done["result"] == {
        "invocation_id": started["invocation_id"],
        "key": key,
        "trace_id": started["trace_id"],
        "event": event,
    }
    with _client(server) as c:
        items = c.get(f"/api/v1/functions/{name}/invocations").json()["items"]
    assert [i["invocation_id"] for i in items] == [started["invocation_id"]]


def test_a_clean_stop_gives_the_attempt_back(server: ServerProcess) -> None:
    with _client(server) as c:
        name = create(c, "python", SLOW, limits={"timeout_seconds": 30})["name"]
    started = _start(server, name, {"sleep": 3}, "clean-" + uuid.uuid4().hex)
    time.sleep(1.5)
    server.stop()  # SIGTERM: the run is cancelled and its claim given back
    server.start()
    done = _wait(server, name, started["invocation_id"], lambda r: r["status"] != "RUNNING")
    assert done["status"] == "SUCCEEDED", done
    assert done["attempts"] == 1
    assert done["result"]["invocation_id"] == started["invocation_id"]


def test_a_node_that_dies_during_every_attempt_ends_it_as_exhausted(server: ServerProcess) -> None:
    with _client(server) as c:
        name = create(c, "python", SLOW, limits={"timeout_seconds": 30})["name"]
    started = _start(server, name, {"sleep": 6}, "poison-" + uuid.uuid4().hex)
    time.sleep(1.5)
    server.restart()  # attempt 1 dies
    # attempt 2 is claimed at the restart (async_max_attempts = 2): kill it mid-run as well
    _wait(server, name, started["invocation_id"], lambda r: r["attempts"] == 2)
    time.sleep(2.0)
    assert _record(server, name, started["invocation_id"])["status"] == "RUNNING"
    server.restart()
    done = _wait(server, name, started["invocation_id"], lambda r: r["status"] != "RUNNING")
    assert done["status"] == "FAILED", done
    assert done["attempts"] == 3
    assert done["error"]["error"] == "Function.AttemptsExhausted"
    assert "2 attempts" in done["error"]["errorMessage"]


def test_bad_mode_and_missing_function_are_refused(server: ServerProcess) -> None:
    with _client(server) as c:
        name = create(c, "python", SLOW)["name"]
        r = c.post(f"/api/v1/functions/{name}/invoke", params={"mode": "later"}, json={})
        assert r.status_code in (400, 422) and "mode" in r.text
        missing = c.post(f"/api/v1/functions/{unique('nope')}/invoke", params={"mode": "async"}, json={})
        assert missing.status_code == 404
