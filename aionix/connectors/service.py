"""OpenAct: connections, saved actions and the executors the bus runs for connector kinds.

Connections hold a kind's config with secrets only as CredVault references, resolved late (at
call time, cached briefly) through the bus. Each connection keeps one pooled client (an HTTP
client, a database pool, …) opened on first use, replaced when the connection changes and
closed on shutdown. Every call is bounded by a timeout and a result size limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from aionix import expr, jsonutil
from aionix import trn as trnlib
from aionix.bus import BusError, CallContext
from aionix.connectors.authflow import AuthFlow
from aionix.connectors.config import ConnectorsConfig
from aionix.connectors.connection import ConnectionHandle, secret_refs, validation_failed
from aionix.connectors.httpcall import guarded_client
from aionix.connectors.kind import ConnectorKind, Invocation, Operation
from aionix.connectors.kinds import load_kinds
from aionix.connectors.roots import TenantRoots, protected_paths
from aionix.errors import AionixError, Conflict, Forbidden, NotFound, field_error
from aionix.ssrf import AllowList, Guard, Refused, local_addresses

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.connectors")


@dataclass
class SavedAction:
    tenant: str
    name: str
    kind: str
    connection: str | None
    operation: str
    parameters: dict[str, Any]
    template: expr.Template
    updated_at: float


class ConnectorsService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings: ConnectorsConfig = rt.config.service_section("connectors", ConnectorsConfig)
        self.kinds: dict[str, ConnectorKind] = load_kinds()
        self.global_allow = AllowList.parse(self.settings.allow_hosts)
        self._handles: dict[tuple[str, str], ConnectionHandle] = {}
        self._actions: dict[tuple[str, str], SavedAction] = {}
        self._default_http: httpx.AsyncClient | None = None
        self.authflow = AuthFlow(self)

    async def start(self) -> None:
        self.rt.health["connectors"] = {"kinds": len(self.kinds)}

    async def stop(self) -> None:
        handles = list(self._handles.values())
        self._handles.clear()
        for handle in handles:
            await handle.close()
        if self._default_http is not None:
            await self._default_http.aclose()
            self._default_http = None

    # ------------------------------------------------------------------ http clients
    def default_http_client(self) -> httpx.AsyncClient:
        """The shared guarded client for calls without a connection."""
        if self._default_http is None:
            self._default_http = guarded_client(
                self.global_allow, pool_size=self.settings.pool_size, reserved=self.reserved_endpoints()
            )
        return self._default_http

    def http_client_for(self, allow_hosts: list[str], verify: bool = True) -> httpx.AsyncClient:
        return guarded_client(
            self.global_allow | AllowList.parse(allow_hosts),
            verify=verify,
            pool_size=self.settings.pool_size,
            reserved=self.reserved_endpoints(),
        )

    # ------------------------------------------------------------------ secrets
    async def resolve_secret(self, tenant: str, ref: str, *, reader: str, connection: str) -> Any:
        try:
            target = trnlib.resolve(ref, tenant=tenant, service="credvault", type="credential")
        except AionixError as exc:
            raise BusError(
                "Connection.SecretError", f"connection {connection}: bad secret reference {ref!r}: {exc.message}"
            ) from None
        if not self.rt.bus.has_target(str(target)):
            raise BusError(
                "Connection.SecretError",
                f"connection {connection} references secret {target.name!r} but CredVault is not available on this server",
            )
        try:
            return await self.rt.bus.invoke(
                str(target), {"op": "resolve", "reader": reader}, CallContext(tenant=tenant, caller=reader)
            )
        except NotFound:
            raise BusError(
                "Connection.SecretError", f"connection {connection}: secret {target.name!r} does not exist"
            ) from None

    async def store_secret(self, tenant: str, ref: str, value: Any, *, writer: str) -> None:
        """Keep a value this service made (refreshed OAuth2 tokens) as a new version of a
        CredVault secret, through the bus."""
        target = trnlib.resolve(ref, tenant=tenant, service="credvault", type="credential")
        await self.rt.bus.invoke(
            str(target), {"op": "put", "value": value, "writer": writer}, CallContext(tenant=tenant)
        )

    # ------------------------------------------------------------------ kinds
    def kind(self, name: str, field: str = "kind") -> ConnectorKind:
        kind = self.kinds.get(name)
        if kind is None:
            raise field_error(field, f"unknown connector kind {name!r} (one of {', '.join(sorted(self.kinds))})")
        return kind

    def describe_kinds(self) -> list[dict[str, Any]]:
        return [k.describe() for k in self.kinds.values()]

    def operation(self, kind: ConnectorKind, name: str | None, field: str = "parameters.operation") -> Operation:
        name = name or kind.default_operation
        if name is None:
            raise field_error(field, f"required: one of {', '.join(kind.operations)}")
        op = kind.operations.get(name)
        if op is None:
            raise field_error(
                field, f"unknown operation {name!r} for {kind.name} (one of {', '.join(kind.operations)})"
            )
        return op

    # ------------------------------------------------------------------ connections
    def _validate_config(
        self, kind: ConnectorKind, config: dict[str, Any], tenant: str, role: str | None, cross_tenant: bool = False
    ) -> dict[str, Any]:
        if kind.connection_model is None:
            raise field_error("kind", f"the {kind.name} kind has no connections (call it without one)")
        try:
            model = kind.connection_model.model_validate(config)
        except ValidationError as exc:
            raise validation_failed(exc, "config") from None
        for where, ref in secret_refs(config):
            if not isinstance(ref, str):
                raise field_error(where, "must be a CredVault credential name or trn:credvault:… TRN")
            try:
                trnlib.resolve(ref, tenant=tenant, service="credvault", type="credential")
            except AionixError as exc:
                raise field_error(where, f"not a CredVault reference: {exc.message}") from None
        if getattr(model, "allow_hosts", None) and role != "admin":
            raise Forbidden("config.allow_hosts opens the SSRF guard: only an admin key may set it")
        if getattr(model, "shared_root", False) and not (role == "admin" and cross_tenant):
            raise Forbidden(
                "config.shared_root reaches beyond the tenant's part of the roots: only a cross-tenant admin key may set it"
            )
        self._check_placement(kind.name, model, tenant)
        return model.model_dump(mode="json", exclude_unset=True)

    def _check_placement(self, kind: str, model: Any, tenant: str) -> None:
        """A file-backed connection must lie inside its tenant's part of the roots (422/403 now,
        rather than at its first call)."""
        if kind == "fs":
            roots = TenantRoots.of("fs_roots", self.settings.fs_roots, tenant, protected_paths(self.rt))
            roots.place(model.root, "config.root", shared=model.shared_root)
        elif kind == "sql" and model.driver == "sqlite":
            roots = TenantRoots.of("sql_roots", self.settings.sql_roots, tenant, protected_paths(self.rt))
            roots.place(model.path, "config.path", shared=model.shared_root)

    def misplaced_connections(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`aio admin doctor`: saved file-backed connections that their tenant can no longer use
        (saved before roots were split per tenant, or after the roots changed)."""
        problems = []
        for row in rows:
            try:
                kind = self.kinds[row["kind"]]
                model = kind.connection_model.model_validate(jsonutil.loads(row["config"]))
                self._check_placement(kind.name, model, row["tenant"])
            except (AionixError, ValidationError, KeyError, AttributeError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                problems.append(
                    {
                        "check": "connection-placement",
                        "tenant": row["tenant"],
                        "resource": f"trn:openact:{row['tenant']}:connection/{row['kind']}/{row['name']}",
                        "problem": message,
                        "fix": "an admin updates the connection's root/path to lie inside "
                        "{root}/{tenant} (or a cross-tenant admin sets shared_root: true)",
                    }
                )
        return problems

    async def doctor(self, tenant: str | None) -> list[dict[str, Any]]:
        """Problems an admin must fix (`aio admin doctor`); `tenant` None: every tenant."""
        rows = await self.rt.store.fetch_all("connectors.list_file_connections", {"tenant": tenant})
        return await asyncio.to_thread(self.misplaced_connections, rows)

    # ------------------------------------------------------------------ egress
    def reserved_endpoints(self) -> list[tuple[Any, int]]:
        """(network, port) pairs that no connection may reach, whatever the allow lists say: the
        server's own API listener and the store's own database server (when it has one)."""
        import ipaddress

        out: list[tuple[Any, int]] = []
        server = self.rt.config.server
        port = getattr(self.rt, "listen_port", None) or server.port
        if port:
            bind = server.host
            nets = ["127.0.0.0/8", "::1/128", "0.0.0.0/32", "::/128"]
            try:
                ip = ipaddress.ip_address(bind)
                nets.append(str(ip))
                if ip.is_unspecified:
                    nets.extend(local_addresses())
            except ValueError:
                nets.extend(local_addresses())
            out.extend((ipaddress.ip_network(n, strict=False), port) for n in nets)
        for host, db_port in getattr(self.rt.store, "network_endpoints", lambda: [])():
            out.append((ipaddress.ip_network(host, strict=False), db_port))
        return out

    async def vet_endpoint(self, conn: ConnectionHandle, host: str, port: int) -> str:
        """The address a connection of a non-HTTP kind (sql, redis, email) connects to: `host`
        resolved and vetted by the same SSRF guard as HTTP, with the server-wide and the
        connection's allow lists; the caller connects to the returned address, never to a second
        lookup (no DNS rebinding)."""
        allow = self.global_allow | AllowList.parse(getattr(conn.config, "allow_hosts", None) or [])
        guard = Guard(allow, reserved=self.reserved_endpoints())
        try:
            return await guard.vet(host, port)
        except Refused as exc:
            raise conn.kind.error("Refused", f"{host}:{port} refused by the SSRF guard: {exc.reason}") from None
        except ConnectionError as exc:
            raise conn.kind.error("ConnectionError", str(exc)) from None

    def _connection_out(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "trn": f"trn:openact:{row['tenant']}:connection/{row['kind']}/{row['name']}",
            "name": row["name"],
            "kind": row["kind"],
            "config": jsonutil.loads(row["config"]),
            "description": row["description"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    async def create_connection(
        self, tenant: str, body: Any, role: str | None, cross_tenant: bool = False
    ) -> dict[str, Any]:
        kind = self.kind(body.kind)
        config = self._validate_config(kind, body.config, tenant, role, cross_tenant)
        params = {
            "tenant": tenant,
            "name": body.name,
            "kind": kind.name,
            "config": jsonutil.dumps(config).decode(),
            "description": body.description,
            "now": time.time(),
        }
        try:
            await self.rt.store.execute("connectors.insert_connection", params)
        except Conflict:
            raise Conflict(
                f"connection {body.name} already exists", details=[{"field": "name", "message": "already exists"}]
            ) from None
        return await self.get_connection(tenant, body.name)

    async def _connection_row(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.rt.store.fetch_one("connectors.get_connection", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"connection {name} not found")
        return row

    async def get_connection(self, tenant: str, name: str) -> dict[str, Any]:
        return self._connection_out(await self._connection_row(tenant, name))

    async def list_connections(self, tenant: str, kind: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        rows = await self.rt.store.fetch_all(
            "connectors.list_connections", {"tenant": tenant, "kind": kind, "cursor": cursor, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [self._connection_out(r) for r in rows], "next_cursor": rows[-1]["name"] if more else None}

    async def update_connection(
        self, tenant: str, name: str, body: Any, role: str | None, cross_tenant: bool = False
    ) -> dict[str, Any]:
        row = await self._connection_row(tenant, name)
        kind = self.kind(row["kind"])
        config = self._validate_config(kind, body.config, tenant, role, cross_tenant)
        await self.rt.store.execute(
            "connectors.update_connection",
            {
                "tenant": tenant,
                "name": name,
                "config": jsonutil.dumps(config).decode(),
                "description": body.description,
                "now": time.time(),
            },
        )
        await self._drop_handle(tenant, name)
        return await self.get_connection(tenant, name)

    async def delete_connection(self, tenant: str, name: str) -> dict[str, Any]:
        out = await self.get_connection(tenant, name)
        used = await self.rt.store.fetch_one("connectors.count_actions_using", {"tenant": tenant, "connection": name})
        if used and used["n"]:
            raise Conflict(f"connection {name} is used by {used['n']} action(s); delete or change them first")
        await self.rt.store.execute("connectors.delete_connection", {"tenant": tenant, "name": name})
        await self._drop_handle(tenant, name)
        return out

    async def _drop_handle(self, tenant: str, name: str) -> None:
        self.authflow.forget(tenant, name)
        handle = self._handles.pop((tenant, name), None)
        if handle is not None:
            await handle.close()

    async def handle(
        self, tenant: str, ref: str, kind: ConnectorKind | None = None, field: str = "parameters.connection"
    ) -> ConnectionHandle:
        """The live handle of a connection (a short name or its TRN)."""
        if not isinstance(ref, str):
            raise field_error(field, "must be a connection name or TRN")
        if trnlib.is_trn(ref):
            parsed = trnlib.resolve(ref, tenant=tenant, service="openact", type="connection")
            name = parsed.name
            if "/" in parsed.path and kind is not None and parsed.path.split("/", 1)[0] != kind.name:
                raise field_error(field, f"{ref} is not a {kind.name} connection")
        else:
            name = ref
        handle = self._handles.get((tenant, name))
        if handle is None:
            row = await self.rt.store.fetch_one("connectors.get_connection", {"tenant": tenant, "name": name})
            if row is None:
                raise NotFound(f"connection {name} not found", details=[{"field": field, "message": "not found"}])
            conn_kind = self.kind(row["kind"])
            raw = jsonutil.loads(row["config"])
            model = conn_kind.connection_model.model_validate(raw) if conn_kind.connection_model else None
            handle = ConnectionHandle(self, tenant, name, conn_kind, model, raw, row["updated_at"])
            existing = self._handles.setdefault((tenant, name), handle)
            handle = existing
        if kind is not None and handle.kind.name != kind.name:
            raise field_error(field, f"connection {name} is a {handle.kind.name} connection, not {kind.name}")
        await handle.ensure_resource()
        return handle

    async def test_connection(self, tenant: str, name: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            handle = await self.handle(tenant, name, field="name")
            if handle.kind.test is None:
                outcome = {"ok": True, "detail": "configuration is valid"}
            else:
                timeout = getattr(handle.config, "timeout_seconds", None) or min(self.settings.timeout_seconds, 30.0)
                async with asyncio.timeout(timeout):
                    outcome = await handle.kind.test(handle, self.settings)
        except NotFound:
            raise
        except BusError as exc:
            outcome = {"ok": False, "error": exc.error, "detail": exc.cause}
        except TimeoutError:
            outcome = {"ok": False, "error": "Connection.Timeout", "detail": "the test did not finish in time"}
        except AionixError as exc:
            outcome = {"ok": False, "error": exc.code, "detail": exc.message}
        return {**outcome, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}

    # ------------------------------------------------------------------ execution
    async def execute_kind(self, target: str, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for an action kind: `{"operation"?, "connection"?, ...parameters}`."""
        kind = self.kind(target, field="action")
        if not isinstance(payload, dict):
            raise field_error("parameters", f"must be an object of {kind.name} parameters")
        params = dict(payload)
        op = self.operation(kind, params.pop("operation", None))
        conn_ref = params.pop("connection", None)
        handle = await self.handle(ctx.tenant, conn_ref, kind) if conn_ref is not None else None
        return await self.run(kind, op, params, ctx, handle)

    async def execute_connection(self, target: trnlib.TRN, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for `trn:openact:{tenant}:connection/{kind}/{name}`."""
        handle = await self.handle(ctx.tenant, str(target), field="action")
        if not isinstance(payload, dict):
            raise field_error("parameters", "must be an object")
        params = dict(payload)
        op = self.operation(handle.kind, params.pop("operation", None))
        return await self.run(handle.kind, op, params, ctx, handle)

    async def run(
        self, kind: ConnectorKind, op: Operation, raw: dict[str, Any], ctx: CallContext, handle: ConnectionHandle | None
    ) -> Any:
        if kind.requires_connection and handle is None:
            raise field_error("parameters.connection", f"the {kind.name} kind needs a connection")
        if kind.module is not None:
            from aionix.connectors.kind import require_module

            require_module(kind)
        try:
            params = op.params.model_validate(raw)
        except ValidationError as exc:
            raise validation_failed(exc, "parameters") from None
        timeout = (
            params.timeout
            or (getattr(handle.config, "timeout_seconds", None) if handle else None)
            or self.settings.timeout_seconds
        )
        call = Invocation(
            params=params,
            ctx=ctx,
            settings=self.settings,
            connection=handle,
            timeout=timeout,
            max_result_bytes=self.settings.max_result_bytes,
            services=self,
        )
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await op.run(call)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise kind.error("Timeout", f"{kind.name} {op.name} did not finish within {timeout:g} s") from None
        finally:
            if handle is not None and ctx.secrets is not None:
                # a response that echoes the credentials is masked in the calling execution
                ctx.secrets.merge(handle.redaction)

    # ------------------------------------------------------------------ actions
    def _action_out(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "trn": f"trn:openact:{row['tenant']}:action/{row['kind']}/{row['name']}",
            "name": row["name"],
            "kind": row["kind"],
            "connection": row["connection"],
            "operation": row["operation"],
            "parameters": jsonutil.loads(row["parameters"]),
            "description": row["description"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    async def _validate_action(self, tenant: str, body: Any) -> dict[str, Any]:
        kind = self.kind(body.kind)
        op = self.operation(kind, body.operation, field="operation")
        connection = None
        if body.connection is not None:
            handle_row = await self._connection_for_action(tenant, body.connection, kind)
            connection = handle_row["name"]
        elif kind.requires_connection:
            raise field_error("connection", f"the {kind.name} kind needs a connection")
        for reserved in ("operation", "connection"):
            if reserved in body.parameters:
                raise field_error(
                    f"parameters.{reserved}", f"set {reserved} on the action itself, not in its parameters"
                )
        try:
            template = expr.compile_template(body.parameters, pointer="/parameters")
        except expr.ExpressionError as exc:
            pointer = (exc.details or {}).get("pointer", "/parameters")
            raise field_error(pointer.strip("/").replace("/", "."), exc.message) from None
        if template.is_static:
            try:
                op.params.model_validate(body.parameters)
            except ValidationError as exc:
                raise validation_failed(exc, "parameters") from None
        return {
            "kind": kind.name,
            "connection": connection,
            "operation": op.name,
            "parameters": jsonutil.dumps(body.parameters).decode(),
            "description": body.description,
        }

    async def _connection_for_action(self, tenant: str, ref: str, kind: ConnectorKind) -> dict[str, Any]:
        name = ref
        if trnlib.is_trn(ref):
            name = trnlib.resolve(ref, tenant=tenant, service="openact", type="connection").name
        row = await self.rt.store.fetch_one("connectors.get_connection", {"tenant": tenant, "name": name})
        if row is None:
            raise field_error("connection", f"connection {name} not found")
        if row["kind"] != kind.name:
            raise field_error("connection", f"connection {name} is a {row['kind']} connection, not {kind.name}")
        return row

    async def create_action(self, tenant: str, body: Any) -> dict[str, Any]:
        values = await self._validate_action(tenant, body)
        try:
            await self.rt.store.execute(
                "connectors.insert_action", {"tenant": tenant, "name": body.name, "now": time.time(), **values}
            )
        except Conflict:
            raise Conflict(
                f"action {body.name} already exists", details=[{"field": "name", "message": "already exists"}]
            ) from None
        return await self.get_action(tenant, body.name)

    async def update_action(self, tenant: str, name: str, body: Any) -> dict[str, Any]:
        await self._action_row(tenant, name)
        values = await self._validate_action(tenant, body)
        await self.rt.store.execute(
            "connectors.update_action", {"tenant": tenant, "name": name, "now": time.time(), **values}
        )
        self._actions.pop((tenant, name), None)
        return await self.get_action(tenant, name)

    async def _action_row(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.rt.store.fetch_one("connectors.get_action", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"action {name} not found")
        return row

    async def get_action(self, tenant: str, name: str) -> dict[str, Any]:
        return self._action_out(await self._action_row(tenant, name))

    async def list_actions(self, tenant: str, kind: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        rows = await self.rt.store.fetch_all(
            "connectors.list_actions", {"tenant": tenant, "kind": kind, "cursor": cursor, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [self._action_out(r) for r in rows], "next_cursor": rows[-1]["name"] if more else None}

    async def delete_action(self, tenant: str, name: str) -> dict[str, Any]:
        out = await self.get_action(tenant, name)
        await self.rt.store.execute("connectors.delete_action", {"tenant": tenant, "name": name})
        self._actions.pop((tenant, name), None)
        return out

    async def _saved_action(self, tenant: str, name: str) -> SavedAction:
        saved = self._actions.get((tenant, name))
        if saved is None:
            row = await self._action_row(tenant, name)
            parameters = jsonutil.loads(row["parameters"])
            saved = SavedAction(
                tenant,
                name,
                row["kind"],
                row["connection"],
                row["operation"],
                parameters,
                expr.compile_template(parameters, pointer="/parameters"),
                row["updated_at"],
            )
            self._actions[(tenant, name)] = saved
        return saved

    async def execute_action(
        self, tenant: str, name: str, input: Any, overrides: dict[str, Any] | None, ctx: CallContext
    ) -> Any:
        saved = await self._saved_action(tenant, name)
        kind = self.kind(saved.kind)
        op = self.operation(kind, saved.operation)
        try:
            params = (
                await expr.evaluate_async(lambda: saved.template.evaluate({"input": input}))
                if not saved.template.is_static
                else dict(saved.parameters)
            )
        except expr.ExpressionError as exc:
            raise BusError("States.QueryEvaluationError", f"action {name}: {exc.message}") from None
        if params is expr.UNDEFINED or not isinstance(params, dict):
            params = {}
        if overrides:
            params = {**params, **overrides}
        handle = await self.handle(tenant, saved.connection, kind, field="connection") if saved.connection else None
        return await self.run(kind, op, params, ctx, handle)

    async def execute_action_trn(self, target: trnlib.TRN, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for `trn:openact:{tenant}:action/{kind}/{name}`: the payload is the
        action's `input`."""
        return await self.execute_action(ctx.tenant, target.name, payload, None, ctx)

    # ------------------------------------------------------------------ resolvers
    async def resolve_connection(self, target: trnlib.TRN) -> dict[str, Any] | None:
        try:
            return await self.get_connection(target.tenant, target.name)
        except NotFound:
            return None

    async def resolve_action(self, target: trnlib.TRN) -> dict[str, Any] | None:
        try:
            return await self.get_action(target.tenant, target.name)
        except NotFound:
            return None
