"""The tracing module in process: traceparent parsing, nothing recorded or imported while off, the
trace id in log lines, and the bounded queue."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from aionix import log as logsetup
from aionix import telemetry
from aionix.config import TelemetryConfig

T = "4bf92f3577b34da6a3ce929d0e0e4736"
S = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"00-{T}-{S}-01", True),
        (f"00-{T}-{S}-00", True),
        (f"00-{T.upper()}-{S}-01", True),
        (f"01-{T}-{S}-01-future", True),  # a later version: its first four fields are read
        (f"00-{'0' * 32}-{S}-01", False),  # all-zero trace id
        (f"00-{T}-{'0' * 16}-01", False),
        (f"ff-{T}-{S}-01", False),
        (f"00-{T}-{S}-01-extra", False),
        (f"00-{T[:-1]}x-{S}-01", False),
        ("", False),
        (None, False),
        ("garbage", False),
    ],
)
def test_traceparent_parsing(header, ok):
    parsed = telemetry.parse_traceparent(header)
    assert (parsed is not None) == ok
    if ok:
        assert (parsed.trace_id, parsed.span_id) == (T, S)


def test_off_by_default_spans_are_a_shared_noop():
    assert TelemetryConfig().otlp_endpoint == ""
    assert telemetry.configure(TelemetryConfig()) is None
    assert telemetry.tracer is None
    s = telemetry.span("x", kind=telemetry.CLIENT)
    assert s is telemetry.NOOP and s.traceparent() is None
    with s as inner:
        inner.set("k", 1)
    assert telemetry.current_span.get() is None


def test_the_start_path_imports_no_otlp_or_protobuf():
    code = (
        "import sys, aionix.server, aionix.runtime, aionix.api.dispatch, aionix.stepflow.engine;"
        "bad = [m for m in sys.modules if m.startswith(('opentelemetry', 'google.protobuf', 'aionix.otlp'))];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_log_lines_carry_the_current_trace_id(capsys):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for fmt in ("json", "text"):
            logsetup.setup("INFO", fmt)
            token = telemetry.current_trace.set(T)
            try:
                logging.getLogger("aionix.test").info("inside")
            finally:
                telemetry.current_trace.reset(token)
            logging.getLogger("aionix.test").info("outside")
            inside, outside = capsys.readouterr().err.strip().splitlines()[-2:]
            if fmt == "json":
                assert json.loads(inside)["trace_id"] == T
                assert "trace_id" not in json.loads(outside)
            else:
                assert f"aionix.test [{T}]: inside" in inside
                assert "aionix.test: outside" in outside
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_a_full_queue_drops_and_counts_and_spans_nest(monkeypatch):
    tracer = telemetry.Tracer("http://127.0.0.1:9/v1/traces", queue_size=3, batch_size=3, interval_seconds=60)
    wake = tracer._wake
    try:
        monkeypatch.setattr(tracer, "_wake", type("W", (), {"set": lambda self: None})())  # no export
        with tracer.start("outer") as outer:
            inner = tracer.start("inner")
            assert inner.parent_id == outer.span_id and inner.trace_id == outer.trace_id
            assert telemetry.current_trace.get() == outer.trace_id
            inner.end()
        for _ in range(5):
            tracer.start("more").end()
        assert len(tracer.queue) == 3
        assert tracer.dropped["queue_full"] == 4
        # another trace's id given: the current span is not its parent
        with tracer.start("a") as a:
            other = tracer.start("b", trace_id=T)
            assert other.parent_id is None and other.trace_id == T and a.trace_id != T
        # an arbitrary X-Trace-Id becomes a valid OTel id, the original kept as an attribute
        odd = tracer.start("c", trace_id="not-hex")
        assert len(odd.trace_id) == 32 and odd.attrs["aionix.trace_id"] == "not-hex"
    finally:
        tracer.queue.clear()
        tracer._stop = True
        wake.set()
