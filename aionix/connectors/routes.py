"""Connectors HTTP API: kinds, connections, actions (DESIGN.md §6)."""

from __future__ import annotations

import html
import time
from typing import Any

from starlette.responses import HTMLResponse

from aionix.api.endpoint import Api, Call, Page
from aionix.bus import BusError
from aionix.connectors.models import (
    Action,
    ActionCreate,
    ActionUpdate,
    AuthorizeStart,
    AuthorizeStatus,
    CallbackQuery,
    Connection,
    ConnectionCreate,
    ConnectionListQuery,
    ConnectionTest,
    ConnectionUpdate,
    ExecuteRequest,
    ExecuteResult,
)
from aionix.redact import SecretSet

api = Api("connectors")


def _role(call: Call) -> str | None:
    return call.principal.role if call.principal else None


def _cross(call: Call) -> bool:
    return bool(call.principal and call.principal.cross_tenant)


@api.get("/api/v1/connectors", role="viewer", response=list[dict[str, Any]])
async def list_connectors(call: Call) -> list[dict[str, Any]]:
    """Connector kinds with their connection schema and operations (parameter and result schemas)."""
    return call.service("connectors").describe_kinds()


@api.post("/api/v1/connections", role="operator", body=ConnectionCreate, response=Connection, status=201)
async def create_connection(call: Call) -> dict[str, Any]:
    """Create a connection; secrets only as *_secret CredVault references."""
    return await call.service("connectors").create_connection(call.tenant, call.body, _role(call), _cross(call))


@api.get("/api/v1/connections", role="viewer", query=ConnectionListQuery, response=Page[Connection])
async def list_connections(call: Call) -> dict[str, Any]:
    """List connections, optionally of one kind."""
    q: ConnectionListQuery = call.query
    return await call.service("connectors").list_connections(call.tenant, q.kind, q.cursor, call.page_limit(q.limit))


@api.get("/api/v1/connections/{name}", role="viewer", response=Connection)
async def get_connection(call: Call) -> dict[str, Any]:
    """One connection."""
    return await call.service("connectors").get_connection(call.tenant, call.path["name"])


@api.put("/api/v1/connections/{name}", role="operator", body=ConnectionUpdate, response=Connection)
async def update_connection(call: Call) -> dict[str, Any]:
    """Replace a connection's config; its pooled client is reopened on next use."""
    return await call.service("connectors").update_connection(
        call.tenant, call.path["name"], call.body, _role(call), _cross(call)
    )


@api.delete("/api/v1/connections/{name}", role="operator", response=Connection)
async def delete_connection(call: Call) -> dict[str, Any]:
    """Delete a connection that no action uses."""
    return await call.service("connectors").delete_connection(call.tenant, call.path["name"])


@api.post("/api/v1/connections/{name}/test", role="operator", response=ConnectionTest, idempotent=False)
async def test_connection(call: Call) -> dict[str, Any]:
    """Check that a connection reaches its server with its credentials."""
    return await call.service("connectors").test_connection(call.tenant, call.path["name"])


@api.post("/api/v1/actions", role="operator", body=ActionCreate, response=Action, status=201)
async def create_action(call: Call) -> dict[str, Any]:
    """Save a parameterised operation on a connection."""
    return await call.service("connectors").create_action(call.tenant, call.body)


@api.get("/api/v1/actions", role="viewer", query=ConnectionListQuery, response=Page[Action])
async def list_actions(call: Call) -> dict[str, Any]:
    """List saved actions, optionally of one kind."""
    q: ConnectionListQuery = call.query
    return await call.service("connectors").list_actions(call.tenant, q.kind, q.cursor, call.page_limit(q.limit))


@api.get("/api/v1/actions/{name}", role="viewer", response=Action)
async def get_action(call: Call) -> dict[str, Any]:
    """One saved action."""
    return await call.service("connectors").get_action(call.tenant, call.path["name"])


@api.put("/api/v1/actions/{name}", role="operator", body=ActionUpdate, response=Action)
async def update_action(call: Call) -> dict[str, Any]:
    """Replace a saved action."""
    return await call.service("connectors").update_action(call.tenant, call.path["name"], call.body)


@api.delete("/api/v1/actions/{name}", role="operator", response=Action)
async def delete_action(call: Call) -> dict[str, Any]:
    """Delete a saved action."""
    return await call.service("connectors").delete_action(call.tenant, call.path["name"])


@api.post("/api/v1/actions/{name}/execute", role="operator", body=ExecuteRequest, response=ExecuteResult)
async def execute_action(call: Call) -> dict[str, Any]:
    """Run a saved action with an input; connector failures are 502 with the error name in details."""
    svc = call.service("connectors")
    body: ExecuteRequest = call.body
    started = time.perf_counter()
    action = await svc.get_action(call.tenant, call.path["name"])
    # the connection's credentials are masked in what the caller gets back (aionix/redact.py)
    secrets = SecretSet()
    ctx = call.context().child(secrets=secrets)
    try:
        result = await svc.execute_action(call.tenant, call.path["name"], body.input, body.parameters, ctx)
    except BusError as exc:
        exc.cause, exc.message = secrets.text(exc.cause), secrets.text(exc.message)
        exc.details = {"error": exc.error, "cause": exc.cause, "details": secrets.value(exc.details)}
        raise
    result = secrets.value(result)
    return {"action": action["trn"], "result": result, "duration_ms": round((time.perf_counter() - started) * 1000, 3)}


@api.post("/api/v1/connections/{name}/authorize", role="operator", response=AuthorizeStart, idempotent=False)
async def authorize_connection(call: Call) -> dict[str, Any]:
    """Start an OAuth2 authorization-code flow (PKCE S256): open the returned URL in a browser."""
    return await call.service("connectors").authflow.start(call.tenant, call.path["name"])


@api.get("/api/v1/authflow/callback", role=None, query=CallbackQuery, media_type="text/html")
async def authflow_callback(call: Call) -> HTMLResponse:
    """Where the OAuth2 provider sends the browser back; checks state and PKCE, exchanges the code."""
    q: CallbackQuery = call.query
    error = q.error and f"{q.error}: {q.error_description}" if q.error_description else q.error
    connection = await call.service("connectors").authflow.callback(q.state, q.code, error)
    body = f"<!doctype html><title>Aionix</title><p>Connection <b>{html.escape(connection)}</b> is authorized. You can close this window.</p>"
    return HTMLResponse(body)


@api.get("/api/v1/authflow/{state}", role="operator", response=AuthorizeStatus)
async def authflow_status(call: Call) -> dict[str, Any]:
    """Where an authorization stands; the tokens come back once, for the caller to store in CredVault."""
    return await call.service("connectors").authflow.status(call.tenant, call.path["state"])
