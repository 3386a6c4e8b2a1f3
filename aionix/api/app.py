"""The Starlette application: core routes, every service's endpoints, the Studio, and the
error envelope for everything (404, 405, 500 included)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from aionix import jsonutil
from aionix.api import openapi, routeindex
from aionix.api.dispatch import error_response, json_response, make_handler
from aionix.errors import AionixError, MethodNotAllowed, NotFound

if TYPE_CHECKING:
    from aionix.runtime import Runtime

STUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "studio_dist"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def studio_dir() -> Path | None:
    import sys

    candidates = [STUDIO_DIR]
    if getattr(sys, "_MEIPASS", None):
        candidates.insert(0, Path(sys._MEIPASS) / "studio_dist")
    for c in candidates:
        if (c / "index.html").is_file():
            return c
    return None


class StudioFiles(StaticFiles):
    """The built Studio with a strict CSP; hashed assets cached for a year, the rest revalidated."""

    async def get_response(self, path: str, scope: Any) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or "." in path.rsplit("/", 1)[-1]:
                raise
            response = await super().get_response("index.html", scope)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if path.startswith("assets/"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def create_app(rt: Runtime) -> Starlette:
    endpoints = rt.endpoints()
    spec_cache: dict[str, bytes] = {}

    async def healthz(request: Request) -> Response:
        store_ok = await rt.store.healthy()
        body = {"status": "ok" if store_ok else "degraded", "store": "ok" if store_ok else "error", **rt.describe()}
        return json_response(body, 200 if store_ok else 503)

    async def metrics(request: Request) -> Response:
        await rt.metrics.refresh()  # the level gauges (queues, outbox, pools, WAL) as of now
        return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi_json(request: Request) -> Response:
        if "spec" not in spec_cache:
            spec_cache["spec"] = jsonutil.dumps(openapi.build(endpoints))
        return Response(spec_cache["spec"], media_type="application/json")

    routes: list[Any] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
    ]
    grouped: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        grouped.setdefault(ep.path, {})[ep.method] = make_handler(ep, rt)
    for path, handlers in grouped.items():
        routes.append(Route(path, _by_method(handlers), methods=list(handlers)))
    for plugin in rt.plugins:
        routes.extend(plugin.routes)
    mcp_hub = _mcp_hub(rt)  # MCP over Streamable HTTP at /mcp (optional extra aionix[mcp])
    if mcp_hub is not None:
        routes.append(Route("/mcp", mcp_hub))

    async def no_route(request: Request) -> Response:
        matching = [
            route
            for route in request.app.router.routes
            if isinstance(route, Route)
            and route.endpoint is not no_route
            and route.matches(request.scope)[0] == Match.PARTIAL
        ]
        # a literal path (/api/v1/workflows/schema) is its own resource, not an instance of a
        # templated one (/api/v1/workflows/{name}) that happens to match it too
        literal = [route for route in matching if not route.param_convertors]
        allowed = [method for route in literal or matching for method in sorted(route.methods or ())]
        if allowed:
            response = error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(NotFound(f"no route for {request.method} {request.url.path}"))

    # Unknown API paths answer the 404 envelope, never the Studio's index page.
    routes.append(
        Route("/api/{rest:path}", no_route, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    )
    studio = studio_dir()
    if studio is not None:
        routes.append(Mount("/", app=StudioFiles(directory=studio, html=True), name="studio"))
    else:
        routes.append(Route("/", _no_studio, methods=["GET"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(NotFound(f"no route for {request.method} {request.url.path}"))
        if exc.status_code == 405:
            response = error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
            if exc.headers and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        return error_response(AionixError(exc.detail or "error", code="http_error"))

    async def aionix_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AionixError)
        return error_response(exc)

    middleware = []
    if rt.config.security.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=rt.config.security.cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Aionix-Tenant"],
            )
        )
    if mcp_hub is not None:
        middleware.append(Middleware(_McpChanges, lazy=mcp_hub))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error, AionixError: aionix_error},
    )
    app.state.runtime = rt
    routeindex.install(app.router)  # only the routes that can match are tried (routeindex.py)
    if mcp_hub is not None:
        mcp_hub.app = app
    return app


def _mcp_hub(rt: Runtime) -> LazyMcp | None:
    """The MCP server, when the `mcp` SDK is installed (None otherwise: /mcp is then a 404)."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("mcp", "mcp_types")):
        return None
    return LazyMcp(rt)


class LazyMcp:
    """`/mcp`: the MCP SDK (half a second of imports, a dozen MB) is imported, off the loop, by
    the first MCP request rather than by every start (`rt.mcp` is the hub once it is loaded)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.app: Any = None  # the whole Starlette app, for the hub's in-process REST calls
        self.hub: Any = None
        self.change_notifier: Any = None
        self._lock: Any = None

    async def load(self) -> Any:
        import asyncio
        import importlib

        if self.hub is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self.hub is None:
                    module = await asyncio.to_thread(importlib.import_module, "aionix.agents.mcp_server")
                    hub = module.McpHub(self.rt)
                    hub.app = self.app
                    self.change_notifier = module.ChangeNotifier
                    self.rt.mcp = hub  # type: ignore[attr-defined]
                    self.hub = hub
        return self.hub

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            hub = await self.load()
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types", "httpx2"):
                raise
            await error_response(NotFound(f"no route for {scope.get('method')} /mcp"))(scope, receive, send)
            return
        await hub(scope, receive, send)


class _McpChanges:
    """The MCP hub's change notices (`ChangeNotifier`), once an MCP client has loaded it."""

    def __init__(self, app: Any, lazy: LazyMcp) -> None:
        self.app = app
        self.lazy = lazy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        hub = self.lazy.hub
        if hub is None or not hub.buses:
            await self.app(scope, receive, send)
            return
        await self.lazy.change_notifier(self.app, hub)(scope, receive, send)


def _by_method(handlers: dict[str, Any]) -> Any:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return dispatch


async def _no_studio(request: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Aionix</title><h1>Aionix</h1><p>The Studio is not built. "
        'API: <a href="/api/openapi.json">/api/openapi.json</a>, health: <a href="/healthz">/healthz</a>.</p>'
    )
