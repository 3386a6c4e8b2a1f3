"""Wiring the triggers service into the runtime."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aionix.api.dispatch import error_response
from aionix.errors import MethodNotAllowed, NotFound
from aionix.runtime import Runtime, ServicePlugin
from aionix.triggers.routes import api
from aionix.triggers.service import TriggerService

_OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _hook_method_not_allowed(request: Request) -> Response:
    response = error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    response.headers["Allow"] = "POST"
    return response


async def _no_hook(request: Request) -> Response:
    return error_response(
        NotFound(f"no route for {request.method} {request.url.path} (webhooks are /hooks/{{tenant}}/{{name}})")
    )


def create(rt: Runtime) -> ServicePlugin:
    svc = TriggerService(rt)
    # /hooks/… is outside /api, so without these the Studio's catch-all would answer it.
    routes = [
        Route("/hooks/{tenant}/{name}", _hook_method_not_allowed, methods=_OTHER_METHODS),
        Route("/hooks/{rest:path}", _no_hook, methods=["POST", *_OTHER_METHODS]),
    ]
    return ServicePlugin(name="triggers", service=svc, api=api, routes=routes, start=svc.start, stop=svc.stop)
