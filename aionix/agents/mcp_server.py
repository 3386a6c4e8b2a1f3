"""The MCP server at `/mcp` (Streamable HTTP, the official `mcp` SDK's low-level `Server`).

Authentication is the REST API's: the same API key (`Authorization: Bearer` or `X-API-Key`,
`X-Aionix-Tenant` for cross-tenant admins), checked on every HTTP request before the SDK sees
it. Every tool call is dispatched *through the REST API's own endpoint handlers* (an in-process
ASGI request carrying the caller's key), so roles, validation, rate limits, idempotency and the
REST audit rows are exactly the REST API's; on top of that each MCP call writes an audit row
`mcp <method> <name>` with the key.

Tools are generated per tenant and role from what the tenant has: `workflow.<name>` (start),
`function.<name>` (invoke), `action.<name>` (execute), `ai.submit` (when intents exist),
`execution.get`, `execution.cancel`, `resources.list`, `resource.describe`,
`runtime.capabilities`, `runtime.simulate`. A viewer key sees the read-only ones only, and
`tools/list` leaves out a tool the caller's policies would refuse (`mcp:CallTool` on the tool, or
the action of the REST call behind it).

List changes: a `subscriptions/listen` stream (protocol 2026-07-28) per tenant gets
`notifications/tools/list_changed` and `notifications/resources/list_changed` when a workflow,
function or action of that tenant is created, updated or deleted (`ChangeNotifier` watches the
REST API's successful writes, whoever makes them: REST, CLI, Studio or MCP).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ToolsListChanged

from aionix import __version__, jsonutil
from aionix.api.auth import Principal, extract_key
from aionix.api.dispatch import error_response
from aionix.errors import AionixError, Unauthorized

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from aionix.runtime import Runtime

log = logging.getLogger("aionix.mcp")

#: The headers of the HTTP request being served (for handlers that run in the request's task).
_current_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("mcp_headers", default=None)
FORWARDED = ("authorization", "x-api-key", "x-aionix-tenant", "x-trace-id")
RESOURCE_KINDS = {
    "workflows": "/api/v1/workflows",
    "functions": "/api/v1/functions",
    "actions": "/api/v1/actions",
    "connections": "/api/v1/connections",
    "executions": "/api/v1/executions",
    "triggers": "/api/v1/triggers",
}
#: REST writes that change a tenant's tool or resource list
_CHANGES = re.compile(r"^/api/v1/(workflows|functions|actions)(/[^/]+)?$")
PAGE = 200


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


NAME_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}
STATIC_TOOLS: list[tuple[str, str, str, dict[str, Any]]] = [
    # (name, role, description, input schema)
    (
        "resources.list",
        "viewer",
        "List the tenant's resources of one kind (workflows, functions, actions, connections, executions, triggers).",
        _obj(
            {
                "kind": {"type": "string", "enum": list(RESOURCE_KINDS)},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
            ["kind"],
        ),
    ),
    (
        "resource.describe",
        "viewer",
        "Describe one resource: a workflow (with its definition), function, action, connection, execution or trigger.",
        _obj(
            {
                "kind": {"type": "string", "enum": list(RESOURCE_KINDS)},
                "name": {"type": "string", "minLength": 1, "maxLength": 256},
            },
            ["kind", "name"],
        ),
    ),
    (
        "execution.get",
        "viewer",
        "An execution's result envelope (status, output, error, duration).",
        _obj({"id": {"type": "string", "minLength": 1}}, ["id"]),
    ),
    (
        "execution.cancel",
        "operator",
        "Cancel a running execution.",
        _obj({"id": {"type": "string", "minLength": 1}}, ["id"]),
    ),
    (
        "runtime.capabilities",
        "viewer",
        "Every skill the tenant can use, with cost, latency p50/p95, rate limits and permissions.",
        _obj({}),
    ),
    (
        "runtime.simulate",
        "viewer",
        "Estimate a workflow run (cost, duration p50/p95, feasibility, risks) without running anything. "
        "Arguments are the body of POST /api/v1/runtime/simulate.",
        {
            "type": "object",
            "properties": {
                "workflow": {"type": "string"},
                "definition": {"type": "object"},
                "input": {},
                "steps": {"type": "array"},
                "budget_usd": {"type": "number"},
            },
        },
    ),
]
READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


class McpCallFailed(MCPError):
    pass


class McpHub:
    """The MCP server of one runtime: the SDK server, its session manager, per-tenant buses."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.app: ASGIApp | None = None  # the whole Starlette app, for in-process REST calls
        self.buses: dict[str, InMemorySubscriptionBus] = {}
        self._listeners: dict[str, ListenHandler] = {}
        self.server: Server[Any] = Server(
            "aionix",
            version=__version__,
            instructions=(
                "Aionix runtime. Tools start workflows, invoke functions, execute saved actions; "
                "runtime.simulate estimates cost and duration before running; resources hold workflow "
                "definitions, execution histories and the DSL JSON Schema."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=self._listen,
        )
        self.manager = StreamableHTTPSessionManager(app=self.server, security_settings=None)
        self._ready: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    async def _ensure_started(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            ready = self._ready

            async def run() -> None:
                async with self.manager.run():
                    ready.set()
                    await asyncio.Event().wait()

            self.rt.spawn(run(), "aionix-mcp")
        await self._ready.wait()

    # ------------------------------------------------------------------ change notices
    def bus(self, tenant: str) -> InMemorySubscriptionBus:
        bus = self.buses.get(tenant)
        if bus is None:
            bus = self.buses[tenant] = InMemorySubscriptionBus()
        return bus

    async def changed(self, tenant: str) -> None:
        bus = self.buses.get(tenant)
        if bus is not None:
            await bus.publish(ToolsListChanged())
            await bus.publish(ResourcesListChanged())

    async def _listen(self, ctx: Any, params: Any) -> Any:
        principal = await self._principal(ctx)
        handler = self._listeners.get(principal.tenant)
        if handler is None:
            handler = self._listeners[principal.tenant] = ListenHandler(self.bus(principal.tenant))
        await self._audit(principal, "mcp subscriptions/listen", None, 200)
        return await handler(ctx, params)

    # ------------------------------------------------------------------ identity and REST calls
    @staticmethod
    def _headers(ctx: Any) -> dict[str, str]:
        request = getattr(ctx, "request", None)
        raw = getattr(request, "headers", None)
        if raw is None:
            transport = getattr(ctx, "transport", None)
            raw = getattr(transport, "headers", None)
        if raw is not None:
            return {k.lower(): v for k, v in raw.items() if k.lower() in FORWARDED}
        return dict(_current_headers.get() or {})

    async def _principal(self, ctx: Any) -> Principal:
        headers = self._headers(ctx)
        try:
            key = extract_key(headers)
            if key is None:
                raise Unauthorized("missing API key (Authorization: Bearer <key> or X-API-Key)")
            return await self.rt.authenticator.authenticate(key, headers.get("x-aionix-tenant"))
        except AionixError as exc:
            raise MCPError(types.INVALID_REQUEST, f"{exc.code}: {exc.message}") from None

    async def rest(
        self,
        ctx: Any,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
    ) -> tuple[int, Any]:
        """Call the REST API in-process with the caller's key: the same endpoint handler, role
        check, validation and audit as an HTTP client gets."""
        assert self.app is not None
        headers = self._headers(ctx)
        headers["user-agent"] = "aionix-mcp"
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mcp.internal", timeout=330) as client:
            kwargs: dict[str, Any] = {
                "headers": headers,
                "params": {k: v for k, v in (params or {}).items() if v is not None},
            }
            if content is not None:
                kwargs["content"] = content
                headers["content-type"] = "application/json"
            elif json is not None or method in ("POST", "PUT"):
                kwargs["json"] = json if json is not None else {}
            response = await client.request(method, path, **kwargs)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return response.status_code, body

    async def _audit(
        self, principal: Principal, action: str, resource: str | None, status: int, details: Any = None
    ) -> None:
        try:
            await self.rt.audit(None, principal, action, status=status, resource=resource, details=details)
        except AionixError:
            log.warning("audit write failed for %s", action)

    async def _names(self, ctx: Any, path: str) -> list[str]:
        status, body = await self.rest(ctx, "GET", path, params={"limit": PAGE})
        if status != 200 or not isinstance(body, dict):
            return []
        return [item["name"] for item in body.get("items", []) if isinstance(item, dict) and "name" in item]

    def _intents(self) -> list[str]:
        ai = self.rt.services.get("ai")
        try:
            return sorted(ai.active().intents.intents) if ai is not None else []
        except Exception:
            return []

    # ------------------------------------------------------------------ tools
    async def tools_for(self, ctx: Any, principal: Principal) -> list[types.Tool]:
        tools: list[types.Tool] = []
        for name, role, description, schema in STATIC_TOOLS:
            if principal.at_least(role):
                tools.append(
                    types.Tool(
                        name=name,
                        description=description,
                        input_schema=schema,
                        annotations=READ_ONLY if role == "viewer" else None,
                    )
                )
        if not principal.at_least("operator"):
            return tools
        for wf in await self._names(ctx, "/api/v1/workflows"):
            tools.append(
                types.Tool(
                    name=f"workflow.{wf}",
                    description=f"Start the workflow {wf!r}: mode sync waits for the result envelope, async answers its id.",
                    input_schema=_obj(
                        {
                            "input": {"description": "the execution input (any JSON)"},
                            "mode": {"type": "string", "enum": ["sync", "async"], "default": "sync"},
                            "version": {"type": "integer", "minimum": 1},
                            "wait_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
                        }
                    ),
                )
            )
        for fn in await self._names(ctx, "/api/v1/functions"):
            tools.append(
                types.Tool(
                    name=f"function.{fn}",
                    description=f"Invoke the function {fn!r} with an event; answers the invocation record.",
                    input_schema=_obj(
                        {
                            "event": {"description": "the event (any JSON)"},
                            "qualifier": {"type": "string"},
                            "mode": {"type": "string", "enum": ["sync", "async"], "default": "sync"},
                        }
                    ),
                )
            )
        for act in await self._names(ctx, "/api/v1/actions"):
            tools.append(
                types.Tool(
                    name=f"action.{act}",
                    description=f"Execute the saved action {act!r}.",
                    input_schema=_obj({"input": {}, "parameters": {"type": "object"}}),
                )
            )
        intents = self._intents()
        if intents:
            tools.append(
                types.Tool(
                    name="ai.submit",
                    description="Submit an AI task for an intent (" + ", ".join(intents) + ").",
                    input_schema={
                        "type": "object",
                        "properties": {
                            "intent": {"type": "string", "enum": intents},
                            "params": {"type": "object"},
                            "budget_usd": {"type": "number"},
                            "latency_ms": {"type": "integer"},
                        },
                        "required": ["intent"],
                    },
                )
            )
        return tools

    #: the REST call behind each tool (a static tool's resource varies per call: `*` stands for it)
    _TOOL_CALLS = {
        "execution.get": ("GET", "/api/v1/executions/*"),
        "execution.cancel": ("POST", "/api/v1/executions/*/cancel"),
        "runtime.capabilities": ("GET", "/api/v1/runtime/capabilities"),
        "runtime.simulate": ("POST", "/api/v1/runtime/simulate"),
        "ai.submit": ("POST", "/api/v1/tasks"),
        "workflow": ("POST", "/api/v1/workflows/{}/executions"),
        "function": ("POST", "/api/v1/functions/{}/invoke"),
        "action": ("POST", "/api/v1/actions/{}/execute"),
    }

    def _route_of(self, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
        """The endpoint a REST call lands on, and its path parameters (templates compiled once
        per set of loaded services)."""
        loaded = len(self.rt.plugins)
        if getattr(self, "_routes_for", -1) != loaded:
            routes = []
            for ep in self.rt.endpoints():
                rx = re.sub(r"\\\{([A-Za-z_]\w*)(?::[^}]*)?\\\}", r"(?P<\1>[^/]+)", re.escape(ep.path))
                routes.append((ep.method, re.compile(rx + r"\Z"), ep))
            self._routes, self._routes_for = routes, loaded
        for m, rx, ep in self._routes:
            if m == method and (hit := rx.match(path)) is not None:
                return ep, hit.groupdict()
        return None

    async def visible(self, principal: Principal, tools: list[types.Tool]) -> list[types.Tool]:
        """The tools the principal's policies let it call: `mcp:CallTool` on the tool and the
        action of the REST call behind it on its resource (via `mcp`; a static tool whose target
        varies per call is checked on `…/*`, so only a statement covering every target hides it)."""
        policies = getattr(self.rt, "policies", None)
        if policies is None:
            return tools
        from aionix.iam.policy import resource_for

        pset = await policies.policy_set(principal)
        if pset.builtin_only:  # the role alone: tools_for already applied it
            return tools
        out = []
        for tool in tools:
            name = tool.name
            d = await policies.decide(
                principal, "mcp:CallTool", f"trn:agents:{principal.tenant}:tool/{name}", via="mcp"
            )
            if not d.allowed:
                continue
            kind, _, target = name.partition(".")
            call = self._TOOL_CALLS.get(name) or self._TOOL_CALLS.get(kind)
            if call is not None:
                method, path = call[0], call[1].replace("{}", quote(target, safe=""))
                found = self._route_of(method, path)
                if found is not None:
                    ep, params = found
                    action, template = policies.endpoint_meta(ep)
                    resource = resource_for(template, principal.tenant, params)
                    d = await policies.decide(principal, action, resource, via="mcp", route=f"{method} {path}")
                    if not d.allowed:
                        continue
            out.append(tool)
        return out

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        principal = await self._principal(ctx)
        tools = await self.visible(principal, await self.tools_for(ctx, principal))
        await self._audit(principal, "mcp tools/list", None, 200, {"count": len(tools)})
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        principal = await self._principal(ctx)
        name = params.name
        args = dict(params.arguments or {})
        try:
            # the MCP call itself (`mcp:CallTool` on the tool); the REST call behind it is checked too
            await self._authorize_tool(principal, name)
            status, body = await self._dispatch(ctx, principal, name, args)
        except AionixError as exc:
            status, body = exc.status, exc.to_dict()
        await self._audit(principal, f"mcp tools/call {name}", name, status)
        text = jsonutil.dumps(body).decode() if body is not None else "null"
        structured = body if isinstance(body, dict) else {"result": body}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=structured,
            is_error=status >= 400,
        )

    async def _authorize_tool(self, principal: Principal, name: str) -> None:
        policies = getattr(self.rt, "policies", None)
        if policies is None:
            return
        from aionix.iam.policy import PolicyDenied

        resource = f"trn:agents:{principal.tenant}:tool/{name}"
        decision = await policies.decide(principal, "mcp:CallTool", resource, via="mcp")
        if not decision.allowed:
            exc = PolicyDenied(decision)
            await policies.audit_denial(None, principal, exc)
            raise exc

    async def _dispatch(self, ctx: Any, principal: Principal, name: str, args: dict[str, Any]) -> tuple[int, Any]:
        def arg(key: str, kind: type = str) -> Any:
            value = args.get(key)
            if not isinstance(value, kind) or (kind is str and not value):
                raise _bad(f"arguments.{key}: required ({kind.__name__})")
            return value

        if name == "resources.list":
            kind = arg("kind")
            if kind not in RESOURCE_KINDS:
                raise _bad(f"arguments.kind: one of {', '.join(RESOURCE_KINDS)}")
            return await self.rest(ctx, "GET", RESOURCE_KINDS[kind], params={"limit": args.get("limit")})
        if name == "resource.describe":
            kind = arg("kind")
            if kind not in RESOURCE_KINDS:
                raise _bad(f"arguments.kind: one of {', '.join(RESOURCE_KINDS)}")
            return await self.rest(ctx, "GET", f"{RESOURCE_KINDS[kind]}/{quote(arg('name'), safe='')}")
        if name == "execution.get":
            return await self.rest(ctx, "GET", f"/api/v1/executions/{quote(arg('id'), safe='')}")
        if name == "execution.cancel":
            return await self.rest(ctx, "POST", f"/api/v1/executions/{quote(arg('id'), safe='')}/cancel")
        if name == "runtime.capabilities":
            return await self.rest(ctx, "GET", "/api/v1/runtime/capabilities")
        if name == "runtime.simulate":
            return await self.rest(ctx, "POST", "/api/v1/runtime/simulate", json=args)
        if name == "ai.submit":
            return await self.rest(ctx, "POST", "/api/v1/tasks", json=args)
        kind, _, target = name.partition(".")
        if not target:
            raise _unknown(name)
        path_name = quote(target, safe="")
        if kind == "workflow":
            body = {"input": args.get("input"), "mode": args.get("mode", "sync")}
            for key in ("version", "wait_seconds"):
                if key in args:
                    body[key] = args[key]
            return await self.rest(ctx, "POST", f"/api/v1/workflows/{path_name}/executions", json=body)
        if kind == "function":
            event = jsonutil.dumps(args.get("event"))
            return await self.rest(
                ctx,
                "POST",
                f"/api/v1/functions/{path_name}/invoke",
                params={"qualifier": args.get("qualifier"), "mode": args.get("mode")},
                content=event,
            )
        if kind == "action":
            body = {"input": args.get("input")}
            if args.get("parameters") is not None:
                body["parameters"] = args["parameters"]
            return await self.rest(ctx, "POST", f"/api/v1/actions/{path_name}/execute", json=body)
        raise _unknown(name)

    # ------------------------------------------------------------------ resources
    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        principal = await self._principal(ctx)
        resources = [
            types.Resource(
                name="dsl-schema",
                uri="aionix://schema/dsl",
                mime_type="application/json",
                description="The JSON Schema of the workflow DSL",
            )
        ]
        for wf in await self._names(ctx, "/api/v1/workflows"):
            resources.append(
                types.Resource(
                    name=f"workflow {wf}",
                    uri=f"aionix://workflows/{wf}",
                    mime_type="application/json",
                    description=f"The definition of workflow {wf!r} (latest version)",
                )
            )
        status, body = await self.rest(ctx, "GET", "/api/v1/executions", params={"limit": 20})
        if status == 200 and isinstance(body, dict):
            for item in body.get("items", []):
                eid = item.get("execution_id")
                if eid:
                    resources.append(
                        types.Resource(
                            name=f"history {eid}",
                            uri=f"aionix://executions/{eid}/history",
                            mime_type="application/json",
                            description=f"History of execution {eid} ({item.get('workflow')}, {item.get('status')})",
                        )
                    )
        await self._audit(principal, "mcp resources/list", None, 200)
        return types.ListResourcesResult(resources=resources)

    async def _list_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        principal = await self._principal(ctx)
        await self._audit(principal, "mcp resources/templates/list", None, 200)
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name="workflow", uri_template="aionix://workflows/{name}", mime_type="application/json"
                ),
                types.ResourceTemplate(
                    name="execution-history",
                    uri_template="aionix://executions/{id}/history",
                    mime_type="application/json",
                ),
            ]
        )

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        principal = await self._principal(ctx)
        uri = str(params.uri)
        if uri == "aionix://schema/dsl":
            status, body = await self.rest(ctx, "GET", "/api/v1/workflows/schema")
        elif m := re.fullmatch(r"aionix://workflows/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})", uri):
            status, body = await self.rest(ctx, "GET", f"/api/v1/workflows/{m.group(1)}")
        elif m := re.fullmatch(r"aionix://executions/([^/]{1,200})/history", uri):
            status, body = await self.rest(
                ctx, "GET", f"/api/v1/executions/{quote(m.group(1), safe='')}/history", params={"limit": 1000}
            )
        else:
            await self._audit(principal, "mcp resources/read", uri, 404)
            raise MCPError(types.INVALID_PARAMS, f"unknown resource {uri}")
        await self._audit(principal, "mcp resources/read", uri, status)
        if status >= 400:
            message = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
            raise MCPError(types.INVALID_PARAMS, f"{uri}: {status} {message}")
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(uri=uri, mime_type="application/json", text=jsonutil.dumps(body).decode())
            ]
        )

    # ------------------------------------------------------------------ prompts
    async def _list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        principal = await self._principal(ctx)
        await self._audit(principal, "mcp prompts/list", None, 200)
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name="build-workflow",
                    description="Build a workflow that … (a goal in words): the DSL, the tenant's skills, the checks to run.",
                    arguments=[
                        types.PromptArgument(name="goal", description="what the workflow should do", required=True)
                    ],
                )
            ]
        )

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        principal = await self._principal(ctx)
        if params.name != "build-workflow":
            raise MCPError(types.INVALID_PARAMS, f"unknown prompt {params.name!r}")
        goal = (params.arguments or {}).get("goal") or ""
        if not goal.strip():
            raise MCPError(types.INVALID_PARAMS, "arguments.goal: required")
        functions = await self._names(ctx, "/api/v1/functions")
        actions = await self._names(ctx, "/api/v1/actions")
        text = (
            f"Build an Aionix StepFlow workflow that {goal.strip()}.\n\n"
            "Write it in the StepFlow DSL (resource aionix://schema/dsl is its JSON Schema): `entry` names the "
            "first state; `states` maps names to states of type task, parallel, map, router, wait, set, succeed "
            "or fail; expressions are JSONata inside {% … %}. Give network tasks a `retry` and a `catch`.\n"
            f"Skills of this tenant: functions {functions or 'none'}; saved actions {actions or 'none'}; "
            "connector kinds are listed by the runtime.capabilities tool.\n"
            "Before creating it, call runtime.simulate with the definition and a sample input, fix every "
            "problem and risk it reports, then create it with the REST API or the Copilot."
        )
        await self._audit(principal, "mcp prompts/get", params.name, 200)
        return types.GetPromptResult(
            description=f"Build a workflow that {goal.strip()}",
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )

    # ------------------------------------------------------------------ the ASGI endpoint
    def _throttled(self, request: Any, exc: AionixError) -> AionixError:
        """The REST API's throttling of requests without a valid key: the per-address bucket,
        and for guessed keys the failed-authentication counter (a 429 instead of the 401)."""
        from aionix.api.dispatch import AuthThrottled, client_ip

        ip = client_ip(request)
        wait = self.rt.ip_buckets.take(ip)
        if wait:
            return AuthThrottled("too many requests without a valid key from this address", retry_after=wait)
        if "authorization" in request.headers or "x-api-key" in request.headers:
            blocked = self.rt.auth_failures.blocked(ip)
            if blocked:
                return AuthThrottled("too many failed authentications from this address", retry_after=blocked)
            self.rt.auth_failures.record(ip)
        return exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/mcp`: authenticate like the REST API, then hand the request to the SDK."""
        if scope["type"] != "http":
            return
        from starlette.requests import Request

        request = Request(scope)
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in FORWARDED}
        try:
            if "api_key" in request.query_params or "apikey" in request.query_params:
                raise Unauthorized("API keys are never accepted in URLs; send Authorization: Bearer <key>")
            key = extract_key(request.headers)
            if key is None:
                raise Unauthorized("missing API key (Authorization: Bearer <key> or X-API-Key)")
            principal = await self.rt.authenticator.authenticate(key, headers.get("x-aionix-tenant"))
            wait = self.rt.key_buckets.take(principal.key_id)
            if wait:
                from aionix.errors import RateLimited

                raise RateLimited("rate limit exceeded for this API key", retry_after=wait)
        except AionixError as exc:
            if isinstance(exc, Unauthorized):
                exc = self._throttled(request, exc)
            response = error_response(exc)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="aionix"'
                from aionix.api.authaudit import failed_auth_log

                await failed_auth_log(self.rt).note(request, exc.message, 401)
            await response(scope, receive, send)
            return
        await self._ensure_started()
        token = _current_headers.set(headers)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            _current_headers.reset(token)


def _bad(message: str) -> AionixError:
    from aionix.errors import field_error

    return field_error(message.split(":", 1)[0], message.split(":", 1)[1].strip())


def _unknown(name: str) -> AionixError:
    from aionix.errors import NotFound

    return NotFound(f"no tool {name!r}")


class ChangeNotifier:
    """ASGI middleware: a successful REST write to a workflow, function or action tells that
    tenant's MCP listeners that the tool and resource lists changed."""

    def __init__(self, app: ASGIApp, hub: McpHub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("POST", "PUT", "DELETE")
            or not _CHANGES.match(scope.get("path", ""))
            or scope.get("path") in ("/api/v1/workflows/validate", "/api/v1/workflows/schema")
            or not self.hub.buses
        ):
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if 200 <= status < 300:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            try:
                key = extract_key(headers)
                if key:
                    principal = await self.hub.rt.authenticator.authenticate(key, headers.get("x-aionix-tenant"))
                    await self.hub.changed(principal.tenant)
            except AionixError:
                pass
