"""Receiving `POST /hooks/{tenant}/{name}`: check, record, deliver, answer.

Order of checks (every refusal starts nothing and, when the trigger exists, is recorded in its
history as `rejected` with the precise reason): body size (413), signature or bearer token and
replay window (401), trigger enabled (409), content type (415), then the body is parsed (400)
and the fire is recorded under the `webhook-id` (a second delivery of the same id is a replay:
409). Every authentication failure — missing or malformed headers, a stale timestamp, a wrong
signature or token — and a trigger name that does not exist all get the same 401 answer, so
trigger names cannot be enumerated; the trigger's history says which check failed. Only then is
the target invoked: in `async` reply mode the answer is 202 with the fire's state (and the
execution id when the start was quick); in `sync` mode the workflow's output is the answer,
bounded by `reply_timeout_seconds` (504 after that; the fire stays in the outbox and the start
is completed in the background under the same key).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from aionix import jsonutil
from aionix.api.dispatch import error_response, parse_json
from aionix.api.limits import TokenBuckets
from aionix.errors import AionixError
from aionix.iam.quotas import QuotaExceeded
from aionix.triggers.delivery import Delivery, is_workflow
from aionix.triggers.models import TriggersConfig, WebhookSpec
from aionix.triggers.records import deliverable, fire_record, trigger_trn
from aionix.triggers.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    WebhookRejected,
    WebhookSecrets,
    verify_signature,
    verify_token,
)
from aionix.vault.systemkeys import SealedUnreadable

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.triggers")
#: Headers never copied into the payload the target sees.
_PRIVATE_HEADERS = frozenset({"authorization", "cookie", SIGNATURE_HEADER, "x-api-key"})
#: Refusals that are answered as one indistinguishable 401 (the history keeps the reason).
AUTH_FAILURES = frozenset(
    {
        "signature_missing",
        "bad_webhook_id",
        "bad_timestamp",
        "timestamp_out_of_window",
        "signature_invalid",
        "token_missing",
        "token_invalid",
        "unknown_trigger",
    }
)
UNAUTHORIZED_MESSAGE = (
    "the delivery is not authenticated for this webhook: it needs a valid Standard Webhooks "
    "signature (webhook-id, webhook-timestamp within the allowed window, webhook-signature) or "
    "the trigger's bearer token; the trigger's history says which check failed"
)
_DEFAULT_MAX_BODY = WebhookSpec.model_fields["max_body_bytes"].default


def _json(data: Any, status: int) -> Response:
    return Response(jsonutil.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    return _json({"error": {"code": code, "message": message, "details": details}}, status)


def active_credentials(credentials: dict[str, Any], now: float) -> list[dict[str, Any]]:
    return [c for c in credentials.get("items", []) if c.get("expires_at") is None or c["expires_at"] > now]


class Webhooks:
    def __init__(
        self,
        rt: Runtime,
        cfg: TriggersConfig,
        delivery: Delivery,
        box: WebhookSecrets,
        clock: Callable[[], float],
    ) -> None:
        self.rt = rt
        self.cfg = cfg
        self.delivery = delivery
        self.box = box
        self.clock = clock
        #: Refused deliveries are recorded in the history, but at most this fast per trigger, so
        #: an unauthenticated flood cannot fill the database (the excess is only counted).
        self._reject_buckets = TokenBuckets(cfg.rejected_record_rate, cfg.rejected_record_burst)
        self.rejected_unrecorded = 0
        #: triggers whose unreadable secret was logged already (logged once each)
        self._unreadable_logged: set[str] = set()

    async def receive(self, tenant: str, name: str, request: Request) -> Response:
        row = await self.rt.store.fetch_one("triggers.get_trigger", {"tenant": tenant, "name": name})
        if row is None or row["kind"] != "webhook":
            # answered exactly like a delivery that fails authentication: names are not revealed
            try:
                await self._read_body(request, _DEFAULT_MAX_BODY)
            except WebhookRejected as exc:
                return self._answer(exc, tenant, name)
            return self._answer(WebhookRejected(401, "unknown_trigger", "no such webhook"), tenant, name)
        try:
            return await self._receive(row, request)
        except WebhookRejected as exc:
            await self._reject(row, exc)
            return self._answer(exc, tenant, name)
        except QuotaExceeded as exc:  # webhooks_per_minute: 429 with its reset and Retry-After
            return error_response(exc)

    @staticmethod
    def _answer(exc: WebhookRejected, tenant: str, name: str) -> Response:
        details = {"trigger": trigger_trn(tenant, name)}
        if exc.code in AUTH_FAILURES:
            return _error(401, "unauthorized", UNAUTHORIZED_MESSAGE, details)
        return _error(exc.status, exc.code, exc.message, details)

    def _open_secrets(self, row: dict[str, Any], active: list[dict[str, Any]]) -> list[str]:
        """The active secrets that open; a 500 naming the way out when none does."""
        aad = f"{row['tenant']}/{row['id']}"
        opened: list[str] = []
        problem = None
        for item in active:
            if "sealed" not in item:
                continue
            try:
                opened.append(self.box.open(item["sealed"], aad))
            except SealedUnreadable as exc:
                problem = exc.message
        if problem is not None and row["id"] not in self._unreadable_logged:
            self._unreadable_logged.add(row["id"])
            log.error("webhook trigger %s/%s: %s", row["tenant"], row["name"], problem)
        if problem is not None and not opened:
            raise WebhookRejected(
                500,
                "webhook_secret_unreadable",
                f"{problem}; an operator must issue a new secret: aio tr rotate-secret {row['name']} "
                f"(POST /api/v1/triggers/{row['name']}/rotate-secret) and give it to the sender",
            )
        return opened

    async def _receive(self, row: dict[str, Any], request: Request) -> Response:
        spec = WebhookSpec.model_validate(jsonutil.loads(row["config"]))
        body = await self._read_body(request, spec.max_body_bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        now = self.clock()
        credentials = jsonutil.loads(row["credentials"] or "{}")
        active = active_credentials(credentials, now)
        if spec.auth == "hmac":
            secrets = self._open_secrets(row, active)
            webhook_id, _ = verify_signature(secrets, headers, body, now=now, tolerance=spec.tolerance_seconds)
        else:
            verify_token([c["hash"] for c in active if "hash" in c], headers.get("authorization", ""))
            webhook_id = headers.get(ID_HEADER) or uuid.uuid4().hex
            if len(webhook_id) > 256:
                raise WebhookRejected(400, "bad_webhook_id", f"{ID_HEADER}: at most 256 characters")
        if not row["enabled"]:
            raise WebhookRejected(409, "trigger_disabled", f"trigger {row['name']!r} is disabled")
        if row["tenant"] in self.rt.tenants.suspended:
            raise WebhookRejected(403, "tenant_suspended", f"tenant {row['tenant']!r} is suspended")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in spec.content_types:
            raise WebhookRejected(
                415,
                "unsupported_media_type",
                f"content type must be {' or '.join(spec.content_types)}, got {ctype or 'none'}",
            )
        parsed = self._parse(body, ctype, self.rt.config.limits.max_json_depth)
        payload = {
            "id": webhook_id,
            "trigger": trigger_trn(row["tenant"], row["name"]),
            "received_at": now,
            "body": parsed,
            "headers": {k: v for k, v in headers.items() if k not in _PRIVATE_HEADERS},
            "query": dict(request.query_params),
        }
        record = fire_record(row, webhook_id, "webhook", payload, now=now, node=self.rt.cluster.node_id)

        def store_fire(tx: Any) -> int | None:
            inserted = tx.fetch_one("triggers.insert_fire", record)
            if inserted is None:
                return None
            self.rt.quotas.charge_tx(tx, row["tenant"], "webhooks_per_minute", 1)  # 429 past the limit
            tx.execute("triggers.count_fired", {"id": row["id"], "now": now})
            return int(inserted["id"])

        fire_id = await self.rt.store.transaction(store_fire)
        if fire_id is None:
            raise WebhookRejected(409, "replayed", f"webhook id {webhook_id!r} was already received")
        fire = deliverable(fire_id, record, row)
        if spec.reply == "sync":
            return await self._reply_sync(fire, spec)
        outcome = await self.delivery.deliver(fire, record_behind=True)
        answer = {
            "fire_id": fire_id,
            "webhook_id": webhook_id,
            "status": outcome.status,
            "result_id": outcome.result_id,
        }
        if outcome.error:
            answer["error"] = {"error": outcome.error, "cause": outcome.cause}
        return _json(answer, 202)

    async def _reply_sync(self, fire: dict[str, Any], spec: WebhookSpec) -> Response:
        started = time.monotonic()
        outcome = await self.delivery.deliver(fire, mode="sync", timeout=spec.reply_timeout_seconds)
        if outcome.status != "delivered":
            elapsed = time.monotonic() - started
            if outcome.error == "States.Timeout" or elapsed >= spec.reply_timeout_seconds:
                return _error(
                    504,
                    "reply_timeout",
                    f"the target did not answer within {spec.reply_timeout_seconds:g} s; the run goes on",
                    {"fire_id": fire["id"]},
                )
            return _error(502, "target_failed", f"{outcome.error}: {outcome.cause}", {"fire_id": fire["id"]})
        result = outcome.result
        if is_workflow(fire["target"]) and isinstance(result, dict) and "status" in result:
            if result["status"] == "RUNNING":
                return _error(
                    504,
                    "reply_timeout",
                    f"execution {result.get('execution_id')} is still running; the run goes on",
                    {"fire_id": fire["id"], "execution_id": result.get("execution_id")},
                )
            if result["status"] != "SUCCEEDED":
                return _error(
                    502,
                    "execution_failed",
                    f"execution {result.get('execution_id')} ended {result['status']}",
                    {
                        "execution_id": result.get("execution_id"),
                        "status": result["status"],
                        "error": result.get("error"),
                    },
                )
            return _json(result.get("output"), 200)
        return _json(result, 200)

    @staticmethod
    async def _read_body(request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isascii() and length.isdigit() and int(length) > limit:
            raise WebhookRejected(413, "payload_too_large", f"the body is larger than {limit} bytes")
        chunks = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise WebhookRejected(413, "payload_too_large", f"the body is larger than {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            # nobody is left to answer: recorded as a rejected delivery, never a 500
            raise WebhookRejected(400, "client_disconnected", "the client disconnected before the body ended") from None
        return b"".join(chunks)

    @staticmethod
    def _parse(body: bytes, ctype: str, max_depth: int) -> Any:
        if ctype == "application/json":
            if not body:
                return None
            try:
                return parse_json(body, max_depth)
            except AionixError as exc:
                raise WebhookRejected(400, "bad_request", exc.message) from None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise WebhookRejected(400, "bad_request", "the body is not UTF-8 text") from None
        if ctype == "application/x-www-form-urlencoded":
            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
        return text

    async def _reject(self, row: dict[str, Any], exc: WebhookRejected) -> None:
        self.delivery.metrics.rejected.labels(exc.code).inc()
        if self._reject_buckets.take(row["id"]):
            self.rejected_unrecorded += 1
            return
        now = self.clock()
        record = fire_record(
            row,
            f"rejected:{uuid.uuid4().hex}",
            "webhook",
            None,
            now=now,
            status="rejected",
            error=exc.code,
            cause=exc.message,
        )
        try:
            await self.rt.store.transaction(lambda tx: tx.fetch_one("triggers.insert_fire", record))
        except Exception:
            log.exception("recording a rejected webhook for %s failed", row["name"])
