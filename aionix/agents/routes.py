"""HTTP API of the machine-native features: capabilities, simulation, the Copilot."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aionix.agents.simulate import check_simulate_body
from aionix.api.endpoint import Api, Call
from aionix.trn import validate_name

api = Api("runtime")
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
STATE_NAME = r"^[^\s/][^/]{0,127}$"


class Latency(BaseModel):
    p50: float | None = None
    p95: float | None = None
    samples: int = 0


class Skill(BaseModel):
    model_config = ConfigDict(extra="allow")

    skill: str
    cost_usd: float | None = None
    cost_source: str | None = None
    latency_ms: Latency
    rate_limits: dict[str, Any]
    permissions: dict[str, Any]


class Capabilities(BaseModel):
    tenant: str
    connectors: list[Skill]
    functions: list[Skill]
    actions: list[Skill]
    intents: list[Skill]
    workflows: list[Skill]


class SkillStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill: str = Field(..., min_length=1, max_length=300, description="a skill id from the capabilities")
    count: int = Field(1, ge=1, le=1_000_000, description="how many calls")


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str | None = Field(None, pattern=NAME, description="a stored workflow's name")
    version: int | None = Field(None, ge=1, le=2**53, description="its version (default: the latest)")
    definition: dict[str, Any] | None = Field(None, description="an inline definition (DSL or ASL)")
    input: Any = Field(None, description="the execution input")
    steps: list[SkillStep] | None = Field(None, max_length=1000, description="or a plain list of skill steps")
    budget_usd: float | None = Field(None, ge=0, le=1_000_000_000)


class DurationEstimate(BaseModel):
    p50: float | None = None
    p95: float | None = None


class StepEstimate(BaseModel):
    state: str
    skill: str
    cost: float
    latency: Latency
    probability: float


class Problem(BaseModel):
    kind: str
    pointer: str
    message: str


class Risk(BaseModel):
    rule: str
    pointer: str
    message: str


class Simulation(BaseModel):
    feasible: bool
    problems: list[Problem]
    estimated_cost_usd: float
    estimated_duration_ms: DurationEstimate
    duration_source: Literal["history", "model"]
    step_estimates: list[StepEstimate]
    budget_usd: float | None = None
    budget_sufficient: bool | None = None
    budget_remaining_usd: float | None = None
    risks: list[Risk]


class OpenSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(..., pattern=NAME)


class CopilotOperation(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal[
        "create_node",
        "update_node",
        "delete_node",
        "connect_nodes",
        "validate_graph",
        "simulate_execution",
        "suggest_optimization",
        "estimate_cost",
    ]
    name: str | None = Field(None, pattern=STATE_NAME, description="the state (create/update/delete_node)")
    state: dict[str, Any] | None = Field(None, description="create_node: the new state")
    after: str | None = Field(None, pattern=STATE_NAME, description="create_node: insert after this state")
    patch: dict[str, Any] | None = Field(None, description="update_node: fields to set (null removes one)")
    relink_to: str | None = Field(None, pattern=STATE_NAME, description="delete_node: where its predecessors go")
    from_: str | None = Field(None, alias="from", pattern=STATE_NAME, description="connect_nodes: source state")
    to: str | None = Field(None, pattern=STATE_NAME, description="connect_nodes: target state")
    via: Literal["next", "default", "catch", "route"] = "next"
    errors: list[str] | None = Field(None, max_length=50, description="connect_nodes via catch: error names")
    condition: str | None = Field(None, max_length=10_000, description="connect_nodes via route: the condition")
    input: Any = Field(None, description="simulate_execution/estimate_cost: the input")
    budget_usd: float | None = Field(None, ge=0, le=1_000_000_000)


class Validation(BaseModel):
    valid: bool
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]] = []


class CopilotSession(BaseModel):
    session_id: str
    workflow: str
    base_version: int
    status: Literal["open", "applied"]
    draft: dict[str, Any]
    validation: Validation
    operations: list[dict[str, Any]]
    opened_by: str
    applied_version: int | None = None
    applied_by: str | None = None
    published: dict[str, Any] | None = None


class OperationResult(BaseModel):
    session_id: str
    operation: str
    draft: dict[str, Any]
    validation: Validation
    diff: list[dict[str, Any]]
    result: Any = None


def _svc(call: Call) -> Any:
    return call.service("agents")


@api.get("/api/v1/runtime/capabilities", role="viewer", response=Capabilities)
async def runtime_capabilities(call: Call) -> Any:
    """Every skill the tenant can use: connector operations, functions, saved actions, intents, workflows."""
    return await _svc(call).skills.capabilities(call.tenant)


@api.post("/api/v1/runtime/simulate", role="viewer", body=SimulateRequest, response=Simulation, audit=False)
async def runtime_simulate(call: Call) -> Any:
    """Estimate a run (feasibility, cost, duration p50/p95, risks) without running anything."""
    body: SimulateRequest = call.body
    check_simulate_body(body)
    return await _svc(call).simulator.simulate(call.principal, body)


@api.post("/api/v1/copilot/sessions", role="viewer", body=OpenSession, response=CopilotSession, status=201)
async def open_copilot_session(call: Call) -> Any:
    """Open a Copilot session: a draft of the workflow's latest version."""
    result = await _svc(call).copilot.open(call.principal, validate_name(call.body.workflow))
    await call.rt.audit(
        call.request,
        call.principal,
        "copilot open",
        status=201,
        resource=result["session_id"],
        details={"workflow": call.body.workflow},
    )
    return result


@api.get("/api/v1/copilot/sessions/{id}", role="viewer", response=CopilotSession)
async def get_copilot_session(call: Call) -> Any:
    """A Copilot session: its draft, validation and operations."""
    copilot = _svc(call).copilot
    return await copilot.view(copilot.get(call.tenant, call.path["id"]))


@api.post(
    "/api/v1/copilot/sessions/{id}/operations",
    role="viewer",
    body=CopilotOperation,
    response=OperationResult,
    idempotent=False,
)
async def copilot_operation(call: Call) -> Any:
    """Run one operation on the draft: the new draft, its validation and the JSON diff."""
    body: CopilotOperation = call.body
    try:
        result = await _svc(call).copilot.operate(call.principal, call.path["id"], body)
    except Exception as exc:
        status = getattr(exc, "status", 500)
        await call.rt.audit(call.request, call.principal, f"copilot {body.op}", status=status, resource=call.path["id"])
        raise
    await call.rt.audit(
        call.request,
        call.principal,
        f"copilot {body.op}",
        status=200,
        resource=call.path["id"],
        details={"diff": result["diff"]},
    )
    return result


@api.post("/api/v1/copilot/sessions/{id}/apply", role="operator", response=CopilotSession, idempotent=False)
async def apply_copilot_session(call: Call) -> Any:
    """Publish the draft as a new workflow version (an operator key that did not edit the draft)."""
    try:
        result = await _svc(call).copilot.apply(call.principal, call.path["id"])
    except Exception as exc:
        await call.rt.audit(
            call.request, call.principal, "copilot apply", status=getattr(exc, "status", 500), resource=call.path["id"]
        )
        raise
    await call.rt.audit(
        call.request,
        call.principal,
        "copilot apply",
        status=200,
        resource=call.path["id"],
        details={"version": result["applied_version"]},
    )
    return result
