"""HTTP routes of the triggers service (DESIGN.md §6): thin handlers over `TriggerService`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from aionix.api.endpoint import Api, Call, Page
from aionix.errors import field_error
from aionix.triggers.models import (
    CreateTrigger,
    EventAccepted,
    Fire,
    HistoryQuery,
    ListQuery,
    PutEvent,
    RotateSecret,
    Trigger,
    TriggerBody,
    TriggerWithCredential,
)

api = Api("triggers")


@api.post("/api/v1/triggers", role="operator", body=CreateTrigger, response=TriggerWithCredential, status=201)
async def create_trigger(call: Call) -> dict[str, Any]:
    """Create a trigger; a webhook's secret (or token) is returned only in this response."""
    return await call.service("triggers").create(call.tenant, call.body)


@api.get("/api/v1/triggers", role="viewer", query=ListQuery, response=Page[Trigger])
async def list_triggers(call: Call) -> dict[str, Any]:
    """List the tenant's triggers by name."""
    q: ListQuery = call.query
    return await call.service("triggers").list(
        call.tenant, kind=q.kind, limit=call.page_limit(q.limit), cursor=q.cursor
    )


@api.get("/api/v1/triggers/{name}", role="viewer", response=Trigger)
async def get_trigger(call: Call) -> dict[str, Any]:
    """Get a trigger."""
    return await call.service("triggers").get(call.tenant, call.path["name"])


@api.put("/api/v1/triggers/{name}", role="operator", body=TriggerBody, response=TriggerWithCredential)
async def update_trigger(call: Call) -> dict[str, Any]:
    """Replace a trigger's definition (its kind stays; its secret is kept)."""
    return await call.service("triggers").update(call.tenant, call.path["name"], call.body)


@api.delete("/api/v1/triggers/{name}", role="operator", response=Trigger)
async def delete_trigger(call: Call) -> dict[str, Any]:
    """Delete a trigger and its history."""
    return await call.service("triggers").delete(call.tenant, call.path["name"])


@api.post("/api/v1/triggers/{name}/enable", role="operator", response=Trigger)
async def enable_trigger(call: Call) -> dict[str, Any]:
    """Enable a trigger; a schedule resumes from now (due times while disabled are not fired)."""
    return await call.service("triggers").set_enabled(call.tenant, call.path["name"], True)


@api.post("/api/v1/triggers/{name}/disable", role="operator", response=Trigger)
async def disable_trigger(call: Call) -> dict[str, Any]:
    """Disable a trigger."""
    return await call.service("triggers").set_enabled(call.tenant, call.path["name"], False)


@api.post("/api/v1/triggers/{name}/rotate-secret", role="operator", body=RotateSecret, response=TriggerWithCredential)
async def rotate_trigger_secret(call: Call) -> dict[str, Any]:
    """Issue a new webhook secret (or token); the old one stays valid for the grace period."""
    return await call.service("triggers").rotate(call.tenant, call.path["name"], call.body.grace_seconds)


@api.get("/api/v1/triggers/{name}/history", role="viewer", query=HistoryQuery, response=Page[Fire])
async def trigger_history(call: Call) -> dict[str, Any]:
    """The trigger's firings, newest first: due time or delivery id, outcome, execution id, error."""
    q: HistoryQuery = call.query
    return await call.service("triggers").history(
        call.tenant, call.path["name"], status=q.status, limit=call.page_limit(q.limit), cursor=q.cursor
    )


@api.post("/api/v1/events", role="operator", body=PutEvent, response=EventAccepted, status=202)
async def put_event(call: Call) -> dict[str, Any]:
    """Publish an event `{source, type, detail}`; matching event triggers fire. Sources
    `aionix` / `aionix.*` (any case) and `credvault` belong to the platform: refused (422)."""
    if reserved_source(call.body.source):
        raise field_error(
            "source",
            f"{call.body.source!r} is reserved for events the platform publishes (aionix.*, credvault); "
            "use a source of your own, such as your application's name",
        )
    return await call.service("triggers").put_event(call.tenant, call.body)


def reserved_source(source: str) -> bool:
    lowered = source.strip().lower()
    return lowered in ("aionix", "credvault") or lowered.startswith("aionix.")


@api.post(
    "/hooks/{tenant}/{name}",
    role=None,
    response=None,
    status=202,
    content_types=("application/json", "application/x-www-form-urlencoded", "text/plain"),
    extra_responses={
        200: "sync reply: the workflow's output",
        401: "bad signature or token",
        403: "the tenant is suspended",
        409: "replayed or disabled",
        413: "body too large",
        415: "content type",
    },
)
async def receive_webhook(call: Call) -> Response:
    """A signed webhook delivery (no API key; see the Triggers section of the README)."""
    return await call.service("triggers").webhooks.receive(call.path["tenant"], call.path["name"], call.request)
