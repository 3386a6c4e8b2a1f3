"""`Idempotency-Key` on mutating requests (RELIABILITY S7).

A record belongs to the API key that made the request and to the tenant it acted in: it is
keyed on (key id, tenant, Idempotency-Key) and remembers the method, path, query and a hash of
the body. The same key with the same request replays the first answer; with another request it
is a 422; a second request while the first still runs is a 409. Another principal sending the
same Idempotency-Key gets its own record and its own execution — never the first answer.

The stored answer may carry a secret (a new `aio_…` key, a `whsec_…`/`whtok_…` webhook secret,
a value an action returned), so it is sealed with AES-256-GCM under the `idempotency` system
key (wrapped by the master key, see `aionix.vault.systemkeys`), with the record's identity as
associated data. When it cannot be opened (a damaged record) the answer is a 409 that says so;
the record is never replayed in plaintext.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from aionix.errors import AionixError, BadRequest, Conflict, ValidationFailed

if TYPE_CHECKING:
    from aionix.api.endpoint import Call
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.api")
SYSTEM_KEY = "idempotency"


def _box(rt: Runtime) -> Any:
    vault = rt.services.get("vault")
    return vault.system_keys.box(SYSTEM_KEY) if vault is not None else None


async def run_idempotent(
    rt: Runtime,
    call: Call,
    method: str,
    key: str,
    raw: bytes,
    invoke: Callable[[Call], Awaitable[Response]],
    on_error: Callable[[AionixError], Response],
) -> Response:
    if len(key) > 255:
        raise BadRequest("Idempotency-Key: at most 255 characters")
    assert call.principal is not None
    request = call.request
    ident = {"key_id": call.principal.key_id, "tenant": call.tenant, "key": key}
    path = request.url.path
    body_hash = hashlib.sha256(
        method.encode() + b" " + path.encode() + b"?" + request.url.query.encode() + b"\n" + raw
    ).hexdigest()
    aad = f"{ident['key_id']}/{ident['tenant']}/{key}/{body_hash}"
    retention = rt.config.security.idempotency_retention_hours * 3600
    now = time.time()

    def reserve(tx: Any) -> dict[str, Any] | None:
        row = tx.fetch_one("core.get_idempotency", ident)
        if row is not None and row["created_at"] < now - retention:
            tx.execute("core.delete_idempotency", ident)
            row = None
        if row is None:
            tx.execute(
                "core.reserve_idempotency",
                {**ident, "method": method, "path": path, "body_hash": body_hash, "now": now},
            )
        return row

    existing = await rt.store.transaction(reserve)
    if existing is not None:
        if existing["body_hash"] != body_hash:
            raise ValidationFailed(
                "Idempotency-Key was already used with a different request",
                details=[{"field": "Idempotency-Key", "message": "reused with a different body, path or query"}],
            )
        if existing["state"] == "in_flight":
            raise Conflict("a request with this Idempotency-Key is still in progress")
        return await _replay(rt, existing, aad)
    try:
        try:
            response = await invoke(call)
        except AionixError as exc:
            response = on_error(exc)
    except BaseException:
        await rt.store.execute("core.release_idempotency", ident)
        raise
    if response.status_code >= 500 or not hasattr(response, "body"):
        await rt.store.execute("core.release_idempotency", ident)
        return response
    stored = None
    box = _box(rt)
    if box is not None:
        stored = (await box).seal_bytes(bytes(response.body), aad)
    await rt.store.execute(
        "core.complete_idempotency",
        {**ident, "status": response.status_code, "response": stored, "media_type": response.media_type},
    )
    return response


async def _replay(rt: Runtime, row: dict[str, Any], aad: str) -> Response:
    box = _box(rt)
    body = None
    if box is not None and row["response"] is not None:
        try:
            body = (await box).open_bytes(row["response"], aad)
        except AionixError as exc:
            log.warning("idempotency record %s cannot be replayed: %s", row["key"], exc.message)
    if body is None:
        raise Conflict(
            "this Idempotency-Key was already used and its first answer cannot be replayed "
            "(the stored answer does not open); send the request with a new Idempotency-Key"
        )
    return Response(
        body,
        status_code=row["status"],
        media_type=row["media_type"] or "application/json",
        headers={"Idempotent-Replayed": "true"},
    )
