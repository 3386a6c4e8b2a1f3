"""The interpreter: walks a compiled plan for one execution, checkpointing as it goes.

An execution is a tree of frames. A frame runs one state graph (the workflow, a parallel
branch, a map item) and remembers its current state, that state's input, its own variables
and its phase inside the state (entered, task in flight, waiting, children running). Every
transition appends history events; `Run.checkpoint()` commits the events, the frame tree
(the snapshot) and the timer/token rows in **one** transaction. A checkpoint is taken before
anything acts outside the engine (a task call, a wait, children starting) and at the end, so
consecutive pure states (set, router, succeed…, and tasks of a pure built-in action such as
`transform`) cost no commit of their own. After a crash
the last snapshot is the resume point: pure states are re-run identically and at most the
in-flight task is called again, with the same `execution_id:state:attempt` key.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets as pysecrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aionix import expr, jsonutil, telemetry
from aionix.bus import BusError, CallContext, TargetTimeout
from aionix.errors import AionixError
from aionix.expr import UNDEFINED, Template
from aionix.loops import running_loop
from aionix.redact import SecretSet
from aionix.stepflow import compile as plan_mod
from aionix.stepflow.compile import Machine, Plan, StatePlan
from aionix.stepflow.items import ItemLog

if TYPE_CHECKING:
    from aionix.stepflow.service import StepFlowService

log = logging.getLogger("aionix.stepflow")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# events written even when the history is full: how an execution ends, resumes or is redriven
_ALWAYS_RECORDED = frozenset(
    {
        "ExecutionStarted",
        "ExecutionSucceeded",
        "ExecutionFailed",
        "ExecutionTimedOut",
        "ExecutionAborted",
        "ExecutionResumed",
        "ExecutionRedriven",
    }
)
# the loop must serve other requests while a big map is being scheduled: it yields this often
_YIELD_SECONDS = 0.005
# ... and commits once this many events are pending (between two states of a frame)
_FLUSH_EVENTS = 1000


class Failure(Exception):
    """A state failed with a States-style error name and cause."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.error, "cause": self.cause}


@dataclass(slots=True)
class Frame:
    id: str
    machine: str
    state: str
    input: Any
    vars: dict[str, Any] = field(default_factory=dict)
    status: str = "running"  # running | succeeded | failed | aborted
    phase: str = "enter"  # enter | task | callback | wait | retry | children
    attempts: dict[str, int] = field(default_factory=dict)
    retries: list[int] = field(default_factory=list)
    due: float | None = None
    token: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    children: list[Frame] | None = None
    index: int | None = None
    item: Any = None
    prefix: str = ""
    parent: Frame | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "m": self.machine,
            "s": self.state,
            "in": self.input,
            "st": self.status,
            "ph": self.phase,
        }
        if self.vars:
            out["v"] = self.vars
        if self.attempts:
            out["a"] = self.attempts
        if self.retries:
            out["r"] = self.retries
        if self.due is not None:
            out["due"] = self.due
        if self.token is not None:
            out["tok"] = self.token
        if self.status == "succeeded":
            out["out"] = self.output
        if self.error is not None:
            out["err"] = self.error
        if self.children is not None:
            out["ch"] = [c.to_dict() for c in self.children]
        if self.index is not None:
            out["i"] = self.index
            out["it"] = self.item
        if self.prefix:
            out["p"] = self.prefix
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], parent: Frame | None = None) -> Frame:
        f = cls(
            id=d["id"],
            machine=d["m"],
            state=d["s"],
            input=d.get("in"),
            vars=d.get("v") or {},
            status=d["st"],
            phase=d["ph"],
            attempts=d.get("a") or {},
            retries=d.get("r") or [],
            due=d.get("due"),
            token=d.get("tok"),
            output=d.get("out"),
            error=d.get("err"),
            index=d.get("i"),
            item=d.get("it"),
            prefix=d.get("p", ""),
            parent=parent,
        )
        if "ch" in d:
            f.children = [cls.from_dict(c, f) for c in d["ch"]]
        return f

    def all_vars(self) -> dict[str, Any]:
        """Outer scopes' variables (read-only here) overlaid by this frame's own."""
        if self.parent is None:
            return self.vars
        return {**self.parent.all_vars(), **self.vars}

    def walk(self):
        yield self
        for child in self.children or ():
            yield from child.walk()


@dataclass(slots=True)
class Run:
    """One execution in memory: its frame tree, pending events and checkpoint state. (Slotted:
    its four dozen fields would make a dict of their own beside each instance.)"""

    id: str
    tenant: str
    workflow: str
    version: int
    plan: Plan
    root: Frame
    input: Any
    started_at: float
    trace_id: str
    next_seq: int
    status: str = "RUNNING"
    output: Any = None
    error: dict[str, Any] | None = None
    stopped_at: float | None = None
    redrive_count: int = 0
    deadline: float | None = None
    parent_id: str | None = None
    #: history rows not yet written: (execution id, seq, ts, type, state, frame, detail JSON)
    pending: list[tuple[str, int, float, str, str | None, str | None, str | None]] = field(default_factory=list)
    timer_adds: dict[str, float] = field(default_factory=dict)
    timer_dels: set[str] = field(default_factory=set)
    #: frames with a timer row in the store (None: not known, a run loaded from the store): a
    #: checkpoint deletes only those, not a row per frame that never waited
    stored_timers: set[str] | None = field(default_factory=set)
    #: whether map/parallel item rows may be in the store (a loaded run: maybe)
    stored_items: bool = False
    #: inserted by this process, and every checkpoint since committed: with no item transaction
    #: (`stored_items`), the stored history ends where this run's pending events begin
    gapless: bool = False
    token_adds: list[tuple[str, str]] = field(default_factory=list)
    #: every value CredVault resolved for this run (its redaction set, see aionix/redact.py)
    redaction: SecretSet = field(default_factory=SecretSet)
    #: the principal that started it (an API caller): its policies apply to the run's bus calls.
    #: Kept in the checkpoint's snapshot (identifiers only) and restored when the run resumes.
    on_behalf_of: Any = None
    changes: int = 0
    durable: int = 0
    flushing: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: set by the next checkpoint, for whoever waits for one (made by the first to wait)
    updated: asyncio.Event | None = None
    callbacks: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    heartbeats: dict[str, asyncio.Event] = field(default_factory=dict)
    abort_reason: str | None = None
    fail_reason: Failure | None = None
    inserted: bool = False
    #: the lease epoch this node claimed the execution under (aionix/cluster.py): every write
    #: for the run checks it, so a node that lost the lease cannot write over the new owner
    epoch: int = 1
    #: set when this node lost the run's lease: the run stops without writing anything more
    fenced: bool = False
    idempotency_key: str | None = None
    #: the latest version this node remembered and started it on: its first checkpoint inserts
    #: the row only while that still is the template's latest (`StaleHead` otherwise)
    head_check: int | None = None
    first_durable: asyncio.Future[None] = field(default_factory=lambda: running_loop().create_future())
    params: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    #: `[stepflow] max_history_events` (0: no limit): the event that would reach it fails the
    #: execution with `States.Runtime` instead of being written (`history_full`)
    max_events: int = 0
    history_full: Failure | None = None
    #: map/parallel frames (`<frame>.<state>`) that made new children since the last checkpoint:
    #: that checkpoint drops their children's older item rows (aionix/stepflow/items.py)
    item_scopes: set[str] = field(default_factory=set)
    #: a redrive made it RUNNING again: its next checkpoint checks the tenant's quota of
    #: concurrent executions
    quota_recheck: bool = False

    @property
    def caller_trn(self) -> str:
        """Who this run's bus calls are made for (CredVault checks it against `readers`)."""
        return f"trn:stepflow:{self.tenant}:template/{self.workflow}"

    def event(self, type: str, state: str | None = None, frame: str | None = None, detail: Any = None) -> None:
        """Record an event; past the history limit, raise `Failure(States.Runtime)` instead
        (enforced before anything is written, so the history never grows beyond the limit; the
        execution's own end still fits)."""
        if self.max_events and self.next_seq >= self.max_events and type not in _ALWAYS_RECORDED:
            if self.history_full is None:
                self.history_full = Failure(
                    plan_mod.RUNTIME,
                    f"the execution reached its limit of {self.max_events} history events "
                    f"(stepflow.max_history_events)",
                )
            raise Failure(self.history_full.error, self.history_full.cause)
        if detail is not None:
            # written as JSON now (a state's output arrives so already, from its size check):
            # the history row as it will be stored, less the redaction of secrets resolved since
            detail = (detail if detail.__class__ is bytes else jsonutil.dumps(detail)).decode()
        self.pending.append((self.id, self.next_seq, time.time(), type, state, frame, detail))
        self.next_seq += 1
        self.changes += 1


class Engine:
    """Runs executions; `host` (the service) persists checkpoints and starts child executions."""

    #: (state type, seconds from entering to leaving or failing): the host sets the metrics' hook
    observe_state: Callable[[str, float], None] = staticmethod(lambda kind, seconds: None)

    def __init__(
        self,
        host: StepFlowService,
        *,
        payload_max_bytes: int = 262_144,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        max_map_items: int = 10_000,
        max_map_concurrency: int = 256,
    ) -> None:
        self.host = host
        self.max_map_items = max_map_items
        self.max_map_concurrency = max_map_concurrency
        self.bus = host.bus
        self.timers = host.timers
        self.payload_max_bytes = payload_max_bytes
        self.clock = clock
        self.rand = rand
        #: finished map items and parallel branches, recorded as they finish (issue 24)
        self.items = ItemLog(self)

    # ------------------------------------------------------------------ checkpoints
    async def checkpoint(self, run: Run) -> None:
        """Make every change so far durable (one transaction; concurrent frames share it)."""
        while run.durable < run.changes:
            if run.flushing is None:
                # let sibling frames that are ready (parallel branches, map items) add their
                # events first, so that they share this transaction (none without children)
                if run.root.children is not None:
                    await asyncio.sleep(0)
                if run.flushing is None:
                    run.flushing = running_loop().create_task(self._flush(run))
            await asyncio.shield(run.flushing)

    async def _flush(self, run: Run) -> None:
        try:
            mark = run.changes
            events, run.pending = run.pending, []
            adds, run.timer_adds = run.timer_adds, {}
            dels, run.timer_dels = run.timer_dels, set()
            tokens, run.token_adds = run.token_adds, []
            await self.host.persist(run, events, adds, dels, tokens)
            run.durable = mark
            if not run.first_durable.done():
                run.first_durable.set_result(None)
            if run.updated is not None:
                run.updated.set()
                run.updated = None
        except BaseException as exc:
            run.gapless = False  # it may have committed or not: the next checkpoint looks
            if not run.first_durable.done():
                run.first_durable.set_exception(exc)
            raise
        finally:
            run.flushing = None

    # ------------------------------------------------------------------ running
    async def run(self, run: Run) -> None:
        """Drive `run` to a terminal status (or until cancelled by shutdown)."""
        # this task's log lines and spans belong to the execution's trace (telemetry.py)
        telemetry.current_trace.set(run.trace_id)
        tracing = telemetry.tracer
        span = None
        if tracing is not None:
            attrs = {"aionix.execution_id": run.id, "aionix.workflow": run.workflow, "aionix.tenant": run.tenant}
            span = tracing.start(f"execution {run.workflow}", trace_id=run.trace_id, attrs=attrs).activate()
        try:
            await self._drive(run)
        except asyncio.CancelledError:
            if not run.first_durable.done():
                run.first_durable.cancel()
            raise
        except Exception as exc:
            # a checkpoint could not be written (store fault): nothing past the last commit
            # happened durably; the host resumes from there
            if not run.first_durable.done():
                run.first_durable.set_exception(exc)
            await self.host.broken(run, exc)
        finally:
            run.done.set()
            if span is not None:
                span.set("aionix.status", run.status)
                span.close(None if run.status in ("SUCCEEDED", "RUNNING") else f"{run.status}: {run.error}"[:500])

    async def _drive(self, run: Run) -> None:
        try:
            if run.deadline is None:
                await self._frame(run, run.root)
            else:
                async with asyncio.timeout(max(0.0, run.deadline - self.clock())):
                    await self._frame(run, run.root)
            run.status, run.output = "SUCCEEDED", run.root.output
            run.event("ExecutionSucceeded", detail={"output": run.output})
        except Failure as exc:
            # a full history fails the execution, whatever a map's tolerance made of it
            run.status, run.error = "FAILED", (run.history_full or exc).as_dict()
            run.event("ExecutionFailed", detail=run.error)
        except TimeoutError:
            self._mark_aborted(run.root)
            run.status, run.error = (
                "TIMED_OUT",
                {"error": plan_mod.TIMEOUT, "cause": "the execution exceeded its timeout_seconds"},
            )
            run.event("ExecutionTimedOut", detail=run.error)
        except asyncio.CancelledError:
            if run.abort_reason is None:
                raise  # shutdown: resume from the last checkpoint on the next start
            self._mark_aborted(run.root)
            if run.fail_reason is not None:
                run.status, run.error = "FAILED", run.fail_reason.as_dict()
                run.event("ExecutionFailed", detail=run.error)
            else:
                run.status, run.error = "ABORTED", {"error": "States.Aborted", "cause": run.abort_reason}
                run.event("ExecutionAborted", detail=run.error)
        run.stopped_at = time.time()
        run.timer_adds.clear()
        run.timer_dels.update(f.id for f in run.root.walk())
        await self.checkpoint(run)
        await self.host.finished(run)

    def _mark_aborted(self, frame: Frame) -> None:
        for f in frame.walk():
            if f.status == "running":
                f.status = "aborted"

    async def _frame(self, run: Run, frame: Frame) -> None:
        machine = run.plan.machine(frame.machine)
        breath = time.perf_counter()
        tracing = telemetry.tracer  # None while tracing is off: then no span costs anything
        span = None
        # the last output and its JSON (`_check_size`): the next state's input, as a rule
        last: Any = UNDEFINED
        text: bytes | None = None
        while True:
            if len(run.pending) >= _FLUSH_EVENTS and run.flushing is None:
                # many pure states (a big map's items): commit in bounded transactions, not one
                # that holds the loop while it writes tens of thousands of events (one commit,
                # waited for by this frame only; the others go on)
                run.flushing = running_loop().create_task(self._flush(run))
                await asyncio.shield(run.flushing)
                breath = time.perf_counter()
            elif time.perf_counter() - breath > _YIELD_SECONDS:
                # a long run of pure states (a Choice loop): let the loop serve others
                await asyncio.sleep(0)
                breath = time.perf_counter()
            plan = machine.states[frame.state]
            if frame.phase == "enter" and not frame.retries:
                if text is not None and last is frame.input:
                    run.event("StateEntered", plan.name, frame.id, b'{"input":' + text + b"}")
                else:
                    run.event("StateEntered", plan.name, frame.id, {"input": frame.input})
            entered = time.perf_counter()
            if tracing is not None:
                span = tracing.start(
                    f"state {plan.name}",
                    trace_id=run.trace_id,
                    attrs={"aionix.state": plan.name, "aionix.state_type": plan.type, "aionix.frame": frame.id},
                ).activate()
            try:
                plain = plan.plain
                if plain is None:
                    plain = plan.plain = _plain_set(plan)
                if plain:  # (most states of many workflows: no coroutine of their own)
                    output = (
                        frame.input
                        if plan.value is None
                        else self._eval_inline(run, frame, plan, plan.value, None, None)
                    )
                    if output is expr.OFFLOAD:
                        output = await self._eval(run, frame, plan, plan.value)
                    nxt = None if plan.end else plan.next
                else:
                    result = await self._state(run, frame, plan)
                    nxt, output = await self._leave(run, frame, plan, result)
            except Failure as failure:
                self.observe_state(plan.type, time.perf_counter() - entered)
                if span is not None:
                    span.close(f"{failure.error}: {failure.cause}")
                try:
                    recovered = await self._recover(run, frame, plan, failure)
                except Failure as again:  # a catcher's output/assign could not be evaluated
                    failure, recovered = again, False
                if recovered:
                    continue
                frame.status, frame.error = "failed", failure.as_dict()
                run.event("StateFailed", plan.name, frame.id, frame.error)
                raise
            except BaseException as exc:  # cancelled (abort, timeout, shutdown) or a store fault
                if span is not None:
                    span.close(f"{type(exc).__name__}: {exc}"[:500])
                raise
            self.observe_state(plan.type, time.perf_counter() - entered)
            if span is not None:
                span.close()
            text = self._check_size(output, plan.name)
            if text is None:
                run.event("StateExited", plan.name, frame.id, {"output": output})
            else:
                run.event("StateExited", plan.name, frame.id, b'{"output":' + text + b"}")
            last = output
            frame.phase, frame.due, frame.token, frame.children = "enter", None, None, None
            if frame.retries:
                frame.retries = []
            if nxt is None:
                frame.status, frame.output = "succeeded", output
                return
            frame.state, frame.input = nxt, output

    async def _leave(self, run: Run, frame: Frame, plan: StatePlan, result: Any) -> tuple[str | None, Any]:
        """The state's output, its variable assignments and the next state."""
        if plan.type == "router":
            route, result = result
            nxt: str | None = route.next if route is not None else plan.default
            # a route's own output, else the router's (it was compiled, so it must not be ignored)
            output_t = route.output if route is not None and route.output is not None else plan.output
            assign_t = route.assign if route is not None else None
            output = await self._eval(run, frame, plan, output_t, result=None) if output_t is not None else frame.input
            if assign_t is not None:
                frame.vars.update(await self._eval(run, frame, plan, assign_t))
            if plan.assign is not None:
                frame.vars.update(await self._eval(run, frame, plan, plan.assign))
            return nxt, output
        if plan.type == "fail":
            raise result
        default = result if plan.type in {"task", "parallel", "map", "set"} else frame.input
        if plan.result_hook is not None:
            default = plan.result_hook(frame.input, result)
        output = await self._eval(run, frame, plan, plan.output, result=result) if plan.output is not None else default
        if plan.assign is not None:
            values = await self._eval(run, frame, plan, plan.assign, result=result)
            if not isinstance(values, dict):
                raise Failure(plan_mod.QUERY_EVALUATION, f"state {plan.name}: assign must give an object")
            frame.vars.update(values)
        if plan.output_hook is not None:
            output = plan.output_hook(output)
        return (None if plan.end or plan.type == "succeed" else plan.next), output

    async def _recover(self, run: Run, frame: Frame, plan: StatePlan, failure: Failure) -> bool:
        """Retry (after a durable backoff) or catch; False when the failure stands."""
        if not frame.retries:
            frame.retries = [0] * len(plan.retry)
        for i, retrier in enumerate(plan.retry):
            if not retrier.matches(failure.error):
                continue
            if frame.retries[i] >= retrier.max_attempts:
                break
            frame.retries[i] += 1
            delay = retrier.delay(frame.retries[i], self.rand)
            frame.phase, frame.due, frame.children, frame.token = "retry", self.clock() + delay, None, None
            run.event(
                "RetryScheduled",
                plan.name,
                frame.id,
                {**failure.as_dict(), "retry": frame.retries[i], "delay_seconds": delay},
            )
            run.timer_adds[frame.id] = frame.due
            await self.checkpoint(run)
            await self.timers.sleep_until(frame.due)
            run.timer_dels.add(frame.id)
            frame.phase, frame.due = "enter", None
            return True
        for catcher in plan.catch:
            if not catcher.matches(failure.error):
                continue
            error = failure.as_dict()
            output = (
                await self._eval(run, frame, plan, catcher.output, error=error) if catcher.output is not None else error
            )
            if catcher.assign is not None:
                frame.vars.update(await self._eval(run, frame, plan, catcher.assign, error=error))
            run.event("Caught", plan.name, frame.id, {**error, "next": catcher.next})
            frame.phase, frame.retries, frame.due, frame.token, frame.children = "enter", [], None, None, None
            frame.state, frame.input = catcher.next, output
            return True
        return False

    # ------------------------------------------------------------------ expressions
    def _context(self, run: Run, frame: Frame, plan: StatePlan) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "execution_id": run.id,
            "workflow": run.workflow,
            "state": plan.name,
            "attempt": frame.attempts.get(plan.name, 0) or 1,
            "start_time": run.started_at,
            # for Amazon States Language's context object ($$) and its error causes
            "tenant": run.tenant,
            "execution_input": run.input,
            "event_seq": run.next_seq,
        }
        f: Frame | None = frame
        while f is not None:
            if f.index is not None:
                ctx["item"], ctx["index"] = f.item, f.index
                break
            f = f.parent
        if frame.token is not None:
            ctx["task_token"] = frame.token
        return ctx

    async def _eval(
        self,
        run: Run,
        frame: Frame,
        plan: StatePlan,
        template: Template | None,
        *,
        result: Any = None,
        error: Any = None,
    ) -> Any:
        # inline when it is quick, else in an expression worker: never holds the event loop long
        value = self._eval_inline(run, frame, plan, template, result, error)
        if value is not expr.OFFLOAD:
            return value
        assert template is not None
        data, bindings = self._eval_args(run, frame, plan, template, result, error)
        try:
            value = await expr.evaluate_offloaded(template.evaluate, data, bindings)
        except expr.ExpressionError as exc:
            raise _query_failure(plan, template, exc) from None
        return None if value is UNDEFINED else value

    def _eval_inline(
        self, run: Run, frame: Frame, plan: StatePlan, template: Template | None, result: Any, error: Any
    ) -> Any:
        """`_eval` without a coroutine: the value, or `expr.OFFLOAD` when it needs a worker."""
        if template is None:
            return UNDEFINED
        if template.is_static:
            return template.evaluate()
        data, bindings = self._eval_args(run, frame, plan, template, result, error)
        try:
            value = template.evaluate_inline(data, bindings)
        except expr.ExpressionError as exc:
            raise _query_failure(plan, template, exc) from None
        return None if value is UNDEFINED else value

    def _eval_args(
        self, run: Run, frame: Frame, plan: StatePlan, template: Template, result: Any, error: Any
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The document a template's expressions see, and their `$secret`/`$param` bindings."""
        data = {"input": frame.input, "result": result}
        # the variables (a merge over the frame's scopes) and the context (a dict of eight keys)
        # only when an expression reads them (`Template.roots`; None: it may read everything)
        roots = getattr(template, "roots", None)
        if roots is None or "vars" in roots:
            data["vars"] = frame.all_vars()
        data["error"] = error
        if roots is None or "context" in roots:
            data["context"] = self._context(run, frame, plan)
        refs = template.references
        return data, self._late_bindings(run, plan, refs) if refs else None

    def _late_bindings(self, run: Run, plan: StatePlan, refs: expr.References) -> dict[str, Any] | None:
        """`$secret` and `$param` for an expression that reads them, from the values `_resolve`
        read when the state was entered; a name it could not read is never *undefined*."""
        if not refs:
            return None
        missing = [f"secret {n!r}" for n in sorted(refs.secrets - run.secrets.keys())]
        missing += [f"parameter {p!r}" for p in sorted(refs.params - run.params.keys())]
        if missing:  # its state could not read it (a catcher of that States.Runtime evaluates this)
            raise Failure(plan_mod.RUNTIME, f"state {plan.name!r}: {missing[0]} was not resolved")
        params = run.params

        def param(path: Any) -> Any:
            if path not in params:
                raise Failure(plan_mod.RUNTIME, f"state {plan.name!r}: parameter {path!r} was not resolved")
            return params[path]

        bindings: dict[str, Any] = {}
        if refs.secrets or refs.reads_all_secrets:
            bindings["secret"] = run.secrets
        if refs.params or refs.dynamic_params:
            bindings["param"] = param
        return bindings

    async def _resolve(self, run: Run, plan: StatePlan) -> None:
        """Read every secret and parameter that any expression of the state references (late,
        through the bus), once when the state is entered (and again after a restart): one pass
        over `plan.references`, which the compiler collects from all the state's expressions."""
        refs = plan.references
        if refs.secrets or refs.params or refs.reads_all_secrets or refs.dynamic_params:
            if refs.dynamic_params or refs.reads_all_secrets:
                raise Failure(plan_mod.RUNTIME, f"state {plan.name!r}: $secret and $param need literal names")
            ctx = CallContext(
                tenant=run.tenant,
                trace_id=run.trace_id,
                caller=run.caller_trn,
                secrets=run.redaction,
                on_behalf_of=run.on_behalf_of,
            )
            reader = f"trn:stepflow:{run.tenant}:execution/{run.id}"
            for name in refs.secrets - run.secrets.keys():
                try:
                    value = await self.bus.invoke(
                        f"trn:credvault:{run.tenant}:credential/{name}", {"op": "resolve", "reader": reader}, ctx
                    )
                except BusError as exc:  # CredVault.AccessDenied: not among the secret's readers
                    raise Failure(
                        exc.error, f"state {plan.name!r}: secret {name!r} cannot be read: {exc.cause}"
                    ) from None
                except AionixError as exc:
                    raise Failure(
                        plan_mod.RUNTIME, f"state {plan.name!r}: secret {name!r} cannot be read: {exc.message}"
                    ) from None
                run.secrets[name] = value
                self.host.register_secret(run, value)
            for path in refs.params - run.params.keys():
                # a secret_ref parameter resolves to a secret: the paramstore hands such values
                # to this sink so that they are redacted like `$secret` values
                sink: list[Any] = []
                try:
                    value = await self.bus.invoke(
                        f"trn:paramstore:{run.tenant}:param/{path.lstrip('/')}",
                        {"op": "get"},
                        ctx.child(extra={"secret_sink": sink}),
                    )
                except AionixError as exc:
                    raise Failure(
                        plan_mod.RUNTIME, f"state {plan.name!r}: parameter {path!r} cannot be read: {exc.message}"
                    ) from None
                for secret in sink:
                    self.host.register_secret(run, secret)
                run.params[path] = value

    def _check_size(self, value: Any, state: str) -> bytes | None:
        """`value` as JSON (None for a scalar), or `States.ResultTooLarge`."""
        if value is None or isinstance(value, (bool, int, float)):
            return None
        text = jsonutil.dumps(value)
        size = len(text)
        if size > self.payload_max_bytes:
            raise Failure(
                plan_mod.RESULT_TOO_LARGE,
                f"state {state!r}: output is {size} bytes, over the limit of {self.payload_max_bytes}",
            )
        return text

    # ------------------------------------------------------------------ states
    async def _state(self, run: Run, frame: Frame, plan: StatePlan) -> Any:
        if plan.input_hook is not None and frame.phase == "enter":
            frame.input = plan.input_hook(frame.input)
        if plan.references:  # (no coroutine for the many states that read no secret or parameter)
            await self._resolve(run, plan)
        kind = plan.type
        if kind == "set":
            return frame.input if plan.value is None else await self._eval(run, frame, plan, plan.value)
        if kind == "router":
            for route in plan.routes:
                if await self._eval(run, frame, plan, route.condition) is True:
                    return route, None
            if plan.default is None:
                raise Failure(
                    plan_mod.NO_CHOICE_MATCHED, f"state {plan.name!r}: no route matched and there is no default"
                )
            return None, None
        if kind == "succeed":
            return frame.input
        if kind == "fail":
            error = await self._eval(run, frame, plan, plan.error) if plan.error is not None else "States.Fail"
            cause = await self._eval(run, frame, plan, plan.cause) if plan.cause is not None else None
            return Failure(str(error), None if cause is None else str(cause))
        if kind == "wait":
            return await self._wait(run, frame, plan)
        if kind == "task":
            seconds = await self._seconds(run, frame, plan, plan.timeout_template, "timeout")
            return await self._bounded(plan, self._task(run, frame, plan), seconds)
        if kind == "parallel":
            return await self._bounded(plan, self._parallel(run, frame, plan))
        if kind == "map":
            if plan.distributed is not None:  # child executions per batch (asl/distributed.py)
                from aionix.stepflow.asl.distributed import run_map

                return await self._bounded(plan, run_map(self, run, frame, plan))
            return await self._bounded(plan, self._map(run, frame, plan))
        raise Failure(plan_mod.RUNTIME, f"unknown state type {kind!r}")

    async def _bounded(self, plan: StatePlan, work: Awaitable[Any], seconds: float | None = None) -> Any:
        limit = plan.timeout_seconds if seconds is None else seconds
        if limit is None:
            return await work
        try:
            async with asyncio.timeout(limit):
                return await work
        except TimeoutError:
            raise Failure(plan_mod.TIMEOUT, f"state {plan.name!r} did not finish within {limit:g} s") from None

    async def _seconds(
        self, run: Run, frame: Frame, plan: StatePlan, template: Template | None, what: str
    ) -> float | None:
        """A timeout or heartbeat evaluated at run time (None: use the static value)."""
        if template is None:
            return None
        value = await self._eval(run, frame, plan, template)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise Failure(plan_mod.RUNTIME, f"state {plan.name!r}: the {what} must be a positive number, got {value!r}")
        return float(value)

    async def _wait(self, run: Run, frame: Frame, plan: StatePlan) -> Any:
        if frame.phase != "wait":
            if plan.seconds is not None:
                seconds = await self._eval(run, frame, plan, plan.seconds)
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                    raise Failure(
                        plan_mod.RUNTIME, f"state {plan.name!r}: seconds must be a number ≥ 0, got {seconds!r}"
                    )
                due = self.clock() + float(seconds)
            else:
                stamp = await self._eval(run, frame, plan, plan.timestamp)
                try:
                    due = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
                except ValueError:
                    raise Failure(
                        plan_mod.RUNTIME, f"state {plan.name!r}: timestamp {stamp!r} is not ISO 8601"
                    ) from None
            frame.phase, frame.due = "wait", due
            run.timer_adds[frame.id] = due
            run.event("WaitStarted", plan.name, frame.id, {"due_at": due})
            await self.checkpoint(run)
        assert frame.due is not None
        await self.timers.sleep_until(frame.due)
        run.timer_dels.add(frame.id)
        run.event("WaitEnded", plan.name, frame.id, None)
        return frame.input

    async def _task(self, run: Run, frame: Frame, plan: StatePlan) -> Any:
        qualified = frame.prefix + plan.name
        if frame.phase not in ("task", "callback"):
            frame.attempts[plan.name] = frame.attempts.get(plan.name, 0) + 1
            if plan.mode == "callback":
                frame.token = pysecrets.token_urlsafe(24)
                run.token_adds.append((frame.token, frame.id))
            frame.phase = "callback" if plan.mode == "callback" else "task"
            attempt = frame.attempts[plan.name]
            run.event(
                "TaskScheduled", plan.name, frame.id, {"attempt": attempt, "key": f"{run.id}:{qualified}:{attempt}"}
            )
            if not plan.pure_task:  # a pure action (transform) is re-run after a crash, like `set`
                await self.checkpoint(run)
            resumed = False
        else:
            resumed = True
        attempt = frame.attempts[plan.name]
        key = f"{run.id}:{qualified}:{attempt}"
        if frame.phase == "callback" and resumed:
            settled = await self.host.token_outcome(frame.token)
            if settled is not None:
                return self._callback_result(run, frame, plan, settled)
        action = await self._eval(run, frame, plan, plan.action)
        parameters = await self._eval(run, frame, plan, plan.parameters) if plan.parameters is not None else frame.input
        if not isinstance(action, str) or not action:
            raise Failure(plan_mod.RUNTIME, f"state {plan.name!r}: action must be a string, got {action!r}")
        ctx = CallContext(
            tenant=run.tenant,
            trace_id=run.trace_id,
            idempotency_key=key,
            extra={"execution_id": run.id, "state": qualified, "attempt": attempt, "budget_usd": run.plan.budget_usd},
            caller=run.caller_trn,
            secrets=run.redaction,
            on_behalf_of=run.on_behalf_of,
        )
        waiter: asyncio.Future[Any] | None = None
        if frame.phase == "callback":
            assert frame.token is not None
            waiter = running_loop().create_future()
            run.callbacks[frame.token] = waiter
            run.heartbeats[frame.token] = asyncio.Event()
        try:
            result = await self._invoke(run, frame, plan, action, parameters, ctx)
            if waiter is None:
                run.event("TaskSucceeded", plan.name, frame.id, {"attempt": attempt, "result": result})
                return result
            assert frame.token is not None
            if not waiter.done() and resumed:
                # settled while this run was being resumed, before the waiter existed
                settled = await self.host.token_outcome(frame.token)
                if settled is not None:
                    return self._callback_result(run, frame, plan, settled)
            heartbeat = await self._seconds(run, frame, plan, plan.heartbeat_template, "heartbeat")
            return self._callback_result(
                run, frame, plan, await self._await_callback(run, frame, plan, waiter, heartbeat)
            )
        except Failure as failure:
            run.event("TaskFailed", plan.name, frame.id, {"attempt": attempt, **failure.as_dict()})
            raise
        finally:
            if frame.token is not None:
                run.callbacks.pop(frame.token, None)
                run.heartbeats.pop(frame.token, None)

    async def _invoke(
        self, run: Run, frame: Frame, plan: StatePlan, action: str, parameters: Any, ctx: CallContext
    ) -> Any:
        if action.startswith("trn:stepflow:"):
            return await self.host.run_child(run, action, parameters, ctx)
        try:
            return await self.bus.invoke(action, parameters, ctx, timeout=plan.timeout_seconds)
        except TargetTimeout as exc:
            raise Failure(plan_mod.TIMEOUT, exc.cause) from None
        except BusError as exc:
            raise Failure(exc.error, exc.cause) from None
        except AionixError as exc:
            raise Failure(plan_mod.TASK_FAILED, exc.message) from None

    async def _await_callback(
        self, run: Run, frame: Frame, plan: StatePlan, waiter: asyncio.Future[Any], heartbeat: float | None = None
    ) -> dict[str, Any]:
        assert frame.token is not None
        beat = run.heartbeats[frame.token]
        seconds = plan.heartbeat_seconds if heartbeat is None else heartbeat
        while True:
            if seconds is None:
                return await waiter
            beat.clear()
            beaten = asyncio.ensure_future(beat.wait())
            try:
                done, _ = await asyncio.wait({waiter, beaten}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                beaten.cancel()
            if waiter in done:
                return waiter.result()
            if not done:
                raise Failure(plan_mod.HEARTBEAT_TIMEOUT, f"state {plan.name!r}: no heartbeat within {seconds:g} s")

    def _callback_result(self, run: Run, frame: Frame, plan: StatePlan, settled: dict[str, Any]) -> Any:
        attempt = frame.attempts.get(plan.name, 1)
        if settled.get("status") == "success":
            run.event("TaskSucceeded", plan.name, frame.id, {"attempt": attempt, "result": settled.get("output")})
            return settled.get("output")
        raise Failure(settled.get("error") or plan_mod.TASK_FAILED, settled.get("cause"))

    async def _children(
        self, run: Run, frame: Frame, plan: StatePlan, limit: int, tolerated: Callable[[int, int], bool] | None
    ) -> list[Any]:
        """Run the frame's children; the first failure beyond tolerance fails the state.

        At most `limit` run at once (0: `max_map_concurrency`, which also caps a larger limit,
        like Step Functions' inline Map), started in item order as others finish: a map of
        thousands of items never puts thousands of tasks on the event loop at once, and each
        finished child is collected in O(1) (no `asyncio.wait` over every pending task)."""
        children = frame.children or []
        cap = max(1, self.max_map_concurrency)
        limit = min(limit, cap) if limit > 0 else cap
        failures = [c for c in children if c.status == "failed"]
        waiting = [i for i, c in enumerate(children) if c.status == "running"]
        waiting.reverse()  # popped from the end: item order
        finished: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        order: dict[asyncio.Future[None], int] = {}

        def launch() -> None:
            while waiting and len(order) < limit:
                i = waiting.pop()
                task = running_loop().create_task(self._child(run, children[i]))
                order[task] = i
                task.add_done_callback(finished.put_nowait)

        try:
            launch()
            while order:
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                # children that finished together are looked at in item order (deterministic errors)
                done.sort(key=order.__getitem__)
                for task in done:
                    del order[task]
                for task in done:
                    exc = task.exception()
                    if isinstance(exc, Failure):
                        failures.append(exc)  # type: ignore[arg-type]
                    elif exc is not None:
                        raise exc
                if failures and (tolerated is None or not tolerated(len(failures), len(children))):
                    raise self._children_failure(plan, failures, tolerated is not None)
                launch()
        finally:
            pending = list(order)
            for task in pending:
                task.cancel()
            if pending or waiting:
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                for child in children:
                    for f in child.walk():
                        if f.status == "running":
                            f.status = "aborted"
        if failures and (tolerated is None or not tolerated(len(failures), len(children))):
            raise self._children_failure(plan, failures, tolerated is not None)
        return [c.output if c.status == "succeeded" else c.error for c in children]

    def _children_failure(self, plan: StatePlan, failures: list[Any], tolerance: bool) -> Failure:
        first = failures[0]
        error = first if isinstance(first, Failure) else Failure(first.error["error"], first.error.get("cause"))
        if tolerance:
            return Failure(
                plan_mod.EXCEED_TOLERATED,
                f"state {plan.name!r}: {len(failures)} item(s) failed; first: {error.error}: {error.cause}",
            )
        return Failure(error.error, error.cause)

    async def _child(self, run: Run, child: Frame) -> None:
        span = telemetry.span("iteration", trace_id=run.trace_id, attrs={"aionix.frame": child.id})
        try:
            with span:  # a parallel branch or a map item: its states' parent (NOOP when off)
                await self._frame(run, child)
        finally:
            if child.status in ("succeeded", "failed"):
                self.items.finished(run, child)  # durable soon, so a resume does not run it again

    async def _parallel(self, run: Run, frame: Frame, plan: StatePlan) -> list[Any]:
        if frame.phase != "children":
            # `item`, when set (ASL Parameters/Arguments), shapes the input every branch gets
            branch_input = frame.input if plan.item is None else await self._eval(run, frame, plan, plan.item)
            frame.children = [
                Frame(
                    id=f"{frame.id}.{plan.name}.{i}",
                    machine=branch.path,
                    state=branch.entry,
                    input=branch_input,
                    prefix=frame.prefix,
                    parent=frame,
                )
                for i, branch in enumerate(plan.branches)
            ]
            frame.phase = "children"
            self.items.new_scope(run, f"{frame.id}.{plan.name}")
            run.event("ParallelStarted", plan.name, frame.id, {"branches": len(plan.branches)})
        return await self._children(run, frame, plan, 0, None)

    async def _map(self, run: Run, frame: Frame, plan: StatePlan) -> list[Any]:
        limit, count, pct = await self._map_limits(run, frame, plan)
        if frame.phase != "children":
            items = await self._eval(run, frame, plan, plan.items) if plan.items is not None else frame.input
            if not isinstance(items, list):
                raise Failure(
                    plan_mod.QUERY_EVALUATION,
                    f"state {plan.name!r}: items must be an array, got {type(items).__name__}",
                )
            self._check_map_size(run, plan, len(items))
            assert plan.processor is not None
            machine: Machine = plan.processor
            children = []
            breath = time.perf_counter()
            for i, item in enumerate(items):
                if time.perf_counter() - breath > _YIELD_SECONDS:
                    await asyncio.sleep(0)  # a big map: let the loop serve others meanwhile
                    breath = time.perf_counter()
                child = Frame(
                    id=f"{frame.id}.{plan.name}.{i}",
                    machine=machine.path,
                    state=machine.entry,
                    input=item,
                    index=i,
                    item=item,
                    prefix=f"{frame.prefix}{plan.name}[{i}]/",
                    parent=frame,
                )
                if plan.item is not None:
                    child.input = await self._eval(run, child, plan, plan.item)
                children.append(child)
            frame.children = children
            frame.phase = "children"
            self.items.new_scope(run, f"{frame.id}.{plan.name}")
            run.event("MapStarted", plan.name, frame.id, {"items": len(items)})
        tolerated = None
        if count is not None or pct is not None:

            def tolerated(failed: int, total: int) -> bool:
                if count is not None and failed <= count:
                    return True
                return pct is not None and total > 0 and failed * 100.0 / total <= pct

        return await self._children(run, frame, plan, limit, tolerated)

    def _check_map_size(self, run: Run, plan: StatePlan, count: int) -> None:
        """Fail fast, before any item frame exists: more items than `[stepflow] max_map_items`,
        or more than the history can hold (every item writes at least StateEntered and
        StateExited)."""
        if count > self.max_map_items:
            raise Failure(
                plan_mod.RUNTIME,
                f"state {plan.name!r}: {count} map items, over the limit of {self.max_map_items} "
                f"(stepflow.max_map_items)",
            )
        if run.max_events and run.next_seq + 2 * count >= run.max_events:
            raise Failure(
                plan_mod.RUNTIME,
                f"state {plan.name!r}: {count} map items would write at least {2 * count} history events; "
                f"the execution's limit is {run.max_events} (stepflow.max_history_events)",
            )

    async def _map_limits(self, run: Run, frame: Frame, plan: StatePlan) -> tuple[int, int | None, float | None]:
        """MaxConcurrency and the failure tolerances: static, or evaluated from the execution
        (again on a resume, from the same input and variables)."""
        limit, count, pct = plan.max_concurrency, plan.tolerated_failure_count, plan.tolerated_failure_percentage
        if plan.max_concurrency_template is not None:
            limit = int(await self._eval(run, frame, plan, plan.max_concurrency_template))
        if plan.tolerated_count_template is not None:
            count = int(await self._eval(run, frame, plan, plan.tolerated_count_template))
        if plan.tolerated_percentage_template is not None:
            pct = float(await self._eval(run, frame, plan, plan.tolerated_percentage_template))
        return limit, count, pct


def _plain_set(plan: StatePlan) -> bool:
    """A `set` state whose output is its value (or input) as it is: no ASL processing, no
    output or assign template, no `$secret`/`$param` to resolve (`Engine._frame`'s short path,
    the same as `_state` and `_leave` for it)."""
    return (
        plan.type == "set"
        and plan.input_hook is None
        and plan.result_hook is None
        and plan.output_hook is None
        and plan.output is None
        and plan.assign is None
        and not plan.references
    )


def _query_failure(plan: StatePlan, template: Any, exc: expr.ExpressionError) -> Failure:
    pointer = exc.details.get("pointer") if isinstance(exc.details, dict) else None
    where = next((p for p, e in template.expressions if e.source == exc.expression), pointer)
    return Failure(
        plan_mod.QUERY_EVALUATION, f"state {plan.name!r} ({where}): expression {exc.expression!r}: {exc.message}"
    )


def new_root(plan: Plan, input: Any) -> Frame:
    return Frame(id="r", machine=plan.root.path, state=plan.root.entry, input=input)


def reset_for_redrive(frame: Frame) -> None:
    """Failed and aborted frames re-enter the state they stopped in; finished children stay."""
    for f in frame.walk():
        if f.status in ("failed", "aborted"):
            f.status, f.error, f.retries, f.due, f.token = "running", None, [], None, None
            if f.phase != "children":
                f.phase = "enter"
        if (
            f.children is not None
            and f.status == "running"
            and not any(c.status in ("failed", "aborted", "running") for c in f.children)
        ):
            pass
