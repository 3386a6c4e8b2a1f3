"""The AI service's HTTP routes: tasks (and their `/v1/…` short paths), the router's policy
versions and decisions, usage and budgets."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response, StreamingResponse

from aionix import jsonutil
from aionix.ai.models import (
    DecisionQuery,
    RollbackBody,
    SubmitTask,
    TaskListQuery,
    TenantBudget,
    UsageQuery,
    VersionsQuery,
)
from aionix.ai.service import TERMINAL, AiService
from aionix.api.dispatch import json_response
from aionix.api.endpoint import Api, Call, int_cursor

api = Api("ai")


def _svc(call: Call) -> AiService:
    return call.service("ai")


async def submit_task(call: Call) -> Response:
    """Submit a task for an intent: 202 with the RUNNING envelope when `stream` is true (follow
    `GET …/{id}/stream`), else the finished envelope (200) once done within
    `[ai] sync_wait_seconds`."""
    svc = _svc(call)
    body: SubmitTask = call.body
    run = await svc.submit(
        call.tenant,
        call.principal.key_id if call.principal else None,
        body,
        trace_id=_traceparent(call),
        principal=call.principal,  # its policies on each candidate provider
        route=f"POST {call.request.scope['path']}",
        via="mcp" if call.request.headers.get("user-agent") == "aionix-mcp" else "api",  # as the call's own check
    )
    if not body.stream:
        await svc.wait(run, svc.config.sync_wait_seconds)
    env = run.envelope()
    headers = {"Location": f"/api/v1/tasks/{run.id}"}
    return json_response(env, 200 if env["status"] in TERMINAL else 202, headers)


def _traceparent(call: Call) -> str:
    tp = call.request.headers.get("traceparent", "")
    parts = tp.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and all(c in "0123456789abcdef" for c in parts[1]):
        return parts[1]
    return call.trace_id


async def get_task(call: Call) -> dict[str, Any]:
    """The task's envelope."""
    return await _svc(call).get(call.tenant, call.path["id"])


async def list_tasks(call: Call) -> dict[str, Any]:
    """The tenant's tasks, newest first."""
    q: TaskListQuery = call.query
    return await _svc(call).list(call.tenant, q.status, call.page_limit(q.limit), q.cursor)


async def cancel_task(call: Call) -> dict[str, Any]:
    """Cancel a running task (its provider stream is closed); a finished task is returned as it is."""
    return await _svc(call).cancel(call.tenant, call.path["id"])


async def task_stream(call: Call) -> Response:
    """Server-Sent Events: `token`, `partial`, then `done` or `error` (with the envelope);
    resumable with `Last-Event-ID`."""
    svc = _svc(call)
    task_id = call.path["id"]
    tenant = call.tenant
    envelope = await svc.get(tenant, task_id)
    raw = call.request.headers.get("last-event-id") or call.request.query_params.get("after") or "0"
    after = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else 0

    async def events():
        nonlocal after
        run = svc.runs.get(task_id)
        if run is None or run.tenant != tenant:
            kind = "done" if envelope["status"] == "OK" else "error"
            if envelope["status"] == "RUNNING":
                kind = "error"
            yield f"event: {kind}\ndata: {jsonutil.dumps(envelope).decode()}\n\n"
            return
        idle = 0
        while True:
            while len(run.events) > after:
                seq, kind, data = run.event(after)
                after = seq
                yield f"id: {seq}\nevent: {kind}\ndata: {jsonutil.dumps(data).decode()}\n\n"
                if kind in ("done", "error"):
                    return
            if run.done.is_set() and len(run.events) <= after:
                return
            await run.wait_event(after, 5.0)
            if len(run.events) <= after:
                idle += 1
                yield ": keep-alive\n\n"
                if await call.request.is_disconnected():
                    return

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _alias(fn: Any, name: str) -> Any:
    """The same handler under another operation id (the `/v1/…` short paths)."""

    async def handler(call: Call) -> Any:
        return await fn(call)

    handler.__name__ = name
    handler.__doc__ = f"{(fn.__doc__ or '').strip().splitlines()[0]} (short path)"
    return handler


for prefix, suffix in (("/api/v1", ""), ("/v1", "_short")):
    api.post(f"{prefix}/tasks", role="operator", body=SubmitTask, status=202, audit=False)(
        _alias(submit_task, "submit_task" + suffix) if suffix else submit_task
    )
    api.get(f"{prefix}/tasks", role="viewer", query=TaskListQuery)(
        _alias(list_tasks, "list_tasks" + suffix) if suffix else list_tasks
    )
    api.get(f"{prefix}/tasks/{{id}}", role="viewer")(_alias(get_task, "get_task" + suffix) if suffix else get_task)
    api.post(f"{prefix}/tasks/{{id}}/cancel", role="operator")(
        _alias(cancel_task, "cancel_task" + suffix) if suffix else cancel_task
    )
    api.get(f"{prefix}/tasks/{{id}}/stream", role="viewer", media_type="text/event-stream")(
        _alias(task_stream, "task_stream" + suffix) if suffix else task_stream
    )
api.get("/v1/stream/{id}", role="viewer", media_type="text/event-stream")(_alias(task_stream, "task_stream_v1"))


@api.post("/api/v1/router/policy/reload", role="admin", audit=True)
async def reload_policy(call: Call) -> dict[str, Any]:
    """Load the policy files again: a valid set becomes a new active version; a bad file is
    refused (file, line, field) and the running version stays."""
    out = await _svc(call).reload(call.principal.key_id if call.principal else None)
    await call.rt.audit(call.request, call.principal, "ai.policy.reload", status=200, details=out)
    return out


@api.get("/api/v1/router/policy/versions", role="viewer", query=VersionsQuery)
async def policy_versions(call: Call) -> dict[str, Any]:
    """Every loaded policy version, newest first; one is active."""
    q: VersionsQuery = call.query
    return await _svc(call).versions(call.page_limit(q.limit), int_cursor(q.cursor))


@api.post("/api/v1/router/policy/rollback", role="admin", body=RollbackBody, audit=True)
async def rollback_policy(call: Call) -> dict[str, Any]:
    """Make an earlier policy version the active one (instant)."""
    out = await _svc(call).rollback(call.body.version)
    await call.rt.audit(call.request, call.principal, "ai.policy.rollback", status=200, details=out)
    return out


@api.get("/api/v1/router/decisions", role="viewer", query=DecisionQuery)
async def router_decisions(call: Call) -> dict[str, Any]:
    """The router's decisions for the tenant's tasks, newest first, each with its reason."""
    q: DecisionQuery = call.query
    limit = call.page_limit(q.limit)
    rows = await call.rt.store.fetch_all(
        "ai.list_decisions",
        {"tenant": call.tenant, "task_id": q.task_id, "cursor": int_cursor(q.cursor), "limit": limit + 1},
    )
    items = rows[:limit]
    return {"items": items, "next_cursor": str(items[-1]["seq"]) if len(rows) > limit else None}


@api.get("/api/v1/usage", role="viewer", query=UsageQuery)
async def usage(call: Call) -> dict[str, Any]:
    """Tokens, cost and latency from the usage ledger, grouped by intent, provider, model, day or key."""
    q: UsageQuery = call.query
    return await _svc(call).usage(call.tenant, q.group_by, q.since)


@api.put("/api/v1/usage/budget", role="admin", body=TenantBudget)
async def put_budget(call: Call) -> dict[str, Any]:
    """Set the tenant's daily/monthly AI budget (USD; null: the `[ai] budgets` default; 0: no limit)."""
    body: TenantBudget = call.body
    return await _svc(call).put_budget(call.tenant, body.daily_usd, body.monthly_usd)


@api.get("/api/v1/usage/budget", role="viewer")
async def get_budget(call: Call) -> dict[str, Any]:
    """The tenant's AI budget in force."""
    return await _svc(call).tenant_budget(call.tenant)
