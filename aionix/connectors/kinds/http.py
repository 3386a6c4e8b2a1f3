"""`http`: any method, headers, query, JSON/form/raw bodies, auth from CredVault, a GraphQL
helper; the response as `{status, headers, body}` (JSON parsed when it is JSON). Non-2xx
answers fail with `Http.Status.<code>` like Step Functions' HTTP task."""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aionix import jsonutil
from aionix.bus import BusError
from aionix.connectors.httpcall import HttpRequest, check_url, send
from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params
from aionix.errors import field_error

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "body": {
            "description": "parsed JSON when the response is JSON, else text (base64 when body_encoding is base64)"
        },
        "truncated": {"type": "boolean", "description": "true when the body was cut at the result size limit"},
        "body_encoding": {"type": "string", "enum": ["base64"]},
    },
    "required": ["status", "headers", "body", "truncated"],
}


class HttpAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["bearer", "basic", "api_key", "oauth2"]
    token_secret: str | None = Field(
        None,
        description="bearer: CredVault credential holding the token; oauth2 authorization_code: where the tokens are stored",
    )
    username: str | None = Field(None, description="basic: user name")
    password_secret: str | None = Field(None, description="basic: CredVault credential holding the password")
    header: str = Field("X-API-Key", description="api_key: header name")
    query_param: str | None = Field(None, description="api_key: send as this query parameter instead of a header")
    value_secret: str | None = Field(None, description="api_key: CredVault credential holding the key")
    # oauth2 (AuthFlow)
    grant: Literal["authorization_code", "client_credentials"] = "client_credentials"
    token_url: str | None = None
    authorize_url: str | None = None
    client_id: str | None = None
    client_secret_secret: str | None = Field(None, description="oauth2: CredVault credential holding the client secret")
    scopes: list[str] = Field(default_factory=list)
    redirect_uri: str | None = Field(None, description="oauth2: defaults to this server's /api/v1/authflow/callback")

    @field_validator("token_url", "authorize_url", "redirect_uri")
    @classmethod
    def _urls(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            check_url(v, f"config.auth.{info.field_name}")
        return v

    def model_post_init(self, _: Any) -> None:
        need = {
            "bearer": ["token_secret"],
            "basic": ["username", "password_secret"],
            "api_key": ["value_secret"],
            "oauth2": ["token_url", "client_id"]
            + (["authorize_url", "token_secret"] if self.grant == "authorization_code" else []),
        }[self.type]
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"auth type {self.type} needs {name}")


class HttpConnection(ConnectionConfig):
    base_url: str | None = Field(None, description="relative request URLs are joined to this")
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request (no secrets here)")
    auth: HttpAuth | None = None
    allow_hosts: list[str] = Field(
        default_factory=list, description="SSRF guard exceptions for this connection (admin only)"
    )
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        if v is not None:
            check_url(v, "config.base_url")
        return v


class RequestParams(Params):
    method: str = Field("GET", description="GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")
    url: str = Field(..., min_length=1, description="absolute, or relative to the connection's base_url")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(default_factory=dict)
    body: Any = Field(None, description="raw body: a string is sent as is, anything else as JSON")
    json_body: Any = Field(None, alias="json", description="sent as JSON")
    form: dict[str, Any] | None = Field(None, description="sent as application/x-www-form-urlencoded")
    follow_redirects: bool = True
    max_response_bytes: int | None = Field(None, ge=1, description="cut the body here (truncated: true)")

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v.upper() not in METHODS:
            raise ValueError(f"must be one of {', '.join(METHODS)}")
        return v.upper()


class GraphQLParams(Params):
    url: str = Field(..., min_length=1)
    query: str = Field(..., min_length=1, description="the GraphQL document")
    variables: dict[str, Any] = Field(default_factory=dict)
    operation_name: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def build_body(params: RequestParams, headers: dict[str, str]) -> bytes | None:
    fields = params.model_fields_set
    given = [name for name in ("body", "json_body", "form") if name in fields and getattr(params, name) is not None]
    if len(given) > 1:
        raise field_error("parameters.body", "give only one of body, json and form")
    lower = {k.lower() for k in headers}
    if "json_body" in given or ("body" in given and not isinstance(params.body, str | bytes)):
        value = params.json_body if "json_body" in given else params.body
        if "content-type" not in lower:
            headers["Content-Type"] = "application/json"
        return jsonutil.dumps(value)
    if "form" in given:
        assert params.form is not None
        if "content-type" not in lower:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(
            {k: v if isinstance(v, str) else jsonutil.dumps(v).decode() for k, v in params.form.items()}
        ).encode()
    if "body" in given:
        if "content-type" not in lower:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return params.body.encode() if isinstance(params.body, str) else params.body
    return None


async def perform(
    call: Invocation,
    method: str,
    url: str,
    headers: dict[str, str],
    query: dict[str, Any],
    content: bytes | None,
    *,
    follow: bool = True,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """One request through the connection's client (or the shared one), with its auth."""
    service = call.services
    conn = call.connection
    config: HttpConnection | None = conn.config if conn is not None else None  # type: ignore[assignment]
    if config is not None and config.base_url:
        base = httpx.URL(config.base_url.rstrip("/") + "/")
        if not url.startswith(("http://", "https://")):
            url = str(base.join(url.lstrip("/")))
        elif (target := check_url(url)).scheme != base.scheme or target.host != base.host or target.port != base.port:
            # the connection's credentials belong to its own origin only
            raise field_error(
                "parameters.url",
                f"must stay on the connection's base_url origin ({base.scheme}://{base.netloc.decode()})",
            )
    all_headers = {**(config.headers if config else {}), **headers}
    if call.ctx.idempotency_key and not any(k.lower() == "idempotency-key" for k in all_headers):
        all_headers["Idempotency-Key"] = call.ctx.idempotency_key
    query = dict(query)
    client = conn.resource if conn is not None else service.default_http_client()
    auth = config.auth if config else None
    secret_headers: set[str] = set()
    if auth is not None:
        before = {k.lower() for k in all_headers}
        await apply_auth(call, auth, all_headers, query)
        secret_headers = {k.lower() for k in all_headers} - before
    req = HttpRequest(
        method=method,
        url=url,
        headers=all_headers,
        query=query,
        content=content,
        timeout=call.timeout,
        max_bytes=min(max_bytes or call.max_result_bytes, call.max_result_bytes),
        max_redirects=call.settings.max_redirects,
        follow_redirects=follow,
        secret_headers=frozenset(secret_headers),
    )
    try:
        return await send(client, req)
    except BusError as exc:
        if exc.error == "Http.Status.401" and auth is not None and auth.type == "oauth2":
            await service.authflow.refresh(conn, force=True)
            await apply_auth(call, auth, all_headers, query)
            return await send(client, req)
        raise


async def apply_auth(call: Invocation, auth: HttpAuth, headers: dict[str, str], query: dict[str, Any]) -> None:
    conn = call.connection
    assert conn is not None
    if auth.type == "bearer":
        headers["Authorization"] = f"Bearer {await conn.secret(auth.token_secret)}"
    elif auth.type == "basic":
        pair = f"{auth.username or ''}:{await conn.secret(auth.password_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    elif auth.type == "api_key":
        value = str(await conn.secret(auth.value_secret))
        if auth.query_param:
            query[auth.query_param] = value
        else:
            headers[auth.header] = value
    else:
        token = await call.services.authflow.access_token(conn)
        headers["Authorization"] = f"Bearer {token}"


async def run_request(call: Invocation) -> dict[str, Any]:
    p: RequestParams = call.params
    headers = dict(p.headers)
    content = build_body(p, headers)
    return await perform(
        call, p.method, p.url, headers, p.query, content, follow=p.follow_redirects, max_bytes=p.max_response_bytes
    )


async def run_graphql(call: Invocation) -> dict[str, Any]:
    p: GraphQLParams = call.params
    payload: dict[str, Any] = {"query": p.query, "variables": p.variables}
    if p.operation_name:
        payload["operationName"] = p.operation_name
    headers = {"Content-Type": "application/json", "Accept": "application/json", **p.headers}
    result = await perform(call, "POST", p.url, headers, {}, jsonutil.dumps(payload))
    body = result["body"]
    if isinstance(body, dict) and body.get("errors") and body.get("data") is None:
        first = body["errors"][0] if isinstance(body["errors"], list) and body["errors"] else body["errors"]
        message = first.get("message") if isinstance(first, dict) else str(first)
        raise BusError("Http.GraphQLError", f"GraphQL errors: {message}", details={"errors": body["errors"]})
    return result


async def open_client(conn: Any) -> httpx.AsyncClient:
    return conn.service.http_client_for(conn.config.allow_hosts, conn.config.verify_tls)


async def close_client(client: httpx.AsyncClient) -> None:
    await client.aclose()


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    config: HttpConnection = conn.config
    if not config.base_url:
        return {"ok": True, "detail": "no base_url to reach; configuration is valid"}
    from aionix.bus import CallContext

    call = Invocation(
        params=None,
        ctx=CallContext(tenant=conn.tenant),
        settings=settings,
        connection=conn,
        timeout=config.timeout_seconds or settings.timeout_seconds,
        max_result_bytes=4096,
        services=conn.service,
    )
    try:
        result = await perform(call, "GET", config.base_url, {}, {}, None)
    except BusError as exc:
        if exc.error.startswith("Http.Status.") and exc.error not in ("Http.Status.401", "Http.Status.403"):
            return {"ok": True, "detail": f"reached {config.base_url}: {exc.cause}"}
        return {"ok": False, "error": exc.error, "detail": exc.cause}
    return {"ok": True, "detail": f"reached {config.base_url}: status {result['status']}"}


KIND = ConnectorKind(
    name="http",
    title="HTTP request",
    error_prefix="Http",
    connection_model=HttpConnection,
    default_operation="request",
    operations={
        "request": Operation("request", "Send one HTTP request", RequestParams, RESPONSE_SCHEMA, run_request),
        "graphql": Operation(
            "graphql",
            "POST a GraphQL query; fails with Http.GraphQLError when only errors come back",
            GraphQLParams,
            RESPONSE_SCHEMA,
            run_graphql,
        ),
    },
    open=open_client,
    close=close_client,
    test=test_connection,
    examples=[{"method": "GET", "url": "https://api.example.com/orders/42"}],
)
