"""`s3`: S3-compatible object storage — put, get, list, delete, presign — signed with AWS
Signature Version 4 by the small signer below (botocore is too heavy for the single binary) and
sent through the guarded `http` machinery. S3 error codes become `S3.<Code>` names
(`S3.NoSuchKey`, `S3.SignatureDoesNotMatch`, …)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import xml.etree.ElementTree as ET
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from aionix import jsonutil
from aionix.bus import BusError
from aionix.connectors.httpcall import HttpRequest, check_url, send
from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params
from aionix.errors import field_error

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Connection(ConnectionConfig):
    endpoint_url: str = Field("https://s3.amazonaws.com", description="the S3-compatible endpoint")
    region: str = "us-east-1"
    bucket: str | None = Field(None, description="default bucket")
    access_key_id: str = Field(..., min_length=1)
    secret_access_key_secret: str = Field(..., description="CredVault credential holding the secret access key")
    session_token_secret: str | None = None
    path_style: bool = Field(True, description="https://endpoint/bucket/key (false: https://bucket.endpoint/key)")
    allow_hosts: list[str] = Field(default_factory=list, description="SSRF guard exceptions (admin only)")


class ObjectParams(Params):
    bucket: str | None = Field(None, min_length=3, max_length=63, description="defaults to the connection's bucket")
    key: str = Field(..., min_length=1, max_length=1024)


class PutParams(ObjectParams):
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = Field(default_factory=dict, description="x-amz-meta-* headers")


class GetParams(ObjectParams):
    encoding: Literal["utf-8", "base64"] = "utf-8"
    max_bytes: int | None = Field(None, ge=1)
    offset: int | None = Field(
        None, ge=0, description="a ranged GET from this byte (max_bytes long); size is then the object's size"
    )


class ListParams(Params):
    bucket: str | None = Field(None, min_length=3, max_length=63)
    prefix: str = ""
    max_keys: int = Field(1000, ge=1, le=1000)
    continuation_token: str | None = None


class PresignParams(ObjectParams):
    method: Literal["GET", "PUT"] = "GET"
    expires_seconds: int = Field(3600, ge=1, le=604_800)


# ---------------------------------------------------------------------------- SigV4
def _uri_encode(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params.items()))


def sign(
    method: str,
    url: httpx.URL,
    query: dict[str, str],
    headers: dict[str, str],
    payload_hash: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: dt.datetime,
    service: str = "s3",
) -> dict[str, str]:
    """Add SigV4 `Authorization`, `x-amz-date` and `x-amz-content-sha256` to `headers`."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed["host"] = url.netloc.decode("ascii")
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            _uri_encode(url.path, safe="/-_.~"),
            canonical_query(query),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in headers.items()}
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def presign_url(
    method: str,
    url: httpx.URL,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    expires: int,
    now: dt.datetime,
    token: str | None = None,
) -> str:
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if token:
        query["X-Amz-Security-Token"] = token
    host = url.netloc.decode("ascii")
    canonical = "\n".join(
        [
            method,
            _uri_encode(url.path, safe="/-_.~"),
            canonical_query(query),
            f"host:{host}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_key, amz_date[:8], region), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{url.scheme}://{host}{_uri_encode(url.path, safe='/-_.~')}?{canonical_query(query)}&X-Amz-Signature={signature}"


# ---------------------------------------------------------------------------- calls
def _object_url(c: S3Connection, bucket: str, key: str = "") -> httpx.URL:
    base = httpx.URL(c.endpoint_url)
    path = base.path.rstrip("/")
    if c.path_style:
        return base.copy_with(path=f"{path}/{bucket}/{key}" if key else f"{path}/{bucket}")
    return base.copy_with(host=f"{bucket}.{base.host}", path=f"{path}/{key}")


def _bucket(call: Invocation, bucket: str | None) -> str:
    chosen = bucket or call.connection.config.bucket  # type: ignore[union-attr]
    if not chosen:
        raise field_error("parameters.bucket", "required: the connection has no default bucket")
    return chosen


def _strip(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _s3_error(exc: BusError) -> BusError:
    """Http.* failures as S3.* names, using the S3 error document's Code when there is one."""
    if not exc.error.startswith("Http."):
        return exc
    body = (exc.details or {}).get("body") if isinstance(exc.details, dict) else None
    code = None
    if isinstance(body, str) and body.lstrip().startswith("<"):
        try:
            root = ET.fromstring(body[:65536])
            code = next((el.text for el in root.iter() if _strip(el.tag) == "Code"), None)
        except ET.ParseError:
            code = None
    suffix = code or exc.error.removeprefix("Http.")
    return BusError(
        f"S3.{suffix}",
        exc.cause,
        details={
            "http_error": exc.error,
            "status": (exc.details or {}).get("status") if isinstance(exc.details, dict) else None,
        },
    )


async def _call(
    call: Invocation,
    method: str,
    url: httpx.URL,
    query: dict[str, str],
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
    raw: bool = False,
) -> dict[str, Any]:
    conn = call.connection
    assert conn is not None
    c: S3Connection = conn.config
    secret = str(await conn.secret(c.secret_access_key_secret))
    extra = dict(headers or {})
    if c.session_token_secret:
        extra["x-amz-security-token"] = str(await conn.secret(c.session_token_secret))
    signed = sign(
        method,
        url,
        query,
        extra,
        hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
        access_key=c.access_key_id,
        secret_key=secret,
        region=c.region,
        now=dt.datetime.now(dt.UTC),
    )
    qs = canonical_query(query)
    full = f"{url.scheme}://{url.netloc.decode('ascii')}{_uri_encode(url.path, safe='/-_.~')}" + (
        f"?{qs}" if qs else ""
    )
    req = HttpRequest(
        method,
        full,
        signed,
        {},
        content=body or None,
        timeout=call.timeout,
        max_bytes=max_bytes or call.max_result_bytes,
        max_redirects=0,
        follow_redirects=False,
        parse_body=not raw,
    )
    try:
        return await send(conn.resource, req)
    except BusError as exc:
        raise _s3_error(exc) from None


async def run_put(call: Invocation) -> dict[str, Any]:
    p: PutParams = call.params
    bucket = _bucket(call, p.bucket)
    if p.encoding == "base64":
        try:
            data = base64.b64decode(p.content, validate=True)
        except ValueError:
            raise field_error("parameters.content", "is not valid base64") from None
    else:
        data = p.content.encode("utf-8")
    headers = {"content-type": p.content_type, **{f"x-amz-meta-{k.lower()}": v for k, v in p.metadata.items()}}
    result = await _call(call, "PUT", _object_url(call.connection.config, bucket, p.key), {}, data, headers)  # type: ignore[union-attr]
    return {"bucket": bucket, "key": p.key, "etag": result["headers"].get("etag", "").strip('"'), "size": len(data)}


async def run_get(call: Invocation) -> dict[str, Any]:
    p: GetParams = call.params
    bucket = _bucket(call, p.bucket)
    limit = min(p.max_bytes or call.max_result_bytes, call.max_result_bytes)
    ranged = {"range": f"bytes={p.offset}-{p.offset + limit - 1}"} if p.offset is not None else None
    try:
        url = _object_url(call.connection.config, bucket, p.key)  # type: ignore[union-attr]
        result = await _call(call, "GET", url, {}, headers=ranged, max_bytes=limit, raw=True)
    except BusError as exc:
        if ranged is None or exc.error != "S3.InvalidRange":
            raise
        # a range that starts at (or past) the end of the object: nothing more to read
        size = p.offset or 0
        return {"bucket": bucket, "key": p.key, "content": "", "encoding": p.encoding, "size": size, "truncated": False}
    body = result["body"]
    if result.get("body_encoding") == "base64":
        raw = base64.b64decode(body)
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    elif body is None:
        raw = b""
    else:
        raw = jsonutil.dumps(body)
    content = base64.b64encode(raw).decode("ascii") if p.encoding == "base64" else raw.decode("utf-8", errors="replace")
    headers = result["headers"]
    return {
        "bucket": bucket,
        "key": p.key,
        "content": content,
        "encoding": p.encoding,
        "content_type": headers.get("content-type"),
        "size": _object_size(headers, len(raw)),
        "etag": headers.get("etag", "").strip('"'),
        "truncated": result["truncated"],
        "metadata": {k.removeprefix("x-amz-meta-"): v for k, v in headers.items() if k.startswith("x-amz-meta-")},
    }


def _object_size(headers: dict[str, Any], received: int) -> int:
    """The object's size: from Content-Range (`bytes 0-99/1234`) on a ranged GET."""
    ranged = headers.get("content-range", "")
    if "/" in ranged and ranged.rsplit("/", 1)[1].isdigit():
        return int(ranged.rsplit("/", 1)[1])
    return int(headers.get("content-length") or received)


async def run_list(call: Invocation) -> dict[str, Any]:
    p: ListParams = call.params
    bucket = _bucket(call, p.bucket)
    query = {"list-type": "2", "max-keys": str(p.max_keys)}
    if p.prefix:
        query["prefix"] = p.prefix
    if p.continuation_token:
        query["continuation-token"] = p.continuation_token
    result = await _call(call, "GET", _object_url(call.connection.config, bucket), query)  # type: ignore[union-attr]
    if result["truncated"] or not isinstance(result["body"], str):
        raise KIND.error("Error", "the listing was larger than the result size limit: lower max_keys")
    root = ET.fromstring(result["body"])
    items = []
    next_token = None
    more = False
    for el in root:
        tag = _strip(el.tag)
        if tag == "Contents":
            fields = {_strip(child.tag): child.text for child in el}
            items.append(
                {
                    "key": fields.get("Key"),
                    "size": int(fields.get("Size") or 0),
                    "etag": (fields.get("ETag") or "").strip('"'),
                    "last_modified": fields.get("LastModified"),
                }
            )
        elif tag == "NextContinuationToken":
            next_token = el.text
        elif tag == "IsTruncated":
            more = el.text == "true"
    return {"bucket": bucket, "items": items, "next_token": next_token, "truncated": more}


async def run_delete(call: Invocation) -> dict[str, Any]:
    p: ObjectParams = call.params
    bucket = _bucket(call, p.bucket)
    await _call(call, "DELETE", _object_url(call.connection.config, bucket, p.key), {})  # type: ignore[union-attr]
    return {"bucket": bucket, "key": p.key, "deleted": True}


async def run_presign(call: Invocation) -> dict[str, Any]:
    p: PresignParams = call.params
    conn = call.connection
    assert conn is not None
    c: S3Connection = conn.config
    bucket = _bucket(call, p.bucket)
    now = dt.datetime.now(dt.UTC)
    token = str(await conn.secret(c.session_token_secret)) if c.session_token_secret else None
    url = presign_url(
        p.method,
        _object_url(c, bucket, p.key),
        access_key=c.access_key_id,
        secret_key=str(await conn.secret(c.secret_access_key_secret)),
        region=c.region,
        expires=p.expires_seconds,
        now=now,
        token=token,
    )
    return {"url": url, "method": p.method, "expires_at": (now + dt.timedelta(seconds=p.expires_seconds)).isoformat()}


async def open_client(conn: Any) -> Any:
    check_url(conn.config.endpoint_url, "config.endpoint_url")
    return conn.service.http_client_for(conn.config.allow_hosts)


async def close_client(client: Any) -> None:
    await client.aclose()


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    from aionix.bus import CallContext

    if not conn.config.bucket:
        return {"ok": True, "detail": "no default bucket to list; configuration is valid"}
    call = Invocation(
        ListParams(max_keys=1),
        CallContext(tenant=conn.tenant),
        settings,
        conn,
        min(settings.timeout_seconds, 15),
        65536,
        conn.service,
    )
    await run_list(call)
    return {"ok": True, "detail": f"listed bucket {conn.config.bucket}"}


_OBJ = {"type": "object", "properties": {"bucket": {"type": "string"}, "key": {"type": "string"}}}

KIND = ConnectorKind(
    name="s3",
    title="S3-compatible object storage",
    error_prefix="S3",
    connection_model=S3Connection,
    requires_connection=True,
    default_operation=None,
    operations={
        "put": Operation("put", "Upload an object", PutParams, _OBJ, run_put),
        "get": Operation(
            "get",
            "Download an object (text or base64)",
            GetParams,
            {**_OBJ, "required": ["content", "truncated"]},
            run_get,
        ),
        "list": Operation(
            "list",
            "List objects (ListObjectsV2)",
            ListParams,
            {"type": "object", "properties": {"items": {"type": "array"}, "next_token": {}}},
            run_list,
        ),
        "delete": Operation("delete", "Delete an object", ObjectParams, _OBJ, run_delete),
        "presign": Operation(
            "presign",
            "A presigned GET or PUT URL",
            PresignParams,
            {"type": "object", "properties": {"url": {"type": "string"}}},
            run_presign,
        ),
    },
    open=open_client,
    close=close_client,
    test=test_connection,
    examples=[{"connection": "reports", "operation": "put", "key": "daily/2026-01-01.json", "content": "{}"}],
)
