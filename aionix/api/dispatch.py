"""Turns an `Endpoint` into a Starlette handler: rate limits, authentication, role check,
body and query validation, idempotency, the service call, the audit record, the response."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from aionix import jsonutil, telemetry
from aionix.api.auth import Principal, extract_key
from aionix.api.authaudit import failed_auth_log
from aionix.api.endpoint import Call, Endpoint, check_path_params, check_store_ints
from aionix.api.idempotency import run_idempotent
from aionix.api.limits import retry_after_header
from aionix.errors import (
    AionixError,
    BadRequest,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from aionix.iam.policy import PolicyDenied

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.api")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonutil.dumps(data), status_code=status, media_type="application/json", headers=headers)


#: Retry-After on a 503 (a dependency such as the database is down for now; clients retry)
UNAVAILABLE_RETRY_SECONDS = 1.0


def error_response(exc: AionixError) -> Response:
    headers = None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:  # None: no reset (a quota's level)
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
    elif isinstance(exc, Unavailable):  # the store is unreachable (a database restart): retry soon
        headers = {"Retry-After": retry_after_header(UNAVAILABLE_RETRY_SECONDS)}
    return json_response(exc.to_dict(), exc.status, headers)


class AuthThrottled(RateLimited):
    """429 for a request without a valid key from an address that sent too many of them."""


#: How often a streaming answer (SSE) checks that its API key is still valid.
STREAM_KEY_CHECK_SECONDS = 1.0


_END = object()
_NOTHING = object()


async def _while_key_valid(
    rt: Runtime, request: Request, inner: AsyncIterator[Any], media_type: str | None
) -> AsyncIterator[Any]:
    """Pass a streaming body through while the request's API key stays valid: a stream whose
    key is revoked (or whose tenant access ends) ends within `STREAM_KEY_CHECK_SECONDS`, with a
    final SSE `error` event saying why. The body is read by one task for the whole stream
    through a small queue (not a task per chunk)."""
    key = extract_key(request.headers) or ""
    tenant = request.headers.get("x-aionix-tenant")
    source = inner.__aiter__()
    chunks: asyncio.Queue[Any] = asyncio.Queue(16)
    failed: list[BaseException] = []

    async def pump() -> None:
        try:
            async for chunk in source:
                await chunks.put(chunk)
        except Exception as exc:
            failed.append(exc)
        await chunks.put(_END)

    reader = asyncio.get_running_loop().create_task(pump())
    checked = time.monotonic()
    try:
        while True:
            try:
                chunk = chunks.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(max(0.0, STREAM_KEY_CHECK_SECONDS - (time.monotonic() - checked))):
                        chunk = await chunks.get()
                except TimeoutError:
                    chunk = _NOTHING
            if time.monotonic() - checked >= STREAM_KEY_CHECK_SECONDS:
                checked = time.monotonic()
                try:
                    await rt.authenticator.authenticate(key, tenant)
                except AionixError as exc:
                    if media_type == "text/event-stream":
                        error = {"error": {"code": exc.code, "message": f"{exc.message}: the stream is closed"}}
                        yield f"event: error\ndata: {orjson.dumps(error).decode()}\n\n"
                    return
            if chunk is _NOTHING:
                continue
            if chunk is _END:
                if failed:
                    raise failed[0]
                return
            yield chunk
    finally:
        if not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        closer = getattr(source, "aclose", None)
        if closer is not None:
            await closer()


class _Headers(Headers):
    """A request's headers with lookups from a dict built once (Starlette's scan the raw list and
    raise a KeyError inside for each absent header; a call asks for about ten): the first value of
    each name, as Starlette's `get` and `[]` give."""

    def __init__(self, scope: Any) -> None:
        super().__init__(scope=scope)
        first: dict[str, str] = {}
        for key, value in self._list:
            first.setdefault(key.decode("latin-1"), value.decode("latin-1"))
        self._first = first

    def get(self, key: str, default: Any = None) -> Any:
        return self._first.get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return self._first[key.lower()]

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower() in self._first


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _depth(value: Any, limit: int) -> bool:
    """True when `value` nests deeper than `limit`."""
    if not isinstance(value, (dict, list)):
        return False
    stack = [(value, 1)]  # containers only: scalars cannot nest
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for v in item.values() if isinstance(item, dict) else item:
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
    return False


def parse_json(raw: bytes, max_depth: int) -> Any:
    """Parse a JSON body; 400 naming line, column and position when malformed."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno} (position {exc.pos}): {exc.msg}",
            details={"position": exc.pos, "line": exc.lineno, "column": exc.colno},
        ) from None
    # each level of nesting takes an opening bracket: a body of at most `max_depth` bytes cannot nest deeper
    if len(raw) > max_depth and _depth(data, max_depth):
        raise BadRequest(f"JSON nests deeper than {max_depth} levels", details={"max_depth": max_depth})
    return data


def validation_error(exc: ValidationError, where: str = "") -> ValidationFailed:
    items = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        loc = f"{where}.{loc}" if where and loc else (where or loc or "body")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        items.append({"field": loc, "message": msg})
    first = items[0]
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return ValidationFailed(f"{first['field']}: {first['message']}{more}", details=items)


def _integral_floats(exc: ValidationError) -> list[tuple[Any, ...]]:
    """Where an integer field got a float with no fraction (`47478.0`): JSON Schema's `integer`."""
    return [
        err["loc"]
        for err in exc.errors(include_url=False)
        if err["type"] == "int_type" and isinstance(err["input"], float) and err["input"].is_integer()
    ]


def _set_at(data: Any, loc: tuple[Any, ...], value: Any) -> bool:
    """Replace the value at a validation error's `loc` (union member tags in it are skipped)."""
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        in_dict = isinstance(data, dict) and part in data
        if in_dict or (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            if not parts:
                data[part] = value
                return True
            data = data[part]
    return False


def validate_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """Validate a JSON body against `model` in strict mode (no `0` -> false or `"1"` -> 1
    coercion, enums from their values), accepting integral floats for integer fields as JSON
    Schema does, and integer fields bounded by the store's range (422 naming the field)."""
    data: Any = None
    for _ in range(4):  # a retry per nesting of unions whose members report the same float
        try:
            body = model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            locs = _integral_floats(exc)
            if not locs:
                raise validation_error(exc) from None
            if data is None:
                data = jsonutil.loads(raw)
            values = {err["loc"]: err["input"] for err in exc.errors(include_url=False)}
            if not all(_set_at(data, loc, int(values[loc])) for loc in locs):
                raise validation_error(exc) from None
            raw = jsonutil.dumps(data)
            continue
        check_store_ints(body)
        return body
    try:
        body = model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from None
    check_store_ints(body)
    return body


_adapters: dict[Any, TypeAdapter[Any]] = {}


def serialize(value: Any, response_type: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if response_type is None or value is None:
        return value
    adapter = _adapters.get(response_type)
    if adapter is None:
        adapter = _adapters[response_type] = TypeAdapter(response_type)
    return adapter.dump_python(adapter.validate_python(value), mode="json")


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isascii() and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes", details={"limit": limit})
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes", details={"limit": limit})
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("the client disconnected before the body ended") from None
    return b"".join(chunks)


def make_handler(endpoint: Endpoint, rt: Runtime):
    limits = rt.config.limits
    failed_auth = failed_auth_log(rt)
    audit_this = endpoint.audit if endpoint.audit is not None else endpoint.mutating

    async def handle(request: Request) -> Response:
        request._headers = _Headers(request.scope)  # what `request.headers` gives from here on
        # one trace id: a W3C traceparent's, else X-Trace-Id, else a new one (telemetry.py)
        remote = telemetry.parse_traceparent(request.headers.get("traceparent"))
        trace_id = (
            remote.trace_id if remote is not None else request.headers.get("x-trace-id") or telemetry.new_trace_id()
        )
        request.state.trace_id = trace_id
        tracing = telemetry.tracer
        span = trace_token = None
        if tracing is not None:
            span = tracing.start(
                f"{endpoint.method} {endpoint.path}",
                kind=telemetry.SERVER,
                trace_id=trace_id,
                parent=remote,
                attrs={"http.request.method": endpoint.method, "http.route": endpoint.path},
            ).activate()
        else:
            trace_token = telemetry.current_trace.set(trace_id)  # for the log lines
        started = time.perf_counter()
        principal = None
        status = 500
        denied: PolicyDenied | None = None
        try:
            response, principal = await _handle(request)
            status = response.status_code
            return response
        except AionixError as exc:
            status = exc.status
            if isinstance(exc, (Unauthorized, AuthThrottled)) or exc.status == 401:
                await failed_auth.note(request, exc.message, exc.status)
            if isinstance(exc, PolicyDenied):
                denied = exc
            return error_response(exc)
        except Exception:
            log.exception("unhandled error in %s %s", endpoint.method, endpoint.path)
            status = 500
            return json_response(
                {
                    "error": {
                        "code": "internal",
                        "message": "internal error",
                        "details": {"trace_id": request.state.trace_id},
                    }
                },
                500,
            )
        finally:
            rt.metrics.observe_request(endpoint.method, endpoint.path, status, time.perf_counter() - started)
            principal = principal or getattr(request.state, "principal", None)
            if principal is not None and (audit_this or (denied is not None and denied.audit)):
                # a policy's denial names the action, resource and deciding statement
                details = denied.decision.to_dict() if denied is not None else None
                resource = denied.decision.resource if denied is not None else None
                try:
                    await rt.audit(
                        request,
                        principal,
                        f"{endpoint.method} {endpoint.path}",
                        status=status,
                        resource=resource,
                        details=details,
                    )
                except AionixError:
                    log.warning("audit write failed for %s %s", endpoint.method, endpoint.path)
            if span is not None:
                span.set("http.response.status_code", status)
                span.close(f"HTTP {status}" if status >= 500 else None)
            else:
                telemetry.current_trace.reset(trace_token)

    async def _authenticate(request: Request, ip: str) -> Principal:
        """The request's principal. Only requests without a valid key are throttled by address
        (the per-IP bucket and the failed-authentication counter): a valid key is never refused
        for what other clients at the same address did (its own bucket limits it)."""
        guessed = False
        try:
            key = extract_key(request.headers)
            if key is None:
                raise Unauthorized("missing API key (Authorization: Bearer <key> or X-API-Key)")
            guessed = True
            return await rt.authenticator.authenticate(key, request.headers.get("x-aionix-tenant"))
        except Unauthorized:
            guessed = guessed or "authorization" in request.headers
            wait = rt.ip_buckets.take(ip)
            if wait:
                raise AuthThrottled(
                    "too many requests without a valid key from this address", retry_after=wait
                ) from None
            if guessed:  # a guessed or malformed key, not a missing one
                blocked = rt.auth_failures.blocked(ip)
                if blocked:
                    raise AuthThrottled(
                        "too many failed authentications from this address", retry_after=blocked
                    ) from None
                rt.auth_failures.record(ip)
            raise

    async def _handle(request: Request):
        ip = client_ip(request)
        if endpoint.role is None:
            wait = rt.ip_buckets.take(ip)
            if wait:
                raise RateLimited("too many requests from this address", retry_after=wait)
        if request.scope.get("query_string") and (
            "api_key" in request.query_params or "apikey" in request.query_params
        ):
            raise BadRequest("API keys are never accepted in URLs; send Authorization: Bearer <key>")
        principal = None
        deferred = False
        if endpoint.role is not None:
            principal = await _authenticate(request, ip)
            wait = rt.key_buckets.take(principal.key_id)
            if wait:
                raise RateLimited("rate limit exceeded for this API key", retry_after=wait)
            request.state.principal = principal
            # the role's built-in policy and every attached one (aionix/iam/policy_engine.py)
            deferred = await rt.policies.authorize_endpoint(endpoint, principal, request, request.path_params)
        call = Call(request=request, rt=rt, principal=principal, path=dict(request.path_params))
        if principal is not None:
            check_path_params(call.path)
        if endpoint.query is not None:
            try:
                call.query = endpoint.query.model_validate(dict(request.query_params))
            except ValidationError as exc:
                raise validation_error(exc, "query") from None
            check_store_ints(call.query, "query")
        raw = b""
        if endpoint.body is not None or endpoint.raw_body:
            raw = await read_body(request, limits.max_body_bytes)
            call.raw_body = raw
        if endpoint.body is not None:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in endpoint.content_types:
                raise UnsupportedMediaType(
                    f"content type must be {' or '.join(endpoint.content_types)}, got {ctype or 'none'}"
                )
            parse_json(raw, limits.max_json_depth)
            call.body = validate_body(endpoint.body, raw)
        if principal is not None and deferred:  # a statement's condition reads the body (intent)
            await rt.policies.authorize_endpoint(endpoint, principal, request, call.path, call.body, final=True)
        idem_key = request.headers.get("idempotency-key")
        if idem_key and endpoint.mutating and endpoint.idempotent and principal is not None:
            return await run_idempotent(rt, call, endpoint.method, idem_key, raw, _invoke, error_response), principal
        return await _invoke(call), principal

    async def _invoke(call: Call) -> Response:
        result = await endpoint.handler(call)
        if endpoint.mutating and call.principal is not None:  # its tags (aionix/iam/tags.py)
            await rt.policies.after_write(endpoint, call.tenant, call.path)
        if isinstance(result, StreamingResponse) and call.principal is not None:
            result.body_iterator = _while_key_valid(rt, call.request, result.body_iterator, result.media_type)
        if isinstance(result, Response):
            return result
        if result is None and endpoint.status == 204:
            return Response(status_code=204)
        return json_response(serialize(result, endpoint.response), endpoint.status)

    handle.__name__ = endpoint.operation_id
    return handle
