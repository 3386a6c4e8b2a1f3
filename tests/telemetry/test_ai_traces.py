"""Tracing of AI tasks: the provider call is a client span in the request's trace and the HTTP call
to the provider carries its traceparent. The server and its local stand-in providers are those of
tests/ai (conftest `start_ai`, loaded here under another module name)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry.receiver import Receiver

_spec = importlib.util.spec_from_file_location(
    "ai_conftest_for_telemetry", Path(__file__).parents[1] / "ai" / "conftest.py"
)
ai_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ai_conftest)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def traced_ai(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Any]:
    env = {"AIONIX_TELEMETRY_OTLP_ENDPOINT": receiver.endpoint, "AIONIX_TELEMETRY_EXPORT_INTERVAL_SECONDS": "0.1"}
    yield from ai_conftest.start_ai(tmp_path_factory, env)


def test_the_provider_call_is_a_client_span_and_sends_traceparent(traced_ai, receiver):
    trace_id, caller = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with traced_ai.server.client() as c:
        before = len(traced_ai.api.requests)
        r = c.post(
            "/api/v1/tasks",
            json={"intent": "api-ok", "params": {"text": "t"}},
            headers={"traceparent": f"00-{trace_id}-{caller}-01"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["trace_id"] == trace_id
    # the request's span ends after its answer: it may come in a later export batch
    spans = receiver.wait_for(trace_id, lambda s: {"ai cloud", "POST /api/v1/tasks"} <= {x["name"] for x in s})
    provider = next(s for s in spans if s["name"] == "ai cloud")
    assert provider["kind"] == 3 and provider["attrs"]["aionix.provider"] == "cloud"
    sent = [q["headers"].get("Traceparent") for q in traced_ai.api.requests[before:]]
    assert f"00-{trace_id}-{provider['span_id']}-01" in sent
    request = next(s for s in spans if s["name"] == "POST /api/v1/tasks")
    assert request["parent_id"] == caller
