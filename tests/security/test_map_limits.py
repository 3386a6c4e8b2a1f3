"""Issue 15, finding 7: one map must neither fill the disk nor freeze the server.

Before: a map over `[1..1000000]` froze the server 48.6 s, took its RSS to 1.1 GB and wrote
2,000,004 history rows before failing; a 20,000-item map wrote 40,005 events and SUCCEEDED
although `max_history_events` is 25,000 (the limit was checked after the events were written,
and not at all on the final checkpoint). Now a map has at most `[stepflow] max_map_items`
items, a map whose items cannot fit the history fails before any item runs, and `Run.event`
refuses the event that would pass `max_history_events` (States.Runtime naming the limit).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from healthprobe import HealthProbe
from serverproc import ServerProcess

MAX_EVENTS = 25_000  # [stepflow] max_history_events, the default


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # max_map_items raised so that a 20,000-item map meets the history limit, not this one
    proc = ServerProcess(tmp_path_factory.mktemp("maplimits"), env={"AIONIX_STEPFLOW_MAX_MAP_ITEMS": "50000"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("mapdefaults")).start()
    yield proc
    proc.stop()


def assert_responsive(probe: HealthProbe) -> None:
    """Most answers fast, none held for long (the old code froze the server for 48.6 s; a lone
    ~100 ms sample is the shared host's scheduler, which an idle asyncio loop sees too)."""
    assert not probe.failures, probe.failures[:3]
    assert probe.percentile(50) <= 0.05, probe.summary()
    # a run may be short (10 samples, where p95 is the worst one): allow one slow sample in 20
    slow = sum(1 for latency in probe.latencies if latency > 0.1)
    assert slow <= max(1, len(probe.latencies) // 20), probe.summary()
    assert probe.worst <= 0.5, probe.summary()


def history_rows(server: ServerProcess, execution_id: str) -> int:
    db = sqlite3.connect(f"file:{server.data_dir / 'aionix.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM sf_history WHERE execution_id = ?", (execution_id,)).fetchone()[0]
    finally:
        db.close()


def map_of(items: str, states: int = 1) -> dict[str, Any]:
    """A map over `items` whose processor is `states` pure states in a row."""
    names = [f"P{i}" for i in range(states)]
    processor = {
        name: ({"type": "set", "next": names[i + 1]} if i + 1 < states else {"type": "set", "end": True})
        for i, name in enumerate(names)
    }
    return {
        "entry": "M",
        "states": {
            "M": {"type": "map", "items": items, "processor": {"entry": "P0", "states": processor}, "end": True}
        },
    }


def run(server: ServerProcess, definition: dict[str, Any]) -> dict[str, Any]:
    with server.client(timeout=300.0) as admin:
        name = f"map-{uuid.uuid4().hex[:10]}"
        r = admin.post("/api/v1/workflows", json={"name": name, "definition": definition})
        assert r.status_code == 201, r.text
        r = admin.post(f"/api/v1/workflows/{name}/executions", json={"mode": "sync", "wait_seconds": 240})
        assert r.status_code in (200, 201), r.text
        envelope = r.json()
        eid = envelope["execution_id"]
        deadline = time.monotonic() + 240
        while envelope["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
            envelope = admin.get(f"/api/v1/executions/{eid}").json()
        return envelope


def test_a_million_item_map_fails_fast_with_a_named_error(default_server: ServerProcess) -> None:
    started = time.monotonic()
    with HealthProbe(default_server.url, pid=default_server.proc.pid if default_server.proc else None) as probe:
        envelope = run(default_server, map_of("{% [1..1000000] %}"))
    took = time.monotonic() - started
    assert envelope["status"] == "FAILED", envelope
    # the items' expression stops at a [limits] size (1,000,000 numbers are ~6.9 MB of JSON)
    assert envelope["error"]["error"] == "States.QueryEvaluationError", envelope["error"]
    assert "limits.expression_max_result_bytes" in envelope["error"]["cause"], envelope["error"]
    assert took < 10, f"took {took:.1f} s"
    assert history_rows(default_server, envelope["execution_id"]) < 10
    assert_responsive(probe)
    assert max(probe.rss) < 300 * 2**20, probe.summary()


def test_a_map_over_more_items_than_max_map_items_fails_before_any_item_runs(default_server: ServerProcess) -> None:
    envelope = run(default_server, map_of("{% [1..10001] %}"))
    assert envelope["status"] == "FAILED", envelope
    assert envelope["error"]["error"] == "States.Runtime", envelope["error"]
    assert "10001 map items, over the limit of 10000 (stepflow.max_map_items)" in envelope["error"]["cause"]
    assert history_rows(default_server, envelope["execution_id"]) < 10


def test_a_map_whose_items_cannot_fit_the_history_fails_before_any_item_runs(server: ServerProcess) -> None:
    """The issue's 20,000-item map: 2 events per item at least, over 25,000: fails at once."""
    envelope = run(server, map_of("{% [1..20000] %}"))
    assert envelope["status"] == "FAILED", envelope
    assert envelope["error"]["error"] == "States.Runtime", envelope["error"]
    assert "stepflow.max_history_events" in envelope["error"]["cause"], envelope["error"]
    assert history_rows(server, envelope["execution_id"]) < 10


def test_the_history_limit_is_enforced_before_writing(server: ServerProcess) -> None:
    """10,000 items of 3 states each (60,000 events) pass the map's early check; the event that
    would reach the limit fails the execution, and nothing beyond the limit is written."""
    with HealthProbe(server.url) as probe:
        envelope = run(server, map_of("{% [1..10000] %}", states=3))
    assert envelope["status"] == "FAILED", envelope
    assert envelope["error"]["error"] == "States.Runtime", envelope["error"]
    assert f"{MAX_EVENTS} history events" in envelope["error"]["cause"], envelope["error"]
    assert "stepflow.max_history_events" in envelope["error"]["cause"]
    rows = history_rows(server, envelope["execution_id"])
    assert MAX_EVENTS // 2 < rows <= MAX_EVENTS, rows
    assert_responsive(probe)


def test_a_map_within_the_limits_succeeds_and_the_loop_keeps_serving(server: ServerProcess) -> None:
    with HealthProbe(server.url) as probe:
        envelope = run(server, map_of("{% [1..10000] %}"))
    assert envelope["status"] == "SUCCEEDED", envelope
    assert envelope["output"] == list(range(1, 10001))
    # ExecutionStarted, StateEntered, MapStarted, 2 per item, StateExited, ExecutionSucceeded
    assert history_rows(server, envelope["execution_id"]) == 2 * 10_000 + 5
    assert_responsive(probe)
