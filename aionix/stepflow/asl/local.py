"""Run an ASL definition in-process on the real StepFlow engine, with a scaled clock.

Used by the conformance harness and by `aio wf test`: the interpreter is the engine itself
(`aionix.stepflow.engine.Engine`); only its host — where checkpoints go — is an in-memory one,
and time runs `scale` times faster so that Wait states and timeouts of minutes take
milliseconds while keeping their order. A mock config, when given, answers AWS service
integrations through the bus.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aionix import jsonutil
from aionix.bus import Bus, CallContext
from aionix.errors import ValidationFailed
from aionix.stepflow.asl.compiler import Options, compile_asl
from aionix.stepflow.asl.mock import MOCK_KIND, MockResponder
from aionix.stepflow.asl.validate import validate
from aionix.stepflow.engine import Engine, Failure, Run, new_root

TENANT = "local"


class ScaledClock:
    """Wall time that runs `scale` times faster from the moment it is made."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.base = time.time()
        self.origin = time.monotonic()

    def __call__(self) -> float:
        return self.base + (time.monotonic() - self.origin) * self.scale


class ScaledTimers:
    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock

    async def sleep_until(self, due: float) -> None:
        while True:
            left = due - self.clock()
            if left <= 0:
                return
            await asyncio.sleep(left / self.clock.scale)


@dataclass
class Outcome:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.status == "SUCCEEDED":
            out["output"] = self.output
        else:
            if self.error is not None:
                out["error"] = self.error
            if self.cause is not None:
                out["cause"] = self.cause
        return out


class _Host:
    """The engine's host, in memory: keeps the events, resolves nothing from a store."""

    def __init__(self, bus: Bus, clock: ScaledClock) -> None:
        self.bus = bus
        self.timers = ScaledTimers(clock)
        self.events: list[dict[str, Any]] = []

    async def persist(self, run: Run, events: list[Any], adds: Any, dels: Any, tokens: Any) -> None:
        for _, seq, ts, type_, state, frame, detail in events:
            detail = None if detail is None else jsonutil.loads(detail)
            self.events.append({"seq": seq, "ts": ts, "type": type_, "state": state, "frame": frame, "detail": detail})

    async def finished(self, run: Run) -> None:
        return None

    async def broken(self, run: Run, exc: BaseException) -> None:
        raise exc  # an in-memory host cannot fail to checkpoint; if it did, say so loudly

    def register_secret(self, run: Run, value: Any) -> None:
        return None

    async def token_outcome(self, token: str | None) -> dict[str, Any] | None:
        return None

    async def run_child(self, parent: Run, action: str, parameters: Any, ctx: CallContext) -> Any:
        raise Failure("States.Runtime", f"child workflows ({action}) do not run in a local test")


async def run_definition(
    definition: dict[str, Any],
    input: Any,
    *,
    scale: float = 1000.0,
    mocks: MockResponder | None = None,
    bus: Bus | None = None,
    name: str = "local",
    timeout: float = 60.0,
) -> Outcome:
    """Compile and run `definition` to its end; the history comes back in `events`."""
    bus = bus or Bus()
    options = Options()
    if mocks is not None:
        bus.register_kind(MOCK_KIND, mocks.execute)
        options.mock_target = MOCK_KIND
    report = validate(definition, mock_target=options.mock_target)
    if not report.valid:
        first = report.errors[0]
        raise ValidationFailed(
            f"definition{first.pointer}: {first.message}",
            details=[{"field": f"definition{e.pointer}", "message": e.message} for e in report.errors],
        )
    plan = compile_asl(definition, options)
    clock = ScaledClock(scale)
    host = _Host(bus, clock)
    engine = Engine(host, clock=clock)  # type: ignore[arg-type]
    now = clock()
    run = Run(
        id=f"{int(time.time() * 1000):012x}local",
        tenant=TENANT,
        workflow=name,
        version=1,
        plan=plan,
        root=new_root(plan, input),
        input=input,
        started_at=now,
        trace_id="local",
        next_seq=1,
    )
    if plan.root.timeout_seconds:
        # the machine timeout runs on the same (scaled) clock as the waits
        run.deadline = clock() + plan.root.timeout_seconds / scale
    run.event("ExecutionStarted", detail={"input": input, "version": 1, "parent_id": None})
    await asyncio.wait_for(engine.run(run), timeout)
    error = run.error or {}
    return Outcome(
        run.status,
        run.output,
        error.get("error"),
        error.get("cause"),
        host.events,
        run.started_at,
    )


def test_definition(
    definition: Any,
    input: Any = None,
    *,
    mock_config: dict[str, Any] | None = None,
    test_case: str | None = None,
    state_machine: str | None = None,
    scale: float = 1000.0,
) -> tuple[Outcome, dict[str, Any]]:
    """`aio wf test`: run an ASL definition offline, AWS service integrations answered by the
    mock config's test case; returns the outcome and the history in AWS shape."""
    from aionix.errors import field_error
    from aionix.stepflow.asl import is_asl
    from aionix.stepflow.asl.history import format_history

    if not is_asl(definition):
        raise field_error("definition", "aio wf test runs Amazon States Language definitions (StartAt/States)")
    mocks = None
    if mock_config is not None:
        if test_case is None:
            raise field_error("test_case", "--test-case names the mock config's test case to run")
        mocks = MockResponder(mock_config, state_machine, test_case)
    elif test_case is not None:
        raise field_error("mock_config", "--test-case needs --mock-config")
    outcome = asyncio.run(
        run_definition(definition, input, scale=scale, mocks=mocks, name=state_machine or "local", timeout=600)
    )
    return outcome, format_history(definition, outcome.events, workflow=state_machine or "local")
