"""The StepFlow DSL (DESIGN.md §4) as pydantic models, and the API's request/response types.

The DSL models are the JSON Schema that `GET /api/v1/workflows/schema` exports; graph rules
(reachability, `next` targets, ends) and expressions are checked by `validate`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retrier(_Strict):
    errors: list[str] = Field(..., min_length=1, description="error names this retrier handles (States.ALL for any)")
    interval_seconds: float = Field(1.0, ge=0, le=31_536_000)
    max_attempts: int = Field(3, ge=0, le=1000, description="retries after the first attempt")
    backoff_rate: float = Field(2.0, ge=1.0, le=100)
    max_delay_seconds: float | None = Field(None, gt=0, le=31_536_000)
    jitter: Literal["none", "full"] = "none"


class Catcher(_Strict):
    errors: list[str] = Field(..., min_length=1)
    next: str
    output: Any = Field(None, description="output of the failed state given to `next`; default {error, cause}")
    assign: dict[str, Any] | None = None


class Output(_Strict):
    expression: Any


class _State(_Strict):
    comment: str | None = None
    next: str | None = None
    end: bool | None = None
    output: Output | None = None
    assign: dict[str, Any] | None = None
    timeout_seconds: float | None = Field(None, gt=0, le=31_536_000)


class _Recoverable(_State):
    retry: list[Retrier] = []
    catch: list[Catcher] = []


class TaskState(_Recoverable):
    type: Literal["task"]
    action: str = Field(
        ..., min_length=1, description="connector kind, action/function TRN or trn:stepflow:…:template/x"
    )
    parameters: Any = None
    mode: Literal["sync", "callback"] = "sync"
    heartbeat_seconds: float | None = Field(None, gt=0, le=31_536_000)


class Branch(_Strict):
    entry: str
    states: dict[str, State] = Field(..., min_length=1)


class ParallelState(_Recoverable):
    type: Literal["parallel"]
    branches: list[Branch] = Field(..., description="at least one branch")


class MapState(_Recoverable):
    type: Literal["map"]
    items: Any = Field(None, description="expression giving the list (default: the input)")
    processor: Branch | None = None
    item: Any = Field(None, description="input of each item run (default: the item); sees context.item/index")
    max_concurrency: int = Field(0, ge=0, le=10_000, description="0: no limit")
    tolerated_failure_count: int | None = Field(None, ge=0)
    tolerated_failure_percentage: float | None = Field(None, ge=0, le=100)


class Route(_Strict):
    condition: Any
    next: str
    output: Output | None = None
    assign: dict[str, Any] | None = None


class RouterState(_State):
    type: Literal["router"]
    routes: list[Route] = Field(..., min_length=1)
    default: str | None = None


class WaitState(_State):
    type: Literal["wait"]
    seconds: Any = None
    timestamp: Any = None


class SetState(_State):
    type: Literal["set"]
    value: Any = None


class SucceedState(_State):
    type: Literal["succeed"]


class FailState(_State):
    type: Literal["fail"]
    error: Any = "States.Fail"
    cause: Any = None


State = Annotated[
    TaskState | ParallelState | MapState | RouterState | WaitState | SetState | SucceedState | FailState,
    Field(discriminator="type"),
]
Branch.model_rebuild()


class Workflow(_Strict):
    """A StepFlow definition (DSL version 1)."""

    entry: str
    states: dict[str, State] = Field(..., min_length=1)
    timeout_seconds: float | None = Field(None, gt=0, le=31_536_000)
    budget_usd: float | None = Field(
        None, gt=0, le=1_000_000, description="most the execution's AI steps may spend together; then Ai.BudgetExceeded"
    )
    comment: str | None = None
    version: Literal[1, "1"] | None = None


def dsl_schema() -> dict[str, Any]:
    """The JSON Schema of the DSL (for the Studio and editors)."""
    schema = Workflow.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "StepFlow workflow (DSL v1)"
    return schema


ASL_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
ASL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ASL state machine",
    "description": "Amazon States Language (recognized by StartAt and States)",
    "required": ["StartAt", "States"],
    "properties": {
        "StartAt": {"type": "string", "minLength": 1},
        "States": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["Type"],
                "properties": {"Type": {"enum": list(ASL_TYPES)}},
            },
        },
        "Comment": {"type": "string"},
    },
}


class _DefinitionSchema:
    """Documents a definition as what the server validates: the DSL or an ASL state machine
    (it stays a plain dict at runtime; `validate` reports every problem with a JSON pointer)."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"oneOf": [handler(Workflow.__pydantic_core_schema__), ASL_SCHEMA]}


Definition = Annotated[dict[str, Any], _DefinitionSchema]


# ---------------------------------------------------------------- API types
class Problem(BaseModel):
    pointer: str
    message: str
    severity: Literal["error", "warning"] = "error"
    expression: str | None = None
    position: int | None = None


class ValidationReport(BaseModel):
    valid: bool
    errors: list[Problem]
    warnings: list[Problem] = []


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Definition


class CreateTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME_PATTERN)
    definition: Definition
    description: str | None = Field(None, max_length=2000)


class UpdateTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Definition
    description: str | None = Field(None, max_length=2000)


class TemplateInfo(BaseModel):
    name: str
    trn: str
    version: int
    description: str | None = None
    created_at: float
    updated_at: float
    definition: dict[str, Any] | None = None


class TemplateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, description="a version (default: the latest)")


class TemplateVersion(BaseModel):
    version: int
    created_at: float
    description: str | None = None


class StartExecution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = None
    mode: Literal["sync", "async"] = "async"
    version: int | None = Field(None, ge=1, description="default: the latest")
    wait_seconds: float | None = Field(None, gt=0, le=300, description="sync: how long to wait before 202")


class ErrorInfo(BaseModel):
    error: str | None = Field(None, description="absent when a Fail state gave only a Cause")
    cause: str | None = None


class Usage(BaseModel):
    tokens: int = 0
    cost_usd: float = 0.0


class Envelope(BaseModel):
    execution_id: str
    trn: str
    workflow: str
    version: int
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    input: Any = None
    output: Any = None
    error: ErrorInfo | None = None
    started_at: float
    stopped_at: float | None = None
    duration_ms: float | None = None
    trace_id: str | None = None
    usage: Usage = Usage()
    redrive_count: int = 0


class ExecutionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str | None = Field(None, pattern=NAME_PATTERN)
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] | None = None
    since: float | None = Field(None, ge=0, description="started at or after (Unix time)")
    until: float | None = Field(None, ge=0, description="started before (Unix time)")
    limit: int | None = Field(None, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=512)


class HistoryEvent(BaseModel):
    seq: int
    ts: float
    type: str
    state: str | None = None
    frame: str | None = None
    detail: Any = None


class AslHistory(BaseModel):
    """`?format=asl`: every event shaped like Step Functions' `GetExecutionHistory`."""

    events: list[dict[str, Any]]


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(0, ge=0, description="events with seq greater than this")
    limit: int | None = Field(None, ge=1, le=10_000)
    format: Literal["native", "asl"] = Field(
        "native", description="asl: every event shaped like Step Functions' GetExecutionHistory ({events})"
    )


class CallbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: Any = None
    error: str | None = Field(None, max_length=256)
    cause: str | None = Field(None, max_length=32_768)


class CallbackAck(BaseModel):
    token: str
    accepted: bool
