"""DSL → executable plan: plain dataclasses with every expression compiled once.

The plan is what the engine runs; the native DSL and (later) Amazon States Language both
compile into it. ASL's input/output processing (InputPath, ResultSelector, ResultPath,
OutputPath, JSONPath parameters) fits the optional hooks: `input_hook` shapes the state's
effective input, `result_hook(input, result)` and `output_hook` shape what follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from aionix import expr
from aionix.expr import References, Template
from aionix.stepflow.models import Branch, Workflow

# Error names (Amazon States Language).
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
QUERY_EVALUATION = "States.QueryEvaluationError"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
EXCEED_TOLERATED = "States.ExceedToleratedFailureThreshold"
RESULT_TOO_LARGE = "States.DataLimitExceeded"
#: errors that `States.ALL` does not catch or retry (as in Step Functions).
TERMINAL_ERRORS = frozenset({RUNTIME, RESULT_TOO_LARGE})

Hook = Callable[..., Any]


@dataclass(slots=True)
class RetryPlan:
    errors: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: str = "none"

    def matches(self, error: str) -> bool:
        return _matches(self.errors, error)

    def delay(self, retry_number: int, random: Callable[[], float]) -> float:
        """Seconds before retry `retry_number` (1-based)."""
        delay = self.interval_seconds * self.backoff_rate ** (retry_number - 1)
        if self.max_delay_seconds is not None:
            delay = min(delay, self.max_delay_seconds)
        if self.jitter == "full":
            delay = delay * random()
        return delay


@dataclass(slots=True)
class CatchPlan:
    errors: tuple[str, ...]
    next: str
    output: Template | None = None
    assign: Template | None = None

    def matches(self, error: str) -> bool:
        return _matches(self.errors, error)


def _matches(names: tuple[str, ...], error: str) -> bool:
    if error in names:
        return True
    return ALL in names and error not in TERMINAL_ERRORS


#: built-in actions that only compute (no I/O, no effect outside the engine): a `transform`
#: is a JSONata expression, as pure as a `set` state's value (Step Functions' Pass)
PURE_ACTIONS = frozenset({"transform"})


@dataclass(slots=True)
class RoutePlan:
    condition: Template
    next: str
    output: Template | None = None
    assign: Template | None = None


@dataclass(slots=True)
class StatePlan:
    name: str
    type: str
    next: str | None = None
    end: bool = False
    output: Template | None = None
    assign: Template | None = None
    timeout_seconds: float | None = None
    retry: list[RetryPlan] = field(default_factory=list)
    catch: list[CatchPlan] = field(default_factory=list)
    # task
    action: Template | None = None
    parameters: Template | None = None
    mode: str = "sync"
    heartbeat_seconds: float | None = None
    # evaluated when the task starts, over the static values when set (ASL TimeoutSecondsPath,
    # HeartbeatSecondsPath, JSONata TimeoutSeconds/HeartbeatSeconds)
    timeout_template: Template | None = None
    heartbeat_template: Template | None = None
    # parallel / map
    branches: list[Machine] = field(default_factory=list)
    processor: Machine | None = None
    items: Template | None = None
    item: Template | None = None
    max_concurrency: int = 0
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None
    # evaluated when the map starts, over the static values when set (ASL MaxConcurrencyPath,
    # ToleratedFailure…Path, JSONata MaxConcurrency/ToleratedFailure… reading the execution)
    max_concurrency_template: Template | None = None
    tolerated_count_template: Template | None = None
    tolerated_percentage_template: Template | None = None
    # a distributed Map (ASL ProcessorConfig.Mode DISTRIBUTED): `asl.distributed.Spec`
    distributed: Any = None
    # router
    routes: list[RoutePlan] = field(default_factory=list)
    default: str | None = None
    # wait
    seconds: Template | None = None
    timestamp: Template | None = None
    # set / fail
    value: Template | None = None
    error: Template | None = None
    cause: Template | None = None
    # ASL input/output processing hooks (None: the native DSL semantics)
    input_hook: Hook | None = None
    result_hook: Hook | None = None
    output_hook: Hook | None = None
    #: every `$secret`/`$param` that any expression of this state reads (set by `Plan`): the
    #: engine resolves them all when it enters the state, before evaluating anything
    references: References = field(default_factory=References)
    #: a `set` state with nothing but its value (`engine._plain_set`; None: not looked at yet)
    plain: bool | None = None

    @property
    def acts(self) -> bool:
        """True when entering the state has an effect outside the engine (a checkpoint first)."""
        return self.type in {"task", "wait", "parallel", "map"}

    @property
    def pure_task(self) -> bool:
        """A task calling a built-in action without side effects (`PURE_ACTIONS`, a literal
        action, not a callback): like a `set` state it needs no checkpoint before its call;
        after a crash it is simply called again (with the same idempotency key)."""
        if self.type != "task" or self.mode == "callback" or self.action is None or not self.action.is_static:
            return False
        return self.action.evaluate() in PURE_ACTIONS


@dataclass(slots=True)
class Machine:
    """One state graph: the workflow itself, a parallel branch or a map processor."""

    path: str
    entry: str
    states: dict[str, StatePlan]
    timeout_seconds: float | None = None


@dataclass(slots=True)
class Plan:
    """A compiled workflow version; `machines` indexes every graph by its path."""

    root: Machine
    machines: dict[str, Machine]
    #: the workflow's `budget_usd`: what its AI steps may spend together (given to them in the
    #: bus context as `extra["budget_usd"]`)
    budget_usd: float | None = None

    def __post_init__(self) -> None:
        for machine in self.machines.values():
            for state in machine.states.values():
                state.references = collect_references(state)

    def machine(self, path: str) -> Machine:
        return self.machines[path]


def templates(value: Any) -> list[Any]:
    """Every compiled expression (a `Template`, or anything evaluable that carries `references`,
    such as an ASL hook) held by a state plan, found by walking its fields, its routes and
    catchers — not from a list of field names, so a field added later is covered. Nested
    graphs (parallel branches, map processors) are not entered: their states are plans of
    their own."""
    found: list[Any] = []

    def walk(v: Any) -> None:
        if v is None or isinstance(v, (str, int, float, bool, Machine)):
            return
        if isinstance(getattr(v, "references", None), References) and callable(getattr(v, "evaluate", None)):
            found.append(v)
        elif is_dataclass(v) and not isinstance(v, type):
            for f in fields(v):
                if f.name != "references":
                    walk(getattr(v, f.name))
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)

    walk(value)
    return found


def collect_references(state: StatePlan) -> References:
    """The union of the `$secret`/`$param` references of every expression of `state`."""
    refs = References()
    for template in templates(state):
        refs = refs | template.references
    return refs


def _t(value: Any, pointer: str) -> Template | None:
    return None if value is None else expr.compile_template(value, pointer=pointer)


def compile_workflow(workflow: Workflow | dict[str, Any]) -> Plan:
    """Compile a validated definition (model or dict; an Amazon States Language dict too)."""
    if isinstance(workflow, dict):
        from aionix.stepflow.asl import is_asl

        if is_asl(workflow):
            from aionix.stepflow.asl.compiler import compile_asl

            return compile_asl(workflow)
        workflow = Workflow.model_validate(workflow)
    machines: dict[str, Machine] = {}
    root = _machine("", workflow.entry, workflow.states, machines, workflow.timeout_seconds)
    return Plan(root, machines, budget_usd=workflow.budget_usd)


def _machine(
    path: str, entry: str, states: dict[str, Any], machines: dict[str, Machine], timeout: float | None = None
) -> Machine:
    machine = Machine(path, entry, {}, timeout)
    machines[path] = machine
    base = f"{path}/states" if path else "/states"
    for name, s in states.items():
        p = f"{base}/{name}"
        plan = StatePlan(
            name=name,
            type=s.type,
            next=s.next,
            end=bool(s.end),
            output=_t(s.output.expression, p + "/output/expression") if s.output is not None else None,
            assign=_t(s.assign, p + "/assign"),
            timeout_seconds=s.timeout_seconds,
        )
        if hasattr(s, "retry"):
            plan.retry = [
                RetryPlan(
                    tuple(r.errors), r.interval_seconds, r.max_attempts, r.backoff_rate, r.max_delay_seconds, r.jitter
                )
                for r in s.retry
            ]
            plan.catch = [
                CatchPlan(
                    tuple(c.errors),
                    c.next,
                    _t(c.output, f"{p}/catch/{i}/output"),
                    _t(c.assign, f"{p}/catch/{i}/assign"),
                )
                for i, c in enumerate(s.catch)
            ]
        if s.type == "task":
            plan.action = _t(s.action, p + "/action")
            plan.parameters = _t(s.parameters, p + "/parameters")
            plan.mode = s.mode
            plan.heartbeat_seconds = s.heartbeat_seconds
        elif s.type == "parallel":
            plan.branches = [_branch(f"{path}/{name}/{i}", b, machines) for i, b in enumerate(s.branches)]
        elif s.type == "map":
            assert s.processor is not None
            plan.processor = _branch(f"{path}/{name}/processor", s.processor, machines)
            plan.items = _t(s.items, p + "/items")
            plan.item = _t(s.item, p + "/item")
            plan.max_concurrency = s.max_concurrency
            plan.tolerated_failure_count = s.tolerated_failure_count
            plan.tolerated_failure_percentage = s.tolerated_failure_percentage
        elif s.type == "router":
            plan.routes = [
                RoutePlan(
                    _t(r.condition, f"{p}/routes/{i}/condition"),  # type: ignore[arg-type]
                    r.next,
                    _t(r.output.expression, f"{p}/routes/{i}/output") if r.output is not None else None,
                    _t(r.assign, f"{p}/routes/{i}/assign"),
                )
                for i, r in enumerate(s.routes)
            ]
            plan.default = s.default
        elif s.type == "wait":
            plan.seconds = _t(s.seconds, p + "/seconds")
            plan.timestamp = _t(s.timestamp, p + "/timestamp")
        elif s.type == "set":
            plan.value = _t(s.value, p + "/value")
        elif s.type == "fail":
            plan.error = _t(s.error, p + "/error")
            plan.cause = _t(s.cause, p + "/cause")
        machine.states[name] = plan
    return machine


def _branch(path: str, branch: Branch, machines: dict[str, Machine]) -> Machine:
    return _machine(path, branch.entry, branch.states, machines)
