"""OTLP/protobuf encoding of aionix spans (`ExportTraceServiceRequest`), with the message classes
of `opentelemetry-proto` (the `aionix[otel]` extra). Imported by `aionix.telemetry` only when
an endpoint is configured, and run in its export thread, never on the event loop.

Strings (span names, attributes, error messages) pass through the process redactor
(`aionix.redact.PROCESS`) first: a secret value resolved in this process never leaves in a span.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from aionix.redact import PROCESS

_ERROR = Status.STATUS_CODE_ERROR


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=PROCESS.text(str(value)) if PROCESS else str(value))


def _attributes(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items() if v is not None]


def encoder(service_name: str) -> Callable[[Sequence[Any]], bytes]:
    """A function that encodes a batch of `aionix.telemetry.Span` as one request body."""
    from aionix import __version__

    resource = Resource(
        attributes=_attributes(
            {
                "service.name": service_name,
                "service.version": __version__,
                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
                "telemetry.sdk.name": "aionix",
                "telemetry.sdk.language": "python",
            }
        )
    )
    scope = InstrumentationScope(name="aionix", version=__version__)

    def encode(spans: Sequence[Any]) -> bytes:
        out = []
        for s in spans:
            span = Span(
                trace_id=bytes.fromhex(s.trace_id),
                span_id=bytes.fromhex(s.span_id),
                name=PROCESS.text(s.name) if PROCESS else s.name,
                kind=s.kind,
                start_time_unix_nano=s.start_ns,
                end_time_unix_nano=s.end_ns,
                attributes=_attributes(s.attrs),
            )
            if s.parent_id:
                span.parent_span_id = bytes.fromhex(s.parent_id)
            if s.error is not None:
                span.status.code = _ERROR
                span.status.message = PROCESS.text(s.error) if PROCESS else s.error
            out.append(span)
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=out)])]
        )
        return request.SerializeToString()

    return encode
