"""Routes: verify the audit chain, export the audit trail (streamed, or to S3)."""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from aionix.api.endpoint import Api, Call
from aionix.errors import Forbidden, field_error
from aionix.iam import audit as chain

api = Api("audit")
#: one S3 object per this many bytes of export (each is one PUT; memory stays bounded)
PART_BYTES = 1 << 20


class ChainSummary(BaseModel):
    tenant: str | None
    rows: int
    checkpoints: int


class ChainProblem(BaseModel):
    tenant: str | None
    id: int | None
    seq: int | None
    kind: Literal["edited", "deleted", "forged"]
    message: str


class VerifyResult(BaseModel):
    ok: bool
    chains: list[ChainSummary]
    problems: list[ChainProblem]
    unchained_rows: int = Field(..., description="rows written before the chain existed (not verifiable)")


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: float | None = Field(None, ge=0, le=1e11, description="Unix time")
    until: float | None = Field(None, ge=0, le=1e11, description="Unix time (exclusive)")
    all_tenants: bool = Field(False, description="cross-tenant admins: every tenant's rows and the tenant-less ones")


class ExportToS3(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(..., max_length=1100, pattern=r"^s3://[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/.*)?$")
    since: float | None = Field(None, ge=0, le=1e11)
    until: float | None = Field(None, ge=0, le=1e11)
    format: Literal["jsonl", "csv"] = "jsonl"
    all_tenants: bool = False


class ExportedObject(BaseModel):
    bucket: str | None = None
    key: str
    size: int


class ExportResult(BaseModel):
    rows: int
    objects: list[ExportedObject]


def _scope(call: Call, all_tenants: bool) -> str | None:
    assert call.principal is not None
    if all_tenants:
        if not call.principal.cross_tenant:
            raise Forbidden("only a cross-tenant admin key may export every tenant's audit trail")
        return None
    return call.tenant


@api.get("/api/v1/audit/verify", role="admin", response=VerifyResult)
async def verify_audit(call: Call) -> dict[str, Any]:
    """Verify the audit hash chain: names every edited, deleted or forged row (cross-tenant
    admins: every chain)."""
    assert call.principal is not None
    return await chain.verify(call.rt, None if call.principal.cross_tenant else call.tenant)


@api.get("/api/v1/audit/export", role="admin", query=ExportQuery, media_type="application/x-ndjson", audit=True)
async def export_audit(call: Call) -> StreamingResponse:
    """The audit trail as JSON Lines (one row a line, with its chain fields), oldest first,
    streamed from the store a page at a time (`aio admin audit export --format csv` converts)."""
    q: ExportQuery = call.query
    tenant = _scope(call, q.all_tenants)
    rows = chain.export_rows(call.rt, tenant, q.since, q.until)
    return StreamingResponse(chain.export_lines(rows, "jsonl"), media_type="application/x-ndjson")


@api.post("/api/v1/audit/export", role="admin", body=ExportToS3, response=ExportResult)
async def export_audit_to_s3(call: Call) -> dict[str, Any]:
    """Export the audit trail to S3 through a connection (`s3://CONNECTION/prefix`), in parts of
    about 1 MiB, streamed from the store."""
    body: ExportToS3 = call.body
    tenant = _scope(call, body.all_tenants)
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", body.to)
    assert m is not None
    connection, prefix = m.group(1), m.group(2).strip("/")
    if ".." in prefix.split("/"):
        raise field_error("body.to", "the prefix may not contain '..'")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ext = "csv" if body.format == "csv" else "jsonl"
    objects: list[dict[str, Any]] = []
    count = 0
    buf = bytearray()
    header = b""

    async def flush() -> None:
        key = f"{prefix}/audit-{stamp}-{len(objects) + 1:05d}.{ext}".lstrip("/")
        payload = {
            "operation": "put",
            "connection": connection,
            "key": key,
            "content": bytes(buf).decode("utf-8"),
            "content_type": "text/csv" if ext == "csv" else "application/x-ndjson",
        }
        out = await call.rt.bus.invoke("s3", payload, call.context())
        objects.append({"bucket": out.get("bucket"), "key": key, "size": len(buf)})
        buf.clear()
        if header:
            buf.extend(header)

    rows = chain.export_rows(call.rt, tenant, body.since, body.until)
    first = True
    async for line in chain.export_lines(rows, body.format):
        if first and body.format == "csv":
            header = line  # every CSV part starts with the header
            buf.extend(line)
            first = False
            continue
        first = False
        count += 1
        buf.extend(line)
        if len(buf) >= PART_BYTES:
            await flush()
    if len(buf) > len(header) or not objects:
        await flush()
    return {"rows": count, "objects": objects}
