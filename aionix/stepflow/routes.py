"""StepFlow's HTTP API (DESIGN.md §6): workflows, executions, history, SSE stream, callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response, StreamingResponse

from aionix import jsonutil
from aionix.api.dispatch import json_response
from aionix.api.endpoint import Api, Call, Page, PageQuery
from aionix.stepflow.engine import TERMINAL
from aionix.stepflow.models import (
    AslHistory,
    CallbackAck,
    CallbackBody,
    CreateTemplate,
    Envelope,
    ExecutionQuery,
    HistoryEvent,
    HistoryQuery,
    StartExecution,
    TemplateInfo,
    TemplateQuery,
    TemplateVersion,
    UpdateTemplate,
    ValidateRequest,
    ValidationReport,
    dsl_schema,
)
from aionix.trn import validate_name

api = Api("workflows")


def _svc(call: Call) -> Any:
    return call.service("stepflow")


@api.get("/api/v1/workflows/schema", role="viewer")
async def workflow_schema(call: Call) -> Response:
    """The JSON Schema of the workflow DSL."""
    return json_response(dsl_schema())


@api.post("/api/v1/workflows/validate", role="viewer", body=ValidateRequest, response=ValidationReport, audit=False)
async def validate_workflow(call: Call) -> Any:
    """Validate a definition: every problem at once, each with a JSON pointer."""
    return await _svc(call).validate(call.tenant, call.body.definition)


@api.post("/api/v1/workflows", role="operator", body=CreateTemplate, response=TemplateInfo, status=201)
async def create_workflow(call: Call) -> Any:
    """Create a workflow template (version 1)."""
    b: CreateTemplate = call.body
    return await _svc(call).create_template(call.tenant, b.name, b.definition, b.description)


@api.get("/api/v1/workflows", role="viewer", query=PageQuery, response=Page[TemplateInfo])
async def list_workflows(call: Call) -> Any:
    """List workflow templates by name."""
    return await _svc(call).list_templates(call.tenant, call.page_limit(call.query.limit), call.query.cursor)


@api.get("/api/v1/workflows/{name}", role="viewer", query=TemplateQuery, response=TemplateInfo)
async def get_workflow(call: Call) -> Any:
    """A template's latest version (`?version=N` for another)."""
    return await _svc(call).get_template(call.tenant, validate_name(call.path["name"]), call.query.version)


@api.put("/api/v1/workflows/{name}", role="operator", body=UpdateTemplate, response=TemplateInfo)
async def update_workflow(call: Call) -> Any:
    """Update a template: a new immutable version (running executions keep theirs)."""
    b: UpdateTemplate = call.body
    return await _svc(call).update_template(call.tenant, validate_name(call.path["name"]), b.definition, b.description)


@api.delete("/api/v1/workflows/{name}", role="operator", response=TemplateInfo)
async def delete_workflow(call: Call) -> Any:
    """Delete a template and its versions (409 while it has RUNNING executions); its executions stay
    readable by id until retention removes them, and the name starts again at version 1."""
    return await _svc(call).delete_template(call.tenant, validate_name(call.path["name"]))


@api.get("/api/v1/workflows/{name}/versions", role="viewer", query=PageQuery, response=Page[TemplateVersion])
async def list_workflow_versions(call: Call) -> Any:
    """A template's versions, newest first."""
    return await _svc(call).list_versions(
        call.tenant, validate_name(call.path["name"]), call.page_limit(call.query.limit), call.query.cursor
    )


@api.post(
    "/api/v1/workflows/{name}/executions",
    role="operator",
    body=StartExecution,
    response=Envelope,
    status=200,
    extra_responses={202: "accepted: still running (async, or sync past its wait bound)"},
)
async def start_execution(call: Call) -> Any:
    """Start an execution: `sync` answers with the result envelope, `async` with 202 and the id."""
    b: StartExecution = call.body
    envelope, finished = await _svc(call).start(
        call.tenant,
        validate_name(call.path["name"]),
        b.input,
        version=b.version,
        mode=b.mode,
        idempotency_key=call.request.headers.get("idempotency-key"),
        trace_id=call.trace_id,
        wait_seconds=b.wait_seconds,
        on_behalf_of=call.principal,  # policies apply to its bus calls (aionix/iam/policy_engine.py)
    )
    return json_response(Envelope.model_validate(envelope).model_dump(mode="json"), 200 if finished else 202)


@api.get("/api/v1/executions", role="viewer", query=ExecutionQuery, response=Page[Envelope])
async def list_executions(call: Call) -> Any:
    """List executions, newest first; filter by workflow, status and start time."""
    q: ExecutionQuery = call.query
    return await _svc(call).list_executions(
        call.tenant,
        workflow=q.workflow,
        status=q.status,
        since=q.since,
        until=q.until,
        limit=call.page_limit(q.limit),
        cursor=q.cursor,
    )


@api.get("/api/v1/executions/{id}", role="viewer", response=Envelope)
async def get_execution(call: Call) -> Any:
    """An execution's result envelope."""
    return await _svc(call).envelope_by_id(call.path["id"], call.tenant)


@api.get("/api/v1/executions/{id}/history", role="viewer", query=HistoryQuery, response=Page[HistoryEvent] | AslHistory)
async def execution_history(call: Call) -> Any:
    """The execution's history events in order (`after` = the last seq seen)."""
    q: HistoryQuery = call.query
    if q.format == "asl":
        # imported on first use: the ASL engine is not on the start-up path (issue 24 part 3)
        from aionix.stepflow.asl.history import execution_history as asl_history

        return json_response(await asl_history(_svc(call), call.tenant, call.path["id"]))
    return await _svc(call).history(call.tenant, call.path["id"], q.after, call.page_limit(q.limit))


@api.get("/api/v1/executions/{id}/stream", role="viewer", media_type="text/event-stream")
async def execution_stream(call: Call) -> Response:
    """Server-Sent Events: each history event as it is committed, then `done` with the envelope."""
    svc = _svc(call)
    execution_id = call.path["id"]
    tenant = call.tenant
    await svc.envelope_by_id(execution_id, tenant)
    raw_after = call.request.headers.get("last-event-id") or call.request.query_params.get("after") or "0"
    after = int(raw_after) if raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 18 else 0

    async def events():
        nonlocal after
        idle = 0.0
        while True:
            page = await svc.history(tenant, execution_id, after, 500)
            for event in page["items"]:
                after = event["seq"]
                yield f"id: {event['seq']}\nevent: {event['type']}\ndata: {jsonutil.dumps(event).decode()}\n\n"
            if page["next_cursor"]:
                continue
            envelope = await svc.envelope_by_id(execution_id, tenant)
            if envelope["status"] in TERMINAL and execution_id not in svc.runs:
                rest = await svc.history(tenant, execution_id, after, 500)
                if not rest["items"]:
                    yield f"event: done\ndata: {jsonutil.dumps(envelope).decode()}\n\n"
                    return
                continue
            if await call.request.is_disconnected():
                return
            await svc.wait_update(execution_id, 5.0)
            idle += 1
            if idle % 3 == 0:
                yield ": keep-alive\n\n"
            await asyncio.sleep(0)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@api.post("/api/v1/executions/{id}/cancel", role="operator", response=Envelope)
async def cancel_execution(call: Call) -> Any:
    """Abort a running execution: its tasks, branches, map items and child executions."""
    return await _svc(call).cancel(call.tenant, call.path["id"])


@api.post("/api/v1/executions/{id}/redrive", role="operator", response=Envelope)
async def redrive_execution(call: Call) -> Any:
    """Restart a FAILED, TIMED_OUT or ABORTED execution from where it failed."""
    return await _svc(call).redrive(call.tenant, call.path["id"])


async def _callback(call: Call, outcome: str) -> Any:
    return await _svc(call).callback(call.tenant, call.path["token"], outcome, call.body)


@api.post("/api/v1/callbacks/{token}/success", role="operator", body=CallbackBody, response=CallbackAck)
async def callback_success(call: Call) -> Any:
    """Complete a callback task with `output`."""
    return await _callback(call, "success")


@api.post("/api/v1/callbacks/{token}/failure", role="operator", body=CallbackBody, response=CallbackAck)
async def callback_failure(call: Call) -> Any:
    """Fail a callback task with `error` and `cause`."""
    return await _callback(call, "failure")


@api.post("/api/v1/callbacks/{token}/heartbeat", role="operator", body=CallbackBody, response=CallbackAck)
async def callback_heartbeat(call: Call) -> Any:
    """Tell a callback task with `heartbeat_seconds` that the work is still going."""
    return await _callback(call, "heartbeat")
