"""Tracing: OpenTelemetry spans for the API request, each execution, state, bus call, connector
HTTP call, function invocation, AI provider call and trigger delivery, exported over OTLP
(HTTP/protobuf) to `[telemetry] otlp_endpoint`. Off by default: with no endpoint nothing is
recorded and nothing leaves the machine.

The hot path costs nothing when tracing is off: hooks read the module global `tracer` (None
when off) and do no more. When on, a span is a small slotted object appended to a bounded
queue at its end; a background thread encodes batches with `opentelemetry-proto` (the
`aionix[otel]` extra, imported only when an endpoint is configured) and POSTs them. A full
queue drops the span and counts it (`aionix_telemetry_spans_dropped_total{reason}` in
/metrics) rather than slowing the engine; a failed export drops its batch the same way.

The trace id is one id across a request, the execution it starts, its envelope, its bus calls,
the function invocation records and every log line written meanwhile (`current_trace`, set
whether or not tracing is on). A W3C `traceparent` on a request (or webhook) gives it; when
tracing is on, outgoing HTTP calls (connector `http`, AI providers) carry one.

    with telemetry.span("bus http", kind=telemetry.CLIENT) as sp:   # a no-op when off
        ...
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import time
from typing import Any

log = logging.getLogger("aionix.telemetry")

# OTLP span kinds
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5

#: the span the code runs under (None: none, or tracing off)
current_span: contextvars.ContextVar[Any] = contextvars.ContextVar("aionix_span", default=None)
#: the trace id of the request, execution, invocation or delivery the code serves (for logs);
#: set whether or not tracing is on
current_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("aionix_trace_id", default=None)

#: the process tracer, None while tracing is off (hooks test this and nothing else)
tracer: Tracer | None = None

_HEX = frozenset("0123456789abcdef")
_bits = random.Random(os.urandom(16)).getrandbits
_CURRENT: Any = object()  # "the current span" (default parent)


def new_trace_id() -> str:
    # from the process's seeded generator, not os.urandom: a syscall that gives up the GIL on
    # every request, and a trace id is no secret
    return f"{_bits(128):032x}"


def _valid(value: str, size: int) -> bool:
    return len(value) == size and _HEX.issuperset(value) and value != "0" * size


def parse_traceparent(value: str | None) -> Remote | None:
    """The parent named by a W3C `traceparent` header (version 00 form; later versions are read
    for their first four fields as the spec asks), or None when absent or malformed."""
    if not value or len(value) < 55:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    if not _valid(parts[1], 32) or not _valid(parts[2], 16) or len(parts[3]) != 2 or not _HEX.issuperset(parts[3]):
        return None
    return Remote(parts[1], parts[2])


def otel_trace_id(trace_id: str) -> str:
    """`trace_id` as an OpenTelemetry trace id (32 hex digits): itself when it is one (always, for
    ids this server makes or takes from a `traceparent`), else derived from it (an arbitrary
    `X-Trace-Id` a client sent; the span keeps the original as `aionix.trace_id`)."""
    if _valid(trace_id, 32):
        return trace_id
    import hashlib

    return hashlib.sha256(trace_id.encode()).hexdigest()[:32]


class Remote:
    """A parent span in another process (from a `traceparent`)."""

    __slots__ = ("span_id", "trace_id")

    def __init__(self, trace_id: str, span_id: str) -> None:
        self.trace_id = trace_id
        self.span_id = span_id


class Span:
    """One timed operation. `end()` (or leaving its `with` block) queues it for export."""

    __slots__ = (
        "_tokens",
        "attrs",
        "end_ns",
        "error",
        "kind",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "trace_id",
        "tracer",
    )  # fmt: skip

    def __init__(
        self, tracer: Tracer, trace_id: str, parent_id: str | None, name: str, kind: int, attrs: dict[str, Any] | None,
        start_ns: int | None,
    ) -> None:  # fmt: skip
        self.tracer = tracer
        self.trace_id = trace_id
        self.span_id = f"{_bits(64) or 1:016x}"  # unique, not secret: no system call per span
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns or time.time_ns()
        self.end_ns = 0
        self.attrs = attrs if attrs is not None else {}
        self.error: str | None = None
        self._tokens: Any = None

    def set(self, key: str, value: Any) -> None:
        self.attrs[key] = value

    def fail(self, message: str) -> None:
        self.error = message or "error"

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"

    def end(self, end_ns: int | None = None) -> None:
        if not self.end_ns:
            self.end_ns = end_ns or time.time_ns()
            self.tracer.submit(self)

    def activate(self) -> Span:
        """Make this the current span (and its trace the current trace) until `close()`."""
        self._tokens = (current_span.set(self), current_trace.set(self.attrs.get("aionix.trace_id", self.trace_id)))
        return self

    def close(self, error: str | None = None) -> None:
        """End the span and restore the span that was current before `activate()`."""
        if error is not None:
            self.fail(error)
        if self._tokens is not None:
            span_token, trace_token = self._tokens
            self._tokens = None
            try:
                current_span.reset(span_token)
                current_trace.reset(trace_token)
            except ValueError:  # closed in another context than it was activated in
                pass
        self.end()

    def __enter__(self) -> Span:
        return self.activate()

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.error is None:
            self.fail(getattr(exc, "message", None) or f"{typ.__name__}: {exc}"[:500])
        self.close()


class _Noop:
    """What `span()` gives while tracing is off: every method does nothing."""

    __slots__ = ()
    trace_id = span_id = parent_id = None

    def set(self, key: str, value: Any) -> None:
        pass

    def fail(self, message: str) -> None:
        pass

    def end(self, end_ns: int | None = None) -> None:
        pass

    def close(self, error: str | None = None) -> None:
        pass

    def traceparent(self) -> None:
        return None

    def activate(self) -> _Noop:
        return self

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


NOOP = _Noop()


def span(
    name: str,
    *,
    kind: int = INTERNAL,
    trace_id: str | None = None,
    parent: Any = _CURRENT,
    attrs: dict[str, Any] | None = None,
    start_ns: int | None = None,
) -> Any:
    """A new span (a context manager that makes it current), or `NOOP` while tracing is off."""
    t = tracer
    if t is None:
        return NOOP
    return t.start(name, kind=kind, trace_id=trace_id, parent=parent, attrs=attrs, start_ns=start_ns)


class Tracer:
    """Makes spans and exports them in batches from a background thread."""

    def __init__(
        self,
        endpoint: str,
        *,
        service_name: str = "aionix",
        queue_size: int = 2048,
        batch_size: int = 512,
        interval_seconds: float = 2.0,
        timeout_seconds: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        import collections
        import importlib.util
        import threading

        if importlib.util.find_spec("opentelemetry.proto") is None:
            raise ImportError("opentelemetry-proto")
        self.service_name = service_name
        self.encode: Any = None  # made in the export thread (the import stays off the start path)
        self.endpoint = endpoint
        self.queue_size = queue_size
        self.batch_size = max(1, min(batch_size, queue_size))
        self.interval = interval_seconds
        self.timeout = timeout_seconds
        self.headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        self.queue: collections.deque[Span] = collections.deque()
        self.dropped = {"queue_full": 0, "export_failed": 0}
        self.exported = 0
        self.export_errors = 0
        self._wake = threading.Event()
        self._stop = False
        self._conn: Any = None
        self._thread = threading.Thread(target=self._loop, name="aionix-otlp-export", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ spans
    def start(
        self,
        name: str,
        *,
        kind: int = INTERNAL,
        trace_id: str | None = None,
        parent: Any = _CURRENT,
        attrs: dict[str, Any] | None = None,
        start_ns: int | None = None,
    ) -> Span:
        """A span under `parent` (default: the current span). With `trace_id`, a parent of
        another trace is ignored (the span starts that trace's local root)."""
        if parent is _CURRENT:
            parent = current_span.get()
        if trace_id is not None:
            tid = otel_trace_id(trace_id)
            if tid != trace_id:
                attrs = {**(attrs or {}), "aionix.trace_id": trace_id}
            if parent is not None and parent.trace_id != tid:
                parent = None
        elif parent is not None:
            tid = parent.trace_id
        else:
            tid = otel_trace_id(current_trace.get() or new_trace_id())
        return Span(self, tid, parent.span_id if parent is not None else None, name, kind, attrs, start_ns)

    def submit(self, span: Span) -> None:
        q = self.queue
        if len(q) >= self.queue_size:
            self.dropped["queue_full"] += 1
            return
        q.append(span)
        if len(q) >= self.batch_size:
            self._wake.set()

    # ------------------------------------------------------------------ export
    def _loop(self) -> None:
        from aionix import otlp

        self.encode = otlp.encoder(self.service_name)
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        q = self.queue
        while q:
            batch = []
            try:
                while len(batch) < self.batch_size:
                    batch.append(q.popleft())
            except IndexError:
                pass
            self._export(batch)

    def _export(self, batch: list[Span]) -> None:
        try:
            body = self.encode(batch)
            self._post(body)
            self.exported += len(batch)
        except Exception as exc:
            self.export_errors += 1
            self.dropped["export_failed"] += len(batch)
            if self.export_errors in (1, 10, 100) or self.export_errors % 1000 == 0:
                log.warning(
                    "OTLP export to %s failed (%s spans dropped, %d failures so far): %s",
                    self.endpoint, len(batch), self.export_errors, exc,
                )  # fmt: skip

    def _post(self, body: bytes) -> None:
        import http.client
        from urllib.parse import urlsplit

        url = urlsplit(self.endpoint)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        for attempt in (1, 2):  # a kept-alive connection the receiver closed: one fresh try
            if self._conn is None:
                cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
                self._conn = cls(url.hostname, url.port, timeout=self.timeout)
            try:
                self._conn.request("POST", path, body=body, headers=self.headers)
                response = self._conn.getresponse()
                response.read()
            except (http.client.HTTPException, OSError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if response.status >= 300:
                raise RuntimeError(f"HTTP {response.status} {response.reason}")
            return

    def flush(self, timeout: float = 5.0) -> None:
        """Export what is queued now (waits at most `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self.queue and time.monotonic() < deadline:
            time.sleep(0.01)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()


def configure(conf: Any) -> Tracer | None:
    """Start tracing as `[telemetry]` says (a `TelemetryConfig`); None when no endpoint is set.
    Raises `ConfigError` when an endpoint is set but the `aionix[otel]` extra is missing."""
    global tracer
    shutdown()
    if not conf.otlp_endpoint:
        return None
    from aionix.errors import ConfigError

    try:
        tracer = Tracer(
            conf.otlp_endpoint,
            service_name=conf.service_name,
            queue_size=conf.queue_size,
            batch_size=conf.batch_size,
            interval_seconds=conf.export_interval_seconds,
            timeout_seconds=conf.export_timeout_seconds,
            headers=dict(conf.headers),
        )
    except ImportError:
        raise ConfigError(
            "config error: telemetry.otlp_endpoint: is set but the OTLP encoder is not installed: "
            "pip install 'aionix[otel]' (opentelemetry-proto)"
        ) from None
    return tracer


def shutdown(timeout: float = 5.0) -> None:
    """Export what is queued and stop tracing."""
    global tracer
    t, tracer = tracer, None
    if t is not None:
        t.shutdown(timeout)
        _retired.append(t)  # its counters stay in /metrics


_retired: list[Tracer] = []


def counters() -> dict[str, Any]:
    """Totals over this process's tracers, for /metrics."""
    every = [*_retired, *([tracer] if tracer is not None else [])]
    dropped = {"queue_full": 0, "export_failed": 0}
    for t in every:
        for reason, n in t.dropped.items():
            dropped[reason] += n
    return {
        "dropped": dropped,
        "exported": sum(t.exported for t in every),
        "queued": len(tracer.queue) if tracer is not None else 0,
    }


def register_metrics(registry: Any) -> None:
    """Add the exporter's counters to a Prometheus registry (read at each scrape)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _Collector:
        def collect(self) -> Any:
            c = counters()
            dropped = CounterMetricFamily(
                "aionix_telemetry_spans_dropped",
                "Spans not exported: the queue was full, or their batch could not be sent",
                labels=["reason"],
            )
            for reason, n in c["dropped"].items():
                dropped.add_metric([reason], n)
            yield dropped
            yield CounterMetricFamily(
                "aionix_telemetry_spans_exported", "Spans sent to the OTLP endpoint", c["exported"]
            )
            yield GaugeMetricFamily("aionix_telemetry_queue_spans", "Spans waiting for export", c["queued"])

    registry.register(_Collector())
