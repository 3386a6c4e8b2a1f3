"""Route lookup without trying every route: Starlette's router matches a request against each
of its ~100 routes in turn (a regex each, about a tenth of an API call's CPU). `RouteIndex` gives
it only the routes that can match: a `Route` whose first segments are literal can match only
paths with the same segment count and those segments; every other route (a `{x:path}` or any
other convertor that may match a "/", a mount, a parameter early in the path) stays a candidate
for every path. The candidates keep
the router's order, so the first full match, the 405 partial match and the fallbacks are
exactly what Starlette's loop gives."""

from __future__ import annotations

from typing import Any

from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import Match, Route, Router, get_route_path

#: literal leading segments that key a route (`/api/v1/workflows/...` -> "api", "v1", "workflows")
_KEY_SEGMENTS = 3


#: convertors whose match never spans a "/" (a custom one, like `{x:path}`, may)
_ONE_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)


def _key(route: Any) -> tuple[Any, ...] | None:
    if type(route) is not Route:
        return None
    if not all(type(c) in _ONE_SEGMENT for c in route.param_convertors.values()):
        return None
    parts = route.path.split("/")
    if len(parts) <= _KEY_SEGMENTS or any("{" in p for p in parts[1 : _KEY_SEGMENTS + 1]):
        return None
    return (len(parts), *parts[1 : _KEY_SEGMENTS + 1])


class RouteIndex:
    """The router's `middleware_stack`: HTTP requests go through the index, anything else
    (lifespan, websocket) and requests no candidate matches through the router itself."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._built_for: tuple[int, int] | None = None
        self._generic: list[Any] = []
        self._by_key: dict[tuple[Any, ...], list[Any]] = {}

    def _build(self) -> None:
        routes = self.router.routes
        keyed: dict[tuple[Any, ...], list[int]] = {}
        generic: list[int] = []
        for i, route in enumerate(routes):
            key = _key(route)
            if key is None:
                generic.append(i)
            else:
                keyed.setdefault(key, []).append(i)
        self._generic = [routes[i] for i in generic]
        self._by_key = {k: [routes[i] for i in sorted(v + generic)] for k, v in keyed.items()}
        self._built_for = (id(routes), len(routes))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        router = self.router
        if scope["type"] != "http":
            await router.app(scope, receive, send)
            return
        if self._built_for != (id(router.routes), len(router.routes)):  # routes added since
            self._build()
        parts = get_route_path(scope).split("/")
        candidates = (
            self._by_key.get((len(parts), *parts[1 : _KEY_SEGMENTS + 1]), self._generic)
            if len(parts) > _KEY_SEGMENTS
            else self._generic
        )
        if "router" not in scope:
            scope["router"] = router
        partial = partial_scope = None
        for route in candidates:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await router.app(scope, receive, send)  # nothing matched: the router's own fallbacks


def install(router: Router) -> None:
    if router.middleware_stack == router.app:  # no router-level middleware to keep
        router.middleware_stack = RouteIndex(router)
