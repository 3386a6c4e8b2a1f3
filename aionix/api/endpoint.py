"""Declaring HTTP endpoints: what each service's `routes.py` uses.

An `Api` collects `Endpoint`s declared with a role, a pydantic body/query model and a response
type. The app turns each into a Starlette `Route` whose handler authenticates, rate-limits,
parses and validates the request (400 with the position for malformed JSON, 415 for a wrong
content type, 422 naming every bad field), applies `Idempotency-Key`, calls the service and
records the audit trail. The same declarations generate `/api/openapi.json`.

    api = Api("workflows")

    @api.post("/api/v1/workflows", role="operator", body=CreateWorkflow, response=Workflow, status=201)
    async def create_workflow(call: Call) -> Workflow:
        return await call.service("stepflow").create(call.tenant, call.body)
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from aionix.bus import CallContext
from aionix.errors import field_error
from aionix.jsonutil import INT64_MAX, INT64_MIN, out_of_store_range

if TYPE_CHECKING:
    from aionix.api.auth import Principal
    from aionix.runtime import Runtime

Role = Literal["viewer", "operator", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 1, "operator": 2, "admin": 3}
T = TypeVar("T")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error response: `{"error": {"code", "message", "details"}}`."""

    error: ErrorBody


class Page(BaseModel, Generic[T]):
    """A page of a list; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, le=10_000, description="page size (capped by limits.max_page_size)")
    cursor: str | None = Field(None, max_length=512)


#: What a path parameter of this name must match (authenticated routes: the dispatcher refuses
#: anything else with a 422 naming `path.<name>`; the OpenAPI document states the same pattern).
PATH_PATTERNS: dict[str, str] = {
    "name": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
    "alias": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
    "tenant": r"^[a-z0-9][a-z0-9-]{0,62}$",
    # a version number (functions); 18 digits keep it within the store's 64-bit range
    "version": r"^[0-9]{1,18}$",
}
_PATH_RES = {name: re.compile(pattern) for name, pattern in PATH_PATTERNS.items()}


def check_path_params(path: dict[str, Any]) -> None:
    """422 naming `path.<name>` when a path parameter breaks its documented pattern."""
    for name, value in path.items():
        pattern = _PATH_RES.get(name)
        if pattern is not None and isinstance(value, str) and pattern.match(value) is None:
            raise field_error(f"path.{name}", f"must match {PATH_PATTERNS[name]}")


STORE_RANGE = f"must be an integer from {INT64_MIN} to {INT64_MAX} (the store's range)"


def int_cursor(cursor: str | None, field: str = "query.cursor") -> int | None:
    """A numeric cursor this API issued (a version, a sequence number), or a 422 naming `field`."""
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()):
        raise field_error(field, "not a cursor returned by this list")
    value = int(cursor)
    if value > INT64_MAX:
        raise field_error(field, "not a cursor returned by this list")
    return value


def _int_typed(annotation: Any) -> bool:
    """True when `annotation` declares an integer field (`int`, `int | None`, `Annotated[int, …]`)."""
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _int_typed(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_int_typed(a) for a in typing.get_args(annotation))
    return False


def _item_annotation(annotation: Any, container: type) -> Any:
    """The element type of a `list[X]` / value type of a `dict[K, X]` within `annotation`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _item_annotation(typing.get_args(annotation)[0], container)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _item_annotation(option, container)
            if found is not Any:
                return found
        return Any
    if origin is not None and isinstance(origin, type) and issubclass(origin, container):
        args = typing.get_args(annotation)
        return args[-1] if args else Any
    return Any


#: values that hold no integer (a check of one returns at once)
_NO_INTS = frozenset({str, float, bool})
#: model class -> (attribute, field name in the request, annotation) of each field
_FIELDS: dict[type, tuple[tuple[str, str, Any], ...]] = {}


def _model_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, Any], ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(
            (name, info.alias or name, info.annotation) for name, info in cls.model_fields.items()
        )
    return found


def check_store_ints(value: Any, where: str = "", annotation: Any = Any) -> None:
    """Refuse (422 naming the field) a declared integer field outside the store's 64-bit range.

    One rule for every query and body model, applied by the dispatcher after validation; the
    OpenAPI document states the same bounds (`minimum`/`maximum` on every integer). Free-form JSON
    (`Any` fields: a parameter value, a workflow input) keeps integers of any size exactly."""
    if annotation is Any and not isinstance(value, BaseModel):
        return  # free-form JSON: nothing in it is an integer field (no walk over a big input)
    if isinstance(value, BaseModel):
        for name, loc, declared in _model_fields(type(value)):
            item = getattr(value, name, None)
            if item is None or type(item) in _NO_INTS or (declared is Any and not isinstance(item, BaseModel)):
                continue  # (what the call below would return at once for it, without building `where`)
            check_store_ints(item, f"{where}.{loc}" if where else loc, declared)
    elif isinstance(value, (list, tuple)):
        inner = _item_annotation(annotation, list)
        for index, item in enumerate(value):
            check_store_ints(item, f"{where}.{index}", inner)
    elif isinstance(value, dict):
        inner = _item_annotation(annotation, dict)
        for key, item in value.items():
            check_store_ints(item, f"{where}.{key}", inner)
    elif out_of_store_range(value) and _int_typed(annotation):
        raise field_error(where or "body", STORE_RANGE)


@dataclass
class Call:
    """One API request as a handler sees it."""

    request: Request
    rt: Runtime
    principal: Principal | None
    body: Any = None
    query: Any = None
    path: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""

    @property
    def tenant(self) -> str:
        assert self.principal is not None, "public endpoints have no tenant"
        return self.principal.tenant

    @property
    def trace_id(self) -> str:
        return self.request.state.trace_id

    def context(self, **extra: Any) -> CallContext:
        """A bus context for calls made on behalf of this request."""
        return CallContext(
            tenant=self.tenant,
            trace_id=self.trace_id,
            principal=self.principal.key_id if self.principal else None,
            extra=extra,
            on_behalf_of=self.principal,
        )

    def service(self, name: str) -> Any:
        return self.rt.services[name]

    def page_limit(self, limit: int | None) -> int:
        limits = self.rt.config.limits
        return min(limit or limits.default_page_size, limits.max_page_size)


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    role: Role | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    summary: str = ""
    tag: str = ""
    raw_body: bool = False
    content_types: tuple[str, ...] = ("application/json",)
    media_type: str = "application/json"
    audit: bool | None = None
    idempotent: bool = True
    extra_responses: dict[int, str] = field(default_factory=dict)

    @property
    def mutating(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH", "DELETE"}

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Api:
    """The endpoints of one service (or of the core)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, *, role: Role | None, **options: Any) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            doc = (handler.__doc__ or "").strip().split("\n")[0]
            options.setdefault("summary", doc)
            self.endpoints.append(Endpoint(method, path, handler, role, tag=self.tag, **options))
            return handler

        return decorate

    def get(self, path: str, *, role: Role | None, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, role=role, **options)

    def post(self, path: str, *, role: Role | None, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, role=role, **options)

    def put(self, path: str, *, role: Role | None, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, role=role, **options)

    def delete(self, path: str, *, role: Role | None, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, role=role, **options)
