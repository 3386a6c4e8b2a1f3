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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from aionix.bus import CallContext

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
