"""gRPC `aion.v1.AionTasks` (proto/aion/v1/tasks.proto), served by the server process itself
(grpc.aio on the same event loop) when `[ai] grpc_port` is set; needs the extra aionix[grpc].

The same tasks as the HTTP API, through the same `AiService`: `Submit` (operator), `Stream`
(viewer; the SSE stream's events) and `StatusById` (viewer). The API key comes from the
metadata (`authorization: Bearer <key>` or `x-api-key`, `x-aionix-tenant` as on HTTP), never
from a message; failed authentications count against the peer address as on HTTP. A task of
another tenant is NOT_FOUND. With `[ai] grpc_tls_cert`/`grpc_tls_key` the port speaks TLS only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from pydantic import ValidationError

from aionix.ai.grpc_pb import tasks_pb2 as pb
from aionix.ai.models import SubmitTask
from aionix.api.auth import Principal, require_role
from aionix.api.dispatch import STREAM_KEY_CHECK_SECONDS, validation_error
from aionix.errors import AionixError, ConfigError, RateLimited, Unauthorized

if TYPE_CHECKING:
    from aionix.ai.service import AiService

log = logging.getLogger("aionix.ai.grpc")
SERVICE = "aion.v1.AionTasks"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def envelope_message(env: dict[str, Any]) -> pb.TaskEnvelope:
    data = {k: v for k, v in env.items() if v is not None and k != "result"}
    msg = json_format.ParseDict(data, pb.TaskEnvelope(), ignore_unknown_fields=True)
    if env.get("result") is not None:
        json_format.ParseDict(env["result"], msg.result)
    return msg


def event_message(task_id: str, seq: int, kind: str, data: Any) -> pb.TaskEvent:
    msg = pb.TaskEvent(task_id=task_id, id=seq, event=kind)
    if kind in ("done", "error") and isinstance(data, dict) and "task_id" in data:
        msg.envelope.CopyFrom(envelope_message(data))
    elif isinstance(data, dict):
        msg.data.update(data)
    return msg


class _Servicer:
    def __init__(self, svc: AiService) -> None:
        self.svc = svc
        self.rt = svc.rt

    async def _principal(self, context: grpc.aio.ServicerContext, role: str) -> tuple[Principal, str, str | None]:
        meta = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        peer = context.peer() or ""
        ip = peer.split(":", 1)[1].rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
        tenant = meta.get("x-aionix-tenant")
        key = None
        auth = meta.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthorized("the authorization metadata must be 'Bearer <key>'")
            key = value.strip()
        elif meta.get("x-api-key"):
            key = meta["x-api-key"].strip()
        if not key:
            raise Unauthorized("missing API key (metadata authorization: Bearer <key> or x-api-key)")
        blocked = self.rt.auth_failures.blocked(ip)
        if blocked:
            raise RateLimited("too many failed authentications from this address", retry_after=blocked)
        try:
            principal = await self.rt.authenticator.authenticate(key, tenant)
        except Unauthorized:
            self.rt.auth_failures.record(ip)
            raise
        wait = self.rt.key_buckets.take(principal.key_id)
        if wait:
            raise RateLimited("rate limit exceeded for this API key", retry_after=wait)
        require_role(principal, role)
        return principal, key, tenant

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, exc: AionixError) -> None:
        code = _CODES.get(exc.status, grpc.StatusCode.INTERNAL)
        retry = getattr(exc, "retry_after", None)
        if retry:
            context.set_trailing_metadata((("retry-after", f"{max(1, round(retry))}"),))
        await context.abort(code, f"{exc.code}: {exc.message}")

    async def submit(self, request: pb.SubmitRequest, context: grpc.aio.ServicerContext) -> pb.TaskEnvelope:
        try:
            principal, _, _ = await self._principal(context, "operator")
            body: dict[str, Any] = {"intent": request.intent, "params": json_format.MessageToDict(request.params)}
            if request.privacy:
                body["privacy"] = request.privacy
            for name in ("budget_usd", "latency_ms", "max_tokens"):
                if request.HasField(name):
                    body[name] = getattr(request, name)
            try:
                task = SubmitTask.model_validate(body)
            except ValidationError as exc:
                raise validation_error(exc) from None
            trace = request.trace_id.lower()
            if not (len(trace) == 32 and all(c in "0123456789abcdef" for c in trace)):
                trace = None
            run = await self.svc.submit(principal.tenant, principal.key_id, task, trace_id=trace, principal=principal)
            if request.wait:
                await self.svc.wait(run, self.svc.config.sync_wait_seconds)
            return envelope_message(run.envelope())
        except AionixError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None

    async def status_by_id(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.TaskEnvelope:
        try:
            principal, _, _ = await self._principal(context, "viewer")
            return envelope_message(await self.svc.get(principal.tenant, request.task_id[:64]))
        except AionixError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None

    async def stream(self, request: pb.StreamRequest, context: grpc.aio.ServicerContext) -> Any:
        try:
            principal, key, tenant = await self._principal(context, "viewer")
            task_id = request.task_id[:64]
            envelope = await self.svc.get(principal.tenant, task_id)
        except AionixError as exc:
            await self._abort(context, exc)
            return
        run = self.svc.runs.get(task_id)
        if run is None or run.tenant != principal.tenant:
            yield event_message(task_id, 0, "done" if envelope["status"] == "OK" else "error", envelope)
            return
        after = max(0, request.after)
        checked = time.monotonic()
        while True:
            while len(run.events) > after:
                seq, kind, data = run.event(after)
                after = seq
                yield event_message(task_id, seq, kind, data)
                if kind in ("done", "error"):
                    return
            if run.done.is_set() and len(run.events) <= after:
                return
            await run.wait_event(after, STREAM_KEY_CHECK_SECONDS)
            if time.monotonic() - checked >= STREAM_KEY_CHECK_SECONDS:
                checked = time.monotonic()
                try:
                    await self.rt.authenticator.authenticate(key, tenant)
                except AionixError as exc:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{exc.code}: {exc.message}")
                    return


def _handler(servicer: _Servicer) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Submit": grpc.unary_unary_rpc_method_handler(
                servicer.submit,
                request_deserializer=pb.SubmitRequest.FromString,
                response_serializer=pb.TaskEnvelope.SerializeToString,
            ),
            "Stream": grpc.unary_stream_rpc_method_handler(
                servicer.stream,
                request_deserializer=pb.StreamRequest.FromString,
                response_serializer=pb.TaskEvent.SerializeToString,
            ),
            "StatusById": grpc.unary_unary_rpc_method_handler(
                servicer.status_by_id,
                request_deserializer=pb.StatusRequest.FromString,
                response_serializer=pb.TaskEnvelope.SerializeToString,
            ),
        },
    )


class AionTasksStub:
    """A client for `aion.v1.AionTasks` over a grpc (or grpc.aio) channel."""

    def __init__(self, channel: Any) -> None:
        self.Submit = channel.unary_unary(
            f"/{SERVICE}/Submit",
            request_serializer=pb.SubmitRequest.SerializeToString,
            response_deserializer=pb.TaskEnvelope.FromString,
        )
        self.Stream = channel.unary_stream(
            f"/{SERVICE}/Stream",
            request_serializer=pb.StreamRequest.SerializeToString,
            response_deserializer=pb.TaskEvent.FromString,
        )
        self.StatusById = channel.unary_unary(
            f"/{SERVICE}/StatusById",
            request_serializer=pb.StatusRequest.SerializeToString,
            response_deserializer=pb.TaskEnvelope.FromString,
        )


async def serve(svc: AiService) -> grpc.aio.Server:
    """Start the gRPC server on `[ai] grpc_host:grpc_port` (TLS with grpc_tls_cert/key)."""
    cfg = svc.config
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((_handler(_Servicer(svc)),))
    host = cfg.grpc_host
    address = f"[{host}]:{cfg.grpc_port}" if ":" in host else f"{host}:{cfg.grpc_port}"
    if bool(cfg.grpc_tls_cert) != bool(cfg.grpc_tls_key):
        raise ConfigError("config error: ai.grpc_tls_cert and ai.grpc_tls_key go together (PEM files)")
    try:
        if cfg.grpc_tls_cert:
            try:
                cert = Path(cfg.grpc_tls_cert).expanduser().read_bytes()
                key = Path(cfg.grpc_tls_key).expanduser().read_bytes()
            except OSError as exc:
                raise ConfigError(f"config error: ai.grpc_tls_cert/key: {exc.filename}: {exc.strerror}") from None
            bound = server.add_secure_port(address, grpc.ssl_server_credentials(((key, cert),)))
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(f"config error: ai.grpc_port: cannot listen on {address}: {exc}") from None
    if not bound:
        raise ConfigError(f"config error: ai.grpc_port: cannot listen on {address}")
    await server.start()
    log.info("gRPC %s on %s (%s)", SERVICE, address, "TLS" if cfg.grpc_tls_cert else "plaintext")
    return server


async def stop(server: grpc.aio.Server) -> None:
    await asyncio.shield(server.stop(1.0))
