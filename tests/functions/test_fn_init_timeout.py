"""A function's cold start has its own limit (issue 24): the worker start and the module import
are bounded by `limits.init_timeout_seconds` (default 10 s, `Function.InitTimeout`), and the
invocation timeout starts when the handler is called; the record shows both durations."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conftest import create, invoke

SLOW_IMPORT = """
import time
time.sleep({seconds})

def handler(event, context):
    return {{"remaining_ms": context.get_remaining_time_in_millis()}}
"""


def test_slow_import_under_a_pool_burst_does_not_eat_the_invocation_timeout(fn) -> None:
    # each module takes 2 s to import, longer than the 1 s function timeout: 3 versions x 2
    # workers (pool_size 2) start at once on a loaded host; every call succeeds
    names = [
        create(
            fn,
            "python",
            SLOW_IMPORT.format(seconds=2.0),
            limits={"timeout_seconds": 1, "init_timeout_seconds": 30},
        )["name"]
        for _ in range(3)
    ]
    with ThreadPoolExecutor(6) as pool:
        records = list(pool.map(lambda name: invoke(fn, name, {}), [n for n in names for _ in range(2)]))
    for record in records:
        assert record["status"] == "SUCCEEDED", record
        # the handler's deadline counts from its call (counted from the start, it had passed)
        assert record["result"]["remaining_ms"] > 0, record
        assert record["run_duration_ms"] is not None and record["run_duration_ms"] < 1500, record
        if record["cold_start"]:
            assert record["init_duration_ms"] >= 2000, record  # the import's 2.0 s sleep
        else:
            assert record["init_duration_ms"] is None, record
    assert any(r["cold_start"] for r in records)
    # the stored record shows the same two durations
    first = records[0]
    stored = fn.get(f"/api/v1/functions/{names[0]}/invocations/{first['invocation_id']}").json()
    assert stored["init_duration_ms"] == first["init_duration_ms"]
    assert stored["run_duration_ms"] == first["run_duration_ms"]
    listed = fn.get(f"/api/v1/functions/{names[0]}/invocations").json()["items"]
    by_id = {r["invocation_id"]: r for r in listed}
    assert by_id[first["invocation_id"]]["run_duration_ms"] == first["run_duration_ms"]


def test_import_longer_than_the_init_limit_is_an_init_timeout(fn) -> None:
    name = create(
        fn,
        "python",
        SLOW_IMPORT.format(seconds=5.0),
        limits={"timeout_seconds": 30, "init_timeout_seconds": 1.5},
    )["name"]
    record = invoke(fn, name, {})
    assert record["status"] == "TIMED_OUT", record
    assert record["error"]["error"] == "Function.InitTimeout", record
    assert "init_timeout_seconds" in record["error"]["errorMessage"]
    assert record["cold_start"] is True and record["run_duration_ms"] is None
    assert 1500 <= record["init_duration_ms"] < 5000
    stored = fn.get(f"/api/v1/functions/{name}/invocations/{record['invocation_id']}").json()
    assert stored["status"] == "TIMED_OUT" and stored["error"]["error"] == "Function.InitTimeout"


def test_init_limit_is_validated(fn) -> None:
    r = fn.post(
        "/api/v1/functions",
        json={
            "name": "init-bad",
            "runtime": "python",
            "code": {"source": "def handler(e, c):\n    return 1\n"},
            "limits": {"init_timeout_seconds": 0},
        },
    )
    assert r.status_code in (400, 422), r.text
    assert "init_timeout_seconds" in r.text
