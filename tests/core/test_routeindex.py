"""The route index (aionix/api/routeindex.py) picks exactly the route Starlette's own loop picks:
the same full match, the same 405 partial match and the same fallbacks, for literal, templated,
`{x:path}` and mounted routes, in the router's order."""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from aionix.api import routeindex


class _Slashed(Convertor):
    """A custom convertor whose match spans segments (like the params API's `parampath`)."""

    regex = r"[a-z]+(?:/[a-z]+)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("slashed_test", _Slashed())


def _endpoint(label: str):
    async def handler(request):
        return PlainTextResponse(f"{label} {sorted(request.path_params.items())}")

    return handler


def _app(indexed: bool) -> Starlette:
    sub = Starlette(routes=[Route("/{rest:path}", _endpoint("mounted"))])
    routes = [
        Route("/healthz", _endpoint("health"), methods=["GET"]),
        Route("/api/v1/workflows", _endpoint("list"), methods=["GET", "POST"]),
        Route("/api/v1/workflows/schema", _endpoint("schema"), methods=["GET"]),
        Route("/api/v1/workflows/{name}", _endpoint("one"), methods=["GET", "PUT", "DELETE"]),
        Route("/api/v1/workflows/{name}/executions", _endpoint("start"), methods=["POST"]),
        Route("/api/v1/executions/{id:int}", _endpoint("int"), methods=["GET"]),
        Route("/api/v1/executions/{id}", _endpoint("exec"), methods=["GET"]),
        Route("/api/{tenant}/x/y", _endpoint("early-param"), methods=["GET"]),
        Route("/api/v1/files/{p:path}", _endpoint("files"), methods=["GET"]),
        Route("/api/v1/params/{p:slashed_test}", _endpoint("params"), methods=["GET", "PUT"]),
        Route("/api/{rest:path}", _endpoint("catch-all"), methods=["GET", "POST", "PUT", "DELETE"]),
        Mount("/", app=sub),
    ]
    app = Starlette(routes=routes)
    if indexed:
        routeindex.install(app.router)
        assert isinstance(app.router.middleware_stack, routeindex.RouteIndex)
    return app


PATHS = [
    "/",
    "/healthz",
    "/healthz/",
    "/api/v1/workflows",
    "/api/v1/workflows/",
    "/api/v1/workflows/schema",
    "/api/v1/workflows/a",
    "/api/v1/workflows/a/executions",
    "/api/v1/workflows/a/executions/",
    "/api/v1/workflows/a/b/c",
    "/api/v1/executions/12",
    "/api/v1/executions/ab",
    "/api/t1/x/y",
    "/api/v1/x/y",
    "/api/v1/files/a/b/c.txt",
    "/api/v1/params/a",
    "/api/v1/params/a/b/c",
    "/api/v2/workflows",
    "/api",
    "/other/path",
    "/API/v1/workflows",
]


def test_index_answers_as_the_router_does():
    plain, indexed = TestClient(_app(False)), TestClient(_app(True))
    for path, method in itertools.product(PATHS, ["GET", "POST", "PUT", "DELETE", "PATCH"]):
        a = plain.request(method, path, follow_redirects=False)
        b = indexed.request(method, path, follow_redirects=False)
        assert (a.status_code, a.text, a.headers.get("allow"), a.headers.get("location")) == (
            b.status_code,
            b.text,
            b.headers.get("allow"),
            b.headers.get("location"),
        ), (method, path)


def test_routes_added_later_are_indexed():
    app = _app(True)
    client = TestClient(app)
    assert client.get("/api/v1/workflows/a/late").text.startswith("catch-all")  # the index is built
    app.router.routes.insert(0, Route("/api/v1/workflows/{name}/late", _endpoint("late"), methods=["GET"]))
    assert client.get("/api/v1/workflows/a").text.startswith("one")
    assert client.get("/api/v1/workflows/a/late").text.startswith("late")
