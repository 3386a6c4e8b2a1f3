"""StepFlow's logic (no HTTP): templates and their versions, starting, listing, cancelling
and redriving executions, callbacks, recovery after a restart, retention."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from aionix import jsonutil, telemetry
from aionix import trn as trnlib
from aionix import usage as ai_usage
from aionix.api.auth import principal_from_record, principal_record
from aionix.api.endpoint import int_cursor
from aionix.bus import CallContext
from aionix.cluster import LeaseLost
from aionix.errors import AionixError, BadRequest, Conflict, NotFound, PayloadTooLarge, ValidationFailed, field_error
from aionix.loops import running_loop
from aionix.redact import SecretSet
from aionix.stepflow import compile as plan_mod
from aionix.stepflow.compile import Plan, compile_workflow
from aionix.stepflow.engine import TERMINAL, Engine, Failure, Frame, Run, new_root, reset_for_redrive
from aionix.stepflow.items import follows
from aionix.stepflow.models import Problem, ValidationReport
from aionix.stepflow.timers import Timers
from aionix.stepflow.validate import validate
from aionix.store.sqlite import UniqueViolation

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.stepflow")
EVENT_SOURCE = "aionix.stepflow"


class StaleHead(Exception):
    """A start's first checkpoint found that the version this node remembered as the template's
    latest no longer is (another node wrote one): nothing was stored; it starts again."""


class StepFlowConfig(BaseModel):
    """`[stepflow]` in config.toml."""

    model_config = {"extra": "forbid"}

    sync_wait_seconds: float = Field(30.0, gt=0, le=300)
    payload_max_bytes: int | None = Field(None, ge=1024)
    max_history_events: int = Field(25_000, ge=100)
    max_map_items: int = Field(10_000, ge=1, le=1_000_000)
    max_map_concurrency: int = Field(256, ge=1, le=100_000)
    retention_max_per_workflow: int = Field(10_000, ge=1)
    retention_days: float = Field(30.0, gt=0)
    prune_interval_seconds: float = Field(60.0, gt=0)
    plan_cache_size: int = Field(1024, ge=1)
    #: the `s3` connection a distributed Map's ItemReader/ResultWriter uses when it names none
    s3_connection: str | None = None


def _dumps(value: Any) -> str:
    return jsonutil.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else jsonutil.loads(text)


_last_id = [0, 0]
_tail = random.Random(os.urandom(16)).getrandbits


def new_execution_id() -> str:
    """Time-ordered and strictly increasing in this process (lists page by id), with a random tail."""
    ms = int(time.time() * 1000)
    if ms <= _last_id[0]:
        ms, _last_id[1] = _last_id[0], _last_id[1] + 1
    else:
        _last_id[1] = 0
    _last_id[0] = ms
    # the tail from a seeded generator (os.urandom is a syscall that gives up the GIL)
    return f"{ms:012x}{_last_id[1]:04x}{_tail(32):08x}"


class StepFlowService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.store = rt.store
        self.bus = rt.bus
        self.config: StepFlowConfig = rt.config.service_section("stepflow", StepFlowConfig)
        self.payload_max_bytes = self.config.payload_max_bytes or rt.config.limits.payload_max_bytes
        self.timers = Timers()
        self.engine = Engine(
            self,
            payload_max_bytes=self.payload_max_bytes,
            max_map_items=self.config.max_map_items,
            max_map_concurrency=self.config.max_map_concurrency,
        )
        self.metrics = rt.metrics
        #: `aionix_executions_finished_total`'s child of each status (a label lookup takes a lock)
        self._finished_counters: dict[str, Any] = {}
        self.engine.observe_state = rt.metrics.state_seconds.observe  # type: ignore[method-assign]
        self.runs: dict[str, Run] = {}
        self._plans: OrderedDict[tuple[str, str, int], Plan] = OrderedDict()
        #: versions being compiled for a start, each with what its other starts wait for (`plan`)
        self._compiling: dict[tuple[str, str, int], asyncio.Future[None]] = {}
        #: (tenant, name) -> latest version, for starts without a version. Every template write
        #: of this node forgets its entry once it committed (`_forget_head`). With the SQLite
        #: store, whose file this process alone writes, that is all; on PostgreSQL other nodes
        #: write templates too, so a start on a remembered version inserts its execution only
        #: while that still is the latest, and starts again on the stored head otherwise
        #: (`Run.head_check`, `StaleHead`)
        self._heads: dict[tuple[str, str], int] = {}
        self._heads_shared = getattr(rt.store, "dialect", None) != "sqlite"
        self._heads_generation = 0
        self._stopping = False
        self.stats: dict[str, int] = {"running": 0, "started": 0, "stale_heads": 0}
        self.cluster = rt.cluster
        #: execution id -> events of this node's waiters for an execution another node runs
        #: (set by the owner's "executions" messages, aionix/cluster.py)
        self._watchers: dict[str, set[asyncio.Event]] = {}
        #: claims of this node one at a time (the claim loop, a start's or a cancel's take-over):
        #: an execution claimed twice here would run under a stale epoch
        self._claiming = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def startup(self) -> None:
        self.timers.start()
        cluster = self.cluster
        cluster.subscribe("executions", self._on_touched)
        cluster.subscribe("cancel", self._on_cancel)
        cluster.subscribe("token", self._on_token)
        cluster.subscribe("reconnected", self._on_reconnected)
        cluster.on_fenced.append(self._on_fenced)
        cluster.on_resumed.append(self._on_resumed)
        await self.recover()
        self.rt.spawn(self._prune_loop(), "stepflow-pruner")
        if cluster.enabled:
            self.rt.spawn(self._claim_loop(), "stepflow-claims")
        self.rt.health["stepflow"] = self.stats

    async def shutdown(self) -> None:
        self._stopping = True
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.timers.stop()

    async def recover(self) -> int:
        """At start: take the lease of every RUNNING execution this node may run (with SQLite,
        all of them; on many nodes, this node's own from before its restart and those of nodes
        whose lease expired) and resume each from its last checkpoint."""
        count = await self._claim(own=True, everything=not self.cluster.enabled)
        if count:
            log.info("resumed %d running execution(s)", count)
        return count

    async def _claim(self, *, own: bool = False, everything: bool = False) -> int:
        """Claim executions (`stepflow.claim_executions`: their epoch goes up, so whatever their
        previous owner still had in flight cannot be written) and resume them here."""
        async with self._claiming:
            return await self._claim_now(own=own, everything=everything)

    async def _claim_now(self, *, own: bool, everything: bool) -> int:
        cluster = self.cluster
        params = cluster.claim_params(own=own, everything=everything)
        rows = await self.store.transaction(lambda tx: tx.fetch_all("stepflow.claim_executions", params))
        count = 0
        for claimed in rows:
            if claimed["id"] in self.runs:
                # running here already (started or resumed while this node was fenced): it
                # writes under the epoch just claimed, or its next checkpoint would be refused
                self.runs[claimed["id"]].epoch = claimed["epoch"]
                continue
            full = await self.store.fetch_one("stepflow.get_execution", {"id": claimed["id"]})
            if full is None or full["status"] != "RUNNING" or full["epoch"] != claimed["epoch"]:
                continue  # it ended, or another node claimed it since
            try:
                run = await self._load_run(full)
            except AionixError:
                log.exception("cannot resume execution %s", claimed["id"])
                continue
            detail: dict[str, Any] = {"after_seq": run.next_seq - 1}
            if cluster.enabled:
                detail["node"] = cluster.node_id
            run.event("ExecutionResumed", detail=detail)
            self._launch(run)
            count += 1
        if count:
            cluster.stats["claimed"] += count
        return count

    async def _claim_loop(self) -> None:
        """Many nodes: take over the executions of nodes whose lease expired."""
        interval = self.cluster.config.claim_interval_seconds
        while not self._stopping:
            await asyncio.sleep(interval)
            if not self.cluster.holds_leases() or self.cluster.fenced:
                continue
            try:
                n = await self._claim()
            except AionixError as exc:
                log.warning("claiming executions failed: %s", exc.message)
                continue
            if n:
                log.info("node %s took over %d execution(s) whose owner lost its lease", self.cluster.node_id, n)

    async def _on_fenced(self) -> None:
        """This node lost its leases (no heartbeat for a whole lease): stop every run at once,
        writing nothing more; another node may own them by now."""
        runs = list(self.runs.values())
        for run in runs:
            run.fenced = True
            self.runs.pop(run.id, None)
            if run.task is not None:
                run.task.cancel()
        self.stats["running"] = len(self.runs)
        if runs:
            log.warning("stopped %d execution(s) whose lease this node may have lost", len(runs))

    async def _on_resumed(self) -> None:
        """The heartbeat is back: take back what no other node claimed meanwhile."""
        await self._claim(own=True)

    async def _on_touched(self, message: dict[str, Any]) -> None:
        for execution_id in message.get("ids") or ():
            for ev in self._watchers.get(execution_id, ()):
                ev.set()

    async def _on_cancel(self, message: dict[str, Any]) -> None:
        run = self.runs.get(str(message.get("id")))
        if run is None or run.done.is_set():
            return
        run.abort_reason = str(message.get("reason") or "cancelled by request")
        if run.task is not None:
            run.task.cancel()

    async def _on_token(self, message: dict[str, Any]) -> None:
        run = self.runs.get(str(message.get("execution_id")))
        token = str(message.get("token"))
        if run is None:
            return
        if message.get("outcome") == "heartbeat":
            if token in run.heartbeats:
                run.heartbeats[token].set()
            return
        waiter = run.callbacks.get(token)
        if waiter is None or waiter.done():
            return
        outcome = await self.token_outcome(token)
        if outcome is not None and not waiter.done():
            waiter.set_result(outcome)

    async def _on_reconnected(self, message: dict[str, Any]) -> None:
        """Messages sent while the LISTEN connection was down are lost: look again at the
        callbacks this node's runs wait for, and wake every watcher."""
        for run in list(self.runs.values()):
            for token, waiter in list(run.callbacks.items()):
                if not waiter.done():
                    outcome = await self.token_outcome(token)
                    if outcome is not None and not waiter.done():
                        waiter.set_result(outcome)
        for events in self._watchers.values():
            for ev in events:
                ev.set()

    async def doctor(self, tenant: str | None) -> list[dict[str, Any]]:
        """`aio admin doctor`: executions RUNNING in the store that no task of this server runs
        (their resume failed, e.g. the version they ran is gone): they would never finish."""
        rows = await self.store.fetch_all("doctor.running_executions", {"tenant": tenant, "limit": 1000})
        live: set[str] = set()
        if self.cluster.enabled:  # many nodes: another live node's executions are its own business
            live = {n["id"] for n in await self.cluster.nodes() if n["live"] and not n["self"]}
        out: list[dict[str, Any]] = []
        for row in rows:
            if row["id"] in self.runs or row["owner"] in live:
                continue
            again = await self.store.fetch_one("stepflow.get_execution", {"id": row["id"]})
            if again is None or again["status"] != "RUNNING" or row["id"] in self.runs:
                continue  # it finished (or started running) between the two reads
            out.append(
                {
                    "check": "stuck-executions",
                    "status": "problem",
                    "tenant": row["tenant"],
                    "resource": f"trn:stepflow:{row['tenant']}:execution/{row['id']}",
                    "message": f"execution {row['id']} of {row['workflow']} v{row['version']} is RUNNING in the "
                    "store but no task on this server runs it (it could not be resumed: the server log says why)",
                    "fix": "restart the server to resume it; if the log shows it cannot resume, cancel it "
                    f"(POST /api/v1/executions/{row['id']}/cancel) or mark it ABORTED while the server is stopped",
                    "details": {"started_at": row["started_at"]},
                }
            )
        if not out:
            out.append(
                {
                    "check": "stuck-executions",
                    "status": "ok",
                    "message": f"every RUNNING execution ({len(rows)}) has a task on this server"
                    + (" or on another live node" if live else ""),
                }
            )
        return out

    async def _load_run(self, row: dict[str, Any]) -> Run:
        plan = await self.plan(row["tenant"], row["workflow"], row["version"])
        snap = jsonutil.loads(row["snapshot"])
        run = Run(
            id=row["id"],
            tenant=row["tenant"],
            workflow=row["workflow"],
            version=row["version"],
            plan=plan,
            root=Frame.from_dict(snap["root"]),
            input=_loads(row["input"]),
            started_at=row["started_at"],
            trace_id=row["trace_id"] or "",
            next_seq=row["next_seq"],
            status=row["status"],
            output=_loads(row["output"]),
            error=_loads(row["error"]),
            stopped_at=row["stopped_at"],
            redrive_count=row["redrive_count"],
            deadline=row["deadline"],
            parent_id=row["parent_id"],
            inserted=True,
            epoch=row["epoch"],
            stored_timers=None,  # what its earlier lives stored is not known here
            stored_items=True,
        )
        if snap.get("principal"):  # the run keeps calling on behalf of whoever started it
            run.on_behalf_of = principal_from_record(snap["principal"])
        run.first_durable.set_result(None)
        if run.status == "RUNNING":
            # map items and parallel branches that finished after the snapshot stay finished
            await self.engine.items.restore(run)
        return run

    def _launch(self, run: Run) -> None:
        run.max_events = self.config.max_history_events  # enforced by `Run.event`, before writing
        self.runs[run.id] = run
        self.stats["started"] += 1
        self.stats["running"] = len(self.runs)
        # (`done` is set by the task's end: one cancelled before its first step never enters
        # `Engine.run`, whose end sets it too)
        run.task = self.rt.spawn(self.engine.run(run), f"stepflow-{run.id}", then=run.done.set)

    # ------------------------------------------------------------------ templates
    def check_definition(self, definition: dict[str, Any]) -> None:
        report = validate(definition)
        if not report.valid:
            first = report.errors[0]
            more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
            raise ValidationFailed(
                f"definition{first.pointer}: {first.message}{more}",
                details=[{"field": f"definition{p.pointer}", **p.model_dump(exclude_none=True)} for p in report.errors],
            )

    async def validate(self, tenant: str, definition: Any) -> ValidationReport:
        """Validate, then look up what the definition references (actions, functions,
        templates, secrets, params): a missing one is a warning, as it may be created later."""
        report = validate(definition, known_target=self._known_target)
        if not report.valid:
            return report
        plan = compile_workflow(definition)
        for machine in plan.machines.values():
            for state in machine.states.values():
                base = f"{machine.path}/states/{state.name}" if machine.path else f"/states/{state.name}"
                if state.action is not None and state.action.is_static:
                    target = state.action.evaluate()
                    if isinstance(target, str) and trnlib.is_trn(target):
                        await self._warn_missing(report, tenant, target, base + "/action")
                refs = state.references
                for name in sorted(refs.secrets):
                    await self._warn_missing(
                        report, tenant, f"trn:credvault:{tenant}:credential/{name}", base, f"secret {name!r}"
                    )
                for path in sorted(refs.params):
                    await self._warn_missing(
                        report, tenant, f"trn:paramstore:{tenant}:param/{path.lstrip('/')}", base, f"parameter {path!r}"
                    )
        return report

    async def _warn_missing(
        self, report: ValidationReport, tenant: str, target: str, pointer: str, what: str | None = None
    ) -> None:
        try:
            parsed = trnlib.parse(target)
        except AionixError as exc:
            report.warnings.append(Problem(pointer=pointer, message=exc.message, severity="warning"))
            return
        resolver = self.rt.resolvers.get((parsed.service, parsed.type))
        if resolver is None or parsed.tenant != tenant:
            return
        lookup = parsed if parsed.type != "template" else parsed.with_qualifier(None)
        try:
            found = await resolver(lookup)
        except AionixError:
            found = None
        if found is None:
            report.warnings.append(
                Problem(pointer=pointer, message=f"{what or target} does not exist (yet)", severity="warning")
            )

    def _known_target(self, action: str) -> bool:
        if action.startswith("trn:stepflow:"):
            return True
        return self.bus.has_target(action)

    def _template_out(self, row: dict[str, Any], with_definition: bool = True) -> dict[str, Any]:
        out = {
            "name": row["name"],
            "trn": f"trn:stepflow:{row['tenant']}:template/{row['name']}",
            "version": row["version"],
            "description": row.get("description"),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        if with_definition and "definition" in row:
            out["definition"] = jsonutil.loads(row["definition"])
        return out

    async def create_template(
        self, tenant: str, name: str, definition: dict[str, Any], description: str | None
    ) -> dict[str, Any]:
        self.check_definition(definition)
        now = time.time()
        text = _dumps(definition)

        def tx_fn(tx: Any) -> None:
            if tx.fetch_one("stepflow.get_template_head", {"tenant": tenant, "name": name}) is not None:
                raise Conflict(f"workflow {name!r} already exists; PUT /api/v1/workflows/{name} makes a new version")
            # deleting a workflow deleted its versions (as Step Functions does), so a name created
            # again starts at version 1
            prior = (tx.fetch_one("stepflow.max_version", {"tenant": tenant, "name": name}) or {}).get("v") or 0
            version = prior + 1
            tx.execute(
                "stepflow.insert_template",
                {"tenant": tenant, "name": name, "version": version, "description": description, "now": now},
            )
            tx.execute(
                "stepflow.insert_version",
                {
                    "tenant": tenant,
                    "name": name,
                    "version": version,
                    "definition": text,
                    "description": description,
                    "now": now,
                },
            )

        await self.store.transaction(tx_fn)
        self._forget_head(tenant, name)
        return await self.get_template(tenant, name)

    async def update_template(
        self, tenant: str, name: str, definition: dict[str, Any], description: str | None
    ) -> dict[str, Any]:
        self.check_definition(definition)
        now = time.time()
        text = _dumps(definition)

        def tx_fn(tx: Any) -> None:
            head = tx.fetch_one("stepflow.get_template_head", {"tenant": tenant, "name": name})
            if head is None:
                raise NotFound(f"workflow {name!r} not found")
            desc = description if description is not None else head["description"]
            row = tx.fetch_one(
                "stepflow.bump_template", {"tenant": tenant, "name": name, "description": desc, "now": now}
            )
            tx.execute(
                "stepflow.insert_version",
                {
                    "tenant": tenant,
                    "name": name,
                    "version": row["latest_version"],
                    "definition": text,
                    "description": desc,
                    "now": now,
                },
            )

        await self.store.transaction(tx_fn)
        self._forget_head(tenant, name)
        return await self.get_template(tenant, name)

    async def get_template(self, tenant: str, name: str, version: int | None = None) -> dict[str, Any]:
        row = await self.store.fetch_one("stepflow.get_template", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"workflow {name!r} not found")
        if version is not None and version != row["version"]:
            v = await self.store.fetch_one("stepflow.get_version", {"tenant": tenant, "name": name, "version": version})
            if v is None:
                raise NotFound(f"workflow {name!r} has no version {version}")
            row = {**row, "version": version, "definition": v["definition"], "created_at": v["created_at"]}
        return self._template_out(row)

    async def list_templates(self, tenant: str, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "stepflow.list_templates", {"tenant": tenant, "cursor": cursor, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [self._template_out(r, False) for r in rows],
            "next_cursor": rows[-1]["name"] if more else None,
        }

    async def list_versions(self, tenant: str, name: str, limit: int, cursor: str | None) -> dict[str, Any]:
        if await self.store.fetch_one("stepflow.get_template_head", {"tenant": tenant, "name": name}) is None:
            raise NotFound(f"workflow {name!r} not found")
        rows = await self.store.fetch_all(
            "stepflow.list_versions",
            {"tenant": tenant, "name": name, "cursor": int_cursor(cursor), "limit": limit + 1},
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": rows, "next_cursor": str(rows[-1]["version"]) if more else None}

    async def delete_template(self, tenant: str, name: str) -> dict[str, Any]:
        """Delete a workflow and all its versions (as Step Functions deletes a state machine's).

        Its executions stay readable by id (envelope and history keep what they ran); a workflow
        with RUNNING executions is not deleted (409: cancel them or let them finish), because
        resuming one after a restart needs its version's definition."""
        out = await self.get_template(tenant, name)

        def tx_fn(tx: Any) -> None:
            running = tx.fetch_one("stepflow.running_of_workflow", {"tenant": tenant, "name": name})["n"]
            running = running or sum(1 for r in self.runs.values() if r.tenant == tenant and r.workflow == name)
            if running:
                raise Conflict(
                    f"workflow {name!r} has {running} RUNNING execution(s); cancel them "
                    f"(POST /api/v1/executions/{{id}}/cancel) or let them finish, then delete it"
                )
            tx.execute("stepflow.delete_template", {"tenant": tenant, "name": name})
            tx.execute("stepflow.purge_retired_versions", {"tenant": tenant, "name": name})
            tx.execute("stepflow.delete_unused_versions", {"tenant": tenant, "name": name})
            tx.execute("stepflow.retire_versions", {"tenant": tenant, "name": name, "stamp": f"{now:.6f}"})

        now = time.time()
        await self.store.transaction(tx_fn)
        self._forget_head(tenant, name)
        for key in [k for k in self._plans if k[0] == tenant and k[1] == name]:
            del self._plans[key]
        return out

    def _forget_head(self, tenant: str, name: str) -> None:
        """A template write committed: the next start reads its latest version again (and a
        read begun before this commit does not fill the cache with what it saw)."""
        self._heads.pop((tenant, name), None)
        self._heads_generation += 1

    async def _latest_version(self, tenant: str, name: str) -> tuple[int, bool]:
        """The template's latest version, and whether it came from this node's memory."""
        heads = self._heads
        version = heads.get((tenant, name))
        if version is not None:
            return version, True
        generation = self._heads_generation
        head = await self.store.fetch_one("stepflow.get_template_head", {"tenant": tenant, "name": name})
        if head is None:
            raise NotFound(f"workflow {name!r} not found")
        version = head["latest_version"]
        if generation == self._heads_generation:
            if len(heads) >= 4 * self.config.plan_cache_size:
                heads.clear()
            heads[(tenant, name)] = version
        return version, False

    async def execution_definition(self, tenant: str, envelope: dict[str, Any]) -> dict[str, Any]:
        """The definition an execution ran, also once its workflow was deleted (or created again)."""
        row = await self.store.fetch_one(
            "stepflow.execution_definition",
            {
                "tenant": tenant,
                "name": envelope["workflow"],
                "version": envelope["version"],
                "started_at": envelope["started_at"],
            },
        )
        return {} if row is None else jsonutil.loads(row["definition"])

    async def plan(self, tenant: str, name: str, version: int) -> Plan:
        """The compiled plan of one version (compiled once, cached). Concurrent starts of a
        version not in the cache wait for the first one's compile rather than each compiling
        it (a thousand at once held the loop for as many compiles); when that one fails or is
        cancelled, the next of them tries."""
        key = (tenant, name, version)
        while True:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
            busy = self._compiling.get(key)
            if busy is None:
                break
            await asyncio.shield(busy)  # (a waiter that goes away leaves it to the others)
        busy = self._compiling[key] = running_loop().create_future()
        try:
            row = await self.store.fetch_one(
                "stepflow.get_version", {"tenant": tenant, "name": name, "version": version}
            )
            if row is None:
                raise NotFound(f"workflow {name!r} version {version} not found")
            plan = compile_workflow(jsonutil.loads(row["definition"]))
            self._plans[key] = plan
            while len(self._plans) > self.config.plan_cache_size:
                self._plans.popitem(last=False)
            return plan
        finally:
            del self._compiling[key]
            busy.set_result(None)

    # ------------------------------------------------------------------ executions
    async def start(
        self,
        tenant: str,
        name: str,
        input: Any,
        *,
        version: int | None = None,
        mode: str = "async",
        idempotency_key: str | None = None,
        parent_id: str | None = None,
        trace_id: str | None = None,
        wait_seconds: float | None = None,
        redaction: SecretSet | None = None,
        on_behalf_of: Any = None,
    ) -> tuple[dict[str, Any], bool]:
        """Start an execution; returns (envelope, finished). `sync` waits up to the bound.
        `redaction`: the set of the run or call that starts it (its input may hold their secrets).
        `on_behalf_of`: the principal starting it; its policies apply to the run's bus calls."""
        try:
            size = len(jsonutil.dumps(input))
        except TypeError as exc:
            raise field_error("input", f"not representable as JSON: {exc}") from None
        if size > self.payload_max_bytes:
            raise PayloadTooLarge(
                f"input: {size} bytes is over the payload limit of {self.payload_max_bytes} bytes",
                details=[
                    {
                        "field": "input",
                        "message": f"larger than {self.payload_max_bytes} bytes",
                        "limit": self.payload_max_bytes,
                    }
                ],
            )
        remembered = False
        if version is None:
            version, remembered = await self._latest_version(tenant, name)
        if idempotency_key is not None:
            found = await self.store.fetch_one(
                "stepflow.execution_by_idempotency", {"tenant": tenant, "workflow": name, "key": idempotency_key}
            )
            if found is not None:
                return await self._started_answer(found["id"], mode, wait_seconds)
        plan = await self.plan(tenant, name, version)
        now = time.time()
        run = Run(
            id=new_execution_id(),
            tenant=tenant,
            workflow=name,
            version=version,
            plan=plan,
            root=new_root(plan, input),
            input=input,
            started_at=now,
            trace_id=trace_id or telemetry.new_trace_id(),
            next_seq=1,
            parent_id=parent_id,
            deadline=now + plan.root.timeout_seconds if plan.root.timeout_seconds else None,
        )
        run.idempotency_key = idempotency_key
        run.on_behalf_of = on_behalf_of
        if remembered and self._heads_shared:
            run.head_check = version
        if redaction is not None:  # what the parent resolved is masked in the child's records too
            run.redaction = SecretSet.within(redaction)
        run.event("ExecutionStarted", detail={"input": input, "version": version, "parent_id": parent_id})
        # the execution row is inserted by its first checkpoint (together with the events up
        # to the first task, wait or end): start answers once that has committed
        self._launch(run)
        try:
            # (not shielded: only this call waits for it, and the engine sets it only while
            # it is not done, so a caller that goes away just stops waiting)
            await run.first_durable
        except StaleHead:
            # another node wrote a new version since this one remembered the latest: nothing of
            # this run was stored (nor done: a run's first checkpoint comes before its first
            # call); it starts again on the stored head, which is not checked again
            self._forget_head(tenant, name)
            self.stats["stale_heads"] += 1
            return await self.start(
                tenant,
                name,
                input,
                mode=mode,
                idempotency_key=idempotency_key,
                parent_id=parent_id,
                trace_id=trace_id,
                wait_seconds=wait_seconds,
                redaction=redaction,
                on_behalf_of=on_behalf_of,
            )
        except UniqueViolation:
            found = await self.store.fetch_one(
                "stepflow.execution_by_idempotency", {"tenant": tenant, "workflow": name, "key": idempotency_key}
            )
            if found is None:
                raise
            return await self._started_answer(found["id"], mode, wait_seconds)
        return await self._started_answer(run.id, mode, wait_seconds)

    async def _started_answer(
        self, execution_id: str, mode: str, wait_seconds: float | None
    ) -> tuple[dict[str, Any], bool]:
        run = self.runs.get(execution_id)
        if run is None:
            envelope = await self.envelope_by_id(execution_id)
            return envelope, envelope["status"] in TERMINAL
        if mode == "sync" and not run.done.is_set():
            try:  # (a timeout scope, not wait_for: no task of its own per request)
                async with asyncio.timeout(wait_seconds or self.config.sync_wait_seconds):
                    await run.done.wait()
            except TimeoutError:
                pass
        envelope = self.envelope_of(run)
        return envelope, envelope["status"] in TERMINAL

    def envelope_of(self, run: Run) -> dict[str, Any]:
        """The envelope of an execution held in memory (what its last checkpoint recorded)."""
        terminal = run.status in TERMINAL and run.done.is_set()
        status = run.status if terminal else "RUNNING"
        return self.envelope(
            {
                "id": run.id,
                "tenant": run.tenant,
                "workflow": run.workflow,
                "version": run.version,
                "status": status,
                "input": self._redact_text(run, _dumps(run.input)),
                "output": self._redact_text(run, _dumps(run.output)) if status == "SUCCEEDED" else None,
                "error": self._redact_text(run, _dumps(run.error)) if terminal and run.error is not None else None,
                "started_at": run.started_at,
                "stopped_at": run.stopped_at if terminal else None,
                "trace_id": run.trace_id,
                "redrive_count": run.redrive_count,
            }
        )

    def _snapshot(self, run: Run) -> str:
        snap: dict[str, Any] = {"root": run.root.to_dict()}
        if run.on_behalf_of is not None:  # who started it: restored on resume (no secret in it)
            snap["principal"] = principal_record(run.on_behalf_of)
        return self._redact_text(run, _dumps(snap))

    def _event_rows(self, run: Run, events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of `Run.pending`, with the run's resolved secrets masked in their details."""
        if not run.redaction:
            return events
        redact = run.redaction.json_text
        return [(*ev[:6], None if ev[6] is None else redact(ev[6])) for ev in events]

    def _redact_text(self, run: Run, text: str) -> str:
        """Mask the run's resolved secrets (and their encoded forms) in a JSON document."""
        return run.redaction.json_text(text)

    def register_secret(self, run: Run, value: Any) -> None:
        """Keep a resolved secret out of everything recorded for this run (values resolved
        through the run's `CallContext.secrets` join it already)."""
        run.redaction.add(value)

    async def persist(
        self,
        run: Run,
        events: list[Any],
        timer_adds: dict[str, float],
        timer_dels: set[str],
        tokens: list[tuple[str, str]],
    ) -> None:
        """One checkpoint: the execution row, new history events, timers and tokens, in one transaction.
        (`Run.event` keeps the history within `max_history_events` before anything gets here.)"""
        terminal = run.status in TERMINAL
        # children of these map/parallel entries are new in this snapshot: their old item rows go
        scopes, run.item_scopes = run.item_scopes, set()
        row = {
            "id": run.id,
            "status": run.status,
            "snapshot": self._snapshot(run),
            "next_seq": run.next_seq,
            "output": self._redact_text(run, _dumps(run.output)) if terminal and run.status == "SUCCEEDED" else None,
            "error": self._redact_text(run, _dumps(run.error)) if run.error is not None else None,
            "stopped_at": run.stopped_at,
            "redrive_count": run.redrive_count,
            "deadline": run.deadline,
            "owner": self.cluster.node_id,
            "epoch": run.epoch,
        }
        event_rows = self._event_rows(run, events)
        now = time.time()
        timer_rows = [(run.id, frame, run.tenant, due) for frame, due in timer_adds.items()]
        stored = run.stored_timers
        del_rows = [(run.id, f) for f in timer_dels if f not in timer_adds and (stored is None or f in stored)]
        token_rows = [(token, run.id, run.tenant, frame, now) for token, frame in tokens]

        insert = None
        if not run.inserted:
            insert = {
                "id": run.id,
                "tenant": run.tenant,
                "workflow": run.workflow,
                "version": run.version,
                "input": self._redact_text(run, _dumps(run.input)),
                "status": row["status"],
                "output": row["output"],
                "error": row["error"],
                "started_at": run.started_at,
                "stopped_at": run.stopped_at,
                "deadline": run.deadline,
                "trace_id": run.trace_id,
                "snapshot": row["snapshot"],
                "next_seq": run.next_seq,
                "parent_id": run.parent_id,
                "idempotency_key": run.idempotency_key,
                "owner": self.cluster.node_id,
                "epoch": run.epoch,
                "head": run.head_check,
            }

        follow_known = insert is not None or (run.gapless and not run.stored_items)
        recheck = run.quota_recheck  # a redrive: RUNNING again, within the tenant's quota

        tx_fn = _CheckpointTx(
            self, run, row, insert, event_rows, follow_known, recheck, del_rows, timer_rows, token_rows, scopes
        )
        if await self.store.transaction(tx_fn, replayable=True):
            self.rt.quotas.started(run.tenant, run.started_at)
        if recheck:
            run.quota_recheck = False
        if stored is not None:
            stored.difference_update(timer_dels)
            stored.update(timer_adds)
        self.cluster.touch(run.id)  # watchers of this execution on other nodes look again
        if terminal:
            finished = self._finished_counters.get(run.status)
            if finished is None:
                finished = self._finished_counters[run.status] = self.metrics.executions_finished.labels(run.status)
            finished.inc()
        if insert is not None:
            run.inserted = True
            run.gapless = True
            self.metrics.executions_started.inc()
            await self._publish(run, "RUNNING")

    async def broken(self, run: Run, exc: BaseException) -> None:
        """A checkpoint failed (store error): forget the in-memory run; if it was ever
        committed, resume it from its last checkpoint a moment later."""
        if self.runs.get(run.id) is run:
            self.runs.pop(run.id, None)
            self.stats["running"] = len(self.runs)
        if isinstance(exc, LeaseLost) or run.fenced:
            if not run.fenced and not self.cluster.fenced and not self._stopping:
                # refused under a stale epoch while this node holds its leases: this node's own
                # claim may have raised it (a checkpoint queued before the claim took effect);
                # resumed here from the last checkpoint if the execution is still this node's
                self.rt.spawn(self._resume_later(run.id, 0.1), f"stepflow-resume-{run.id}")
            run.fenced = True
            self.cluster.stats["lease_lost"] += 1
            log.warning("execution %s: this node lost its lease; it stops here (another node runs it)", run.id)
            return
        if run.inserted and not self._stopping:
            log.warning("execution %s: checkpoint failed (%s); resuming from the last checkpoint", run.id, exc)
            self.rt.spawn(self._resume_later(run.id), f"stepflow-resume-{run.id}")

    async def _resume_later(self, execution_id: str, delay: float = 1.0) -> None:
        await asyncio.sleep(delay)
        while not self._stopping and execution_id not in self.runs:
            try:
                row = await self.store.fetch_one("stepflow.get_execution", {"id": execution_id})
                if row is None or row["status"] != "RUNNING":
                    return
                if self.cluster.enabled and row["owner"] != self.cluster.node_id:
                    return  # another node claimed it meanwhile
                run = await self._load_run(row)
                run.event("ExecutionResumed", detail={"after_seq": run.next_seq - 1})
                self._launch(run)
                return
            except AionixError as exc:
                log.warning("execution %s: cannot resume yet (%s)", execution_id, exc)
                await asyncio.sleep(delay)

    async def finished(self, run: Run) -> None:
        self.runs.pop(run.id, None)
        self.stats["running"] = len(self.runs)
        await self._publish(run)

    async def _publish(self, run: Run, status: str | None = None) -> None:
        if not self.rt.event_sinks and getattr(self.rt, "_held_events", None) is None:
            return  # nobody subscribes (no triggers service): nothing to build
        detail = {
            "execution_id": run.id,
            "trn": f"trn:stepflow:{run.tenant}:execution/{run.id}",
            "workflow": run.workflow,
            "version": run.version,
            "status": status or run.status,
            "error": run.redaction.value(run.error),
            "started_at": run.started_at,
            "stopped_at": run.stopped_at,
        }
        if (status or run.status) == "SUCCEEDED":
            detail["output"] = jsonutil.loads(self._redact_text(run, _dumps(run.output)))
        await self.rt.publish_event(run.tenant, EVENT_SOURCE, "Execution Status Change", detail)

    # ------------------------------------------------------------------ reading
    async def _row(self, tenant: str | None, execution_id: str) -> dict[str, Any]:
        row = await self.store.fetch_one("stepflow.get_execution", {"id": execution_id})
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise NotFound(f"execution {execution_id!r} not found")
        return row

    @staticmethod
    def envelope(row: dict[str, Any]) -> dict[str, Any]:
        stopped = row.get("stopped_at")
        return {
            "execution_id": row["id"],
            "trn": f"trn:stepflow:{row['tenant']}:execution/{row['id']}",
            "workflow": row["workflow"],
            "version": row["version"],
            "status": row["status"],
            "input": _loads(row.get("input")),
            "output": _loads(row.get("output")),
            "error": _loads(row.get("error")),
            "started_at": row["started_at"],
            "stopped_at": stopped,
            "duration_ms": round((stopped - row["started_at"]) * 1000, 3) if stopped else None,
            "trace_id": row.get("trace_id"),
            "usage": ai_usage.of(row["id"]),
            "redrive_count": row.get("redrive_count") or 0,
        }

    async def envelope_by_id(self, execution_id: str, tenant: str | None = None) -> dict[str, Any]:
        run = self.runs.get(execution_id)
        if run is not None and (tenant is None or run.tenant == tenant):
            return self.envelope_of(run)
        return self.envelope(await self._row(tenant, execution_id))

    async def list_executions(
        self,
        tenant: str,
        *,
        workflow: str | None,
        status: str | None,
        since: float | None,
        until: float | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "stepflow.list_executions",
            {
                "tenant": tenant,
                "workflow": workflow,
                "status": status,
                "since": since,
                "until": until,
                "cursor": cursor,
                "limit": limit + 1,
            },
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [self.envelope(r) for r in rows], "next_cursor": rows[-1]["id"] if more else None}

    async def history(self, tenant: str, execution_id: str, after: int, limit: int) -> dict[str, Any]:
        await self._row(tenant, execution_id)
        rows = await self.store.fetch_all("stepflow.history", {"id": execution_id, "after": after, "limit": limit + 1})
        more = len(rows) > limit
        rows = rows[:limit]
        for r in rows:
            r["detail"] = _loads(r["detail"])
        return {"items": rows, "next_cursor": str(rows[-1]["seq"]) if more else None}

    async def wait_update(self, execution_id: str, timeout: float) -> None:
        """Wait until the execution commits a checkpoint (or `timeout`)."""
        run = self.runs.get(execution_id)
        if run is None:
            if not self.cluster.enabled:
                await asyncio.sleep(min(timeout, 0.25))
                return
            # another node runs it: its checkpoints are announced (`_on_touched`); the waiter
            # looks again at least every second whatever it hears
            ev = asyncio.Event()
            watchers = self._watchers.setdefault(execution_id, set())
            watchers.add(ev)
            try:
                await asyncio.wait_for(ev.wait(), min(timeout, 1.0))
            except TimeoutError:
                pass
            finally:
                watchers.discard(ev)
                if not watchers:
                    self._watchers.pop(execution_id, None)
            return
        try:
            if run.updated is None:  # (made for the first watcher; each checkpoint sets it)
                run.updated = asyncio.Event()
            await asyncio.wait_for(run.updated.wait(), timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ control
    async def cancel(self, tenant: str, execution_id: str, reason: str = "cancelled by request") -> dict[str, Any]:
        row = await self._row(tenant, execution_id)
        if row["status"] in TERMINAL:
            raise Conflict(f"execution {execution_id} is already {row['status']}")
        run = self.runs.get(execution_id)
        if run is None and self.cluster.enabled:
            final = await self._cancel_elsewhere(tenant, execution_id, reason)
            if final is not None:
                await self._cancel_children(tenant, execution_id)
                return final
            row = await self._row(tenant, execution_id)
            if row["status"] in TERMINAL:
                raise Conflict(f"execution {execution_id} is already {row['status']}")
            run = self.runs.get(execution_id)
        if run is not None:
            run.abort_reason = reason
            if run.task is not None:
                run.task.cancel()
            await run.done.wait()
            if run.status == "RUNNING" and not run.fenced:
                # cancelled before its task began (just resumed here): it stops as below
                if self.runs.get(run.id) is run:
                    self.runs.pop(run.id, None)
                    self.stats["running"] = len(self.runs)
                row = await self._row(tenant, execution_id)
                if row["status"] in TERMINAL:
                    return self.envelope(row)
                run = None
        if run is None:
            run = await self._load_run(row)
            run.abort_reason = reason
            self.engine._mark_aborted(run.root)
            run.status, run.error, run.stopped_at = "ABORTED", {"error": "States.Aborted", "cause": reason}, time.time()
            run.event("ExecutionAborted", detail=run.error)
            await self.engine.checkpoint(run)
            run.done.set()  # ended here, without a task: its envelope is the final one
            await self._publish(run)
        final = self.envelope_of(run)
        await self._cancel_children(tenant, execution_id)
        return final

    async def _cancel_children(self, tenant: str, execution_id: str) -> None:
        for child in await self.store.fetch_all("stepflow.running_children", {"id": execution_id}):
            try:
                await self.cancel(tenant, child["id"], f"parent execution {execution_id} was cancelled")
            except (Conflict, NotFound):
                pass

    async def _cancel_elsewhere(self, tenant: str, execution_id: str, reason: str) -> dict[str, Any] | None:
        """Many nodes, and another node runs it: ask that node (a NOTIFY) and wait for the end
        it records. The answer, or None when this node took the lease to abort it here (its
        owner is gone or did not answer within a lease)."""
        cluster = self.cluster
        deadline = time.monotonic() + cluster.lease_seconds + 2.0
        while True:
            own = await self.store.fetch_one(
                "stepflow.execution_owner", {"id": execution_id, "lease": cluster.lease_seconds}
            )
            if own is None:
                raise NotFound(f"execution {execution_id!r} not found")
            if own["status"] in TERMINAL:
                return self.envelope(await self._row(tenant, execution_id))
            if own["owner_live"] and own["owner"] != cluster.node_id and time.monotonic() < deadline:
                await cluster.notify("cancel", {"id": execution_id, "reason": reason}, to=own["owner"])
                while time.monotonic() < deadline:
                    await self.wait_update(execution_id, 0.5)
                    row = await self._row(tenant, execution_id)
                    if row["status"] in TERMINAL:
                        return self.envelope(row)
                continue  # no answer within a lease: take it over below
            async with self._claiming:
                if execution_id in self.runs:
                    return None
                params = {"id": execution_id, "epoch": own["epoch"], "node": cluster.node_id}
                claimed = await self.store.transaction(lambda tx, p=params: tx.fetch_all("stepflow.claim_execution", p))
            if claimed:
                return None  # ours now (the higher epoch fences the old owner): aborted here
            if time.monotonic() > deadline + cluster.lease_seconds:
                raise Conflict(f"execution {execution_id} is moving between nodes; try again")
            await asyncio.sleep(0.05)  # another node claimed it at the same moment: look again

    async def redrive(self, tenant: str, execution_id: str) -> dict[str, Any]:
        row = await self._row(tenant, execution_id)
        if row["status"] not in ("FAILED", "TIMED_OUT", "ABORTED"):
            raise Conflict(f"only FAILED, TIMED_OUT or ABORTED executions can be redriven; this one is {row['status']}")
        if execution_id in self.runs:
            raise Conflict(f"execution {execution_id} is still stopping; try again")
        ran = await self.store.fetch_one(
            "stepflow.get_version", {"tenant": tenant, "name": row["workflow"], "version": row["version"]}
        )
        if ran is None or ran["created_at"] > row["started_at"]:  # deleted (and perhaps created again)
            raise Conflict(
                f"execution {execution_id} cannot be redriven: workflow {row['workflow']!r} version "
                f"{row['version']} that it ran was deleted; start a new execution instead"
            )
        run = await self._load_run(row)
        reset_for_redrive(run.root)
        run.status, run.error, run.output, run.stopped_at = "RUNNING", None, None, None
        run.redrive_count += 1
        if run.plan.root.timeout_seconds:
            run.deadline = time.time() + run.plan.root.timeout_seconds
        run.event("ExecutionRedriven", detail={"redrive_count": run.redrive_count})
        run.quota_recheck = True  # concurrent_executions, in the checkpoint
        self.runs[run.id] = run
        try:
            await self.engine.checkpoint(run)
        except BaseException:
            self.runs.pop(run.id, None)
            raise
        run.task = self.rt.spawn(self.engine.run(run), f"stepflow-{run.id}")
        await self._publish(run)
        return self.envelope_of(run)

    # ------------------------------------------------------------------ callbacks
    async def token_outcome(self, token: str | None) -> dict[str, Any] | None:
        if token is None:
            return None
        row = await self.store.fetch_one("stepflow.get_token", {"token": token})
        if row is None or row["status"] is None:
            return None
        return {"status": row["status"], "output": _loads(row["output"]), "error": row["error"], "cause": row["cause"]}

    async def callback(self, tenant: str, token: str, outcome: str, body: Any) -> dict[str, Any]:
        """Settle (or heartbeat) a callback task. The token is read and settled inside one
        write transaction, so a token committed a moment ago is always found."""
        output = body.output if body is not None else None
        if outcome == "success":
            size = len(jsonutil.dumps(output))
            if size > self.payload_max_bytes:
                raise PayloadTooLarge(
                    f"output: {size} bytes is over the payload limit of {self.payload_max_bytes} bytes",
                    details=[{"field": "output", "message": f"larger than {self.payload_max_bytes} bytes"}],
                )
        settled = {
            "token": token,
            "status": outcome,
            "output": _dumps(output) if outcome == "success" else None,
            "error": (body.error if body and body.error else plan_mod.TASK_FAILED) if outcome == "failure" else None,
            "cause": body.cause if body is not None and outcome == "failure" else None,
            "now": time.time(),
        }
        waiting = next((r for r in self.runs.values() if token in r.callbacks), None)
        if waiting is not None:  # what is stored for a restart is masked like the run's history
            settled["output"] = waiting.redaction.json_text(settled["output"])
            settled["cause"] = waiting.redaction.text(settled["cause"])

        def tx_fn(tx: Any) -> str:
            row = tx.fetch_one("stepflow.get_token", {"token": token})
            if row is None or row["tenant"] != tenant:
                raise NotFound("task token not found")
            if row["status"] is not None:
                raise Conflict(f"this task token was already settled ({row['status']})")
            if outcome != "heartbeat":
                tx.execute("stepflow.settle_token", settled)
            return row["execution_id"]

        execution_id = await self.store.transaction(tx_fn)
        run = self.runs.get(execution_id)
        if run is None:
            if self.cluster.enabled:  # the node that runs it hears of it (`_on_token`)
                await self.cluster.notify("token", {"execution_id": execution_id, "token": token, "outcome": outcome})
            return {"token": token, "accepted": True}
        if outcome == "heartbeat":
            if token in run.heartbeats:
                run.heartbeats[token].set()
            return {"token": token, "accepted": True}
        waiter = run.callbacks.get(token)
        if waiter is not None and not waiter.done():
            waiter.set_result(
                {"status": outcome, "output": output, "error": settled["error"], "cause": settled["cause"]}
            )
        return {"token": token, "accepted": True}

    # ------------------------------------------------------------------ children and the bus
    async def run_child(self, parent: Run, action: str, parameters: Any, ctx: CallContext) -> Any:
        """A task whose action is a template: start it (idempotently) and wait for its end."""
        try:
            target = trnlib.parse(action)
        except AionixError as exc:
            raise Failure(plan_mod.RUNTIME, exc.message) from None
        if target.type != "template" or target.tenant != parent.tenant:
            raise Failure(plan_mod.RUNTIME, f"{action} is not a workflow template of this tenant")
        version = None
        if target.qualifier is not None:
            if not (target.qualifier.isascii() and target.qualifier.isdigit() and len(target.qualifier) <= 18):
                raise Failure(plan_mod.RUNTIME, f"{action}: the qualifier must be a version number")
            version = int(target.qualifier)
        try:
            envelope, _ = await self.start(
                parent.tenant,
                target.path,
                parameters,
                version=version,
                idempotency_key=ctx.idempotency_key,
                parent_id=parent.id,
                trace_id=parent.trace_id,
                redaction=parent.redaction,
                on_behalf_of=parent.on_behalf_of,  # a child calls as its parent's starter
            )
        except AionixError as exc:
            raise Failure(plan_mod.TASK_FAILED, exc.message) from None
        child_id = envelope["execution_id"]
        try:
            final = await self.wait_terminal(child_id)
        except asyncio.CancelledError:
            if parent.abort_reason is not None and child_id in self.runs:
                child = self.runs[child_id]
                child.abort_reason = f"parent execution {parent.id} was cancelled"
                if child.task is not None:
                    child.task.cancel()
            raise
        if final["status"] == "SUCCEEDED":
            return final["output"]
        error = final.get("error") or {}
        raise Failure(
            error.get("error") or plan_mod.TASK_FAILED,
            error.get("cause") or f"child execution {child_id} {final['status']}",
        )

    async def wait_terminal(self, execution_id: str) -> dict[str, Any]:
        while True:
            run = self.runs.get(execution_id)
            if run is not None:
                await run.done.wait()
                if run.status in TERMINAL:
                    return self.envelope_of(run)
            envelope = await self.envelope_by_id(execution_id)
            if envelope["status"] in TERMINAL:
                return envelope
            if self.cluster.enabled and execution_id not in self.runs:
                await self.wait_update(execution_id, 1.0)  # another node runs it
            else:
                await asyncio.sleep(0.1)

    async def execute(self, target: trnlib.TRN, payload: Any, ctx: CallContext) -> dict[str, Any]:
        """Bus executor for `trn:stepflow:{tenant}:template/{name}[:{version}]`."""
        if target.type != "template":
            raise BadRequest(f"{target} cannot be invoked; address a template")
        if not isinstance(payload, dict):
            raise BadRequest("payload must be an object {input, mode, idempotency_key}")
        mode = payload.get("mode", "async")
        if mode not in ("sync", "async"):
            raise BadRequest("mode must be sync or async")
        q = target.qualifier
        version = int(q) if q and q.isascii() and q.isdigit() and len(q) <= 18 else None
        if target.qualifier and version is None:
            raise BadRequest("a template qualifier must be a version number")
        envelope, _ = await self.start(
            target.tenant,
            target.path,
            payload.get("input"),
            version=version,
            mode=mode,
            idempotency_key=payload.get("idempotency_key") or ctx.idempotency_key,
            trace_id=ctx.trace_id,
            redaction=ctx.secrets,
            on_behalf_of=ctx.on_behalf_of,
        )
        return envelope

    async def resolve(self, target: trnlib.TRN) -> dict[str, Any] | None:
        try:
            if target.type == "template":
                return await self.get_template(target.tenant, target.path)
            return await self.envelope_by_id(target.path, target.tenant)
        except NotFound:
            return None

    # ------------------------------------------------------------------ retention
    async def prune(self) -> int:
        """Delete finished executions beyond the per-workflow count and older than the age."""
        deleted = 0
        keep = self.config.retention_max_per_workflow
        for group in await self.store.fetch_all("stepflow.workflows_with_executions"):
            if group["n"] <= keep:
                continue
            ids = await self.store.fetch_all(
                "stepflow.retention_candidates",
                {"tenant": group["tenant"], "workflow": group["workflow"], "keep": keep},
            )
            deleted += await self._delete([r["id"] for r in ids])
        while True:
            ids = await self.store.fetch_all(
                "stepflow.expired_executions",
                {"before": time.time() - self.config.retention_days * 86400, "limit": 1000},
            )
            if not ids:
                break
            deleted += await self._delete([r["id"] for r in ids])
        return deleted

    async def _delete(self, ids: list[str]) -> int:
        for start in range(0, len(ids), 500):
            batch = [(i,) for i in ids[start : start + 500]]

            def tx_fn(tx: Any, batch: list[tuple[str]] = batch) -> None:
                tx.executemany("stepflow.delete_history", batch)
                tx.executemany("stepflow.delete_tokens", batch)
                tx.executemany("stepflow_maps.delete_map_batches", batch)  # distributed Map runs
                tx.executemany("stepflow_maps.delete_map_runs", batch)
                tx.executemany("stepflow_items.clear_execution", batch)
                tx.executemany("stepflow.delete_execution", batch)

            await self.store.transaction(tx_fn)
        return len(ids)

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval_seconds)
            try:
                await self.prune()
            except Exception:
                log.exception("stepflow retention pruning failed")


class _CheckpointTx:
    """The transaction of one checkpoint (`StepFlowService.persist`). Replayable
    (`Store.transaction`): it writes only through `tx`, so it may run twice. An object rather
    than a closure: a closure keeps a cell per name it uses, each one more container for the
    garbage collector to scan while the commit is pending."""

    __slots__ = (
        "del_rows",
        "events",
        "follow_known",
        "fused",
        "insert",
        "recheck",
        "row",
        "run",
        "scopes",
        "svc",
        "terminal",
        "timer_rows",
        "token_rows",
    )

    def __init__(
        self,
        svc: StepFlowService,
        run: Run,
        row: dict[str, Any],
        insert: dict[str, Any] | None,
        events: list[tuple[Any, ...]],
        follow_known: bool,
        recheck: bool,
        del_rows: list[tuple[str, str]],
        timer_rows: list[tuple[Any, ...]],
        token_rows: list[tuple[Any, ...]],
        scopes: set[str],
    ) -> None:
        self.svc, self.run, self.row, self.insert, self.events = svc, run, row, insert, events
        self.follow_known, self.recheck, self.scopes = follow_known, recheck, scopes
        self.del_rows, self.timer_rows, self.token_rows = del_rows, timer_rows, token_rows
        self.terminal = run.status in TERMINAL
        # the insert writes the row with this status, result, snapshot, sequence, deadline,
        # owner and epoch: for a run never redriven it is the checkpoint too
        self.fused = insert is not None and not run.redrive_count

    def __call__(self, tx: Any) -> bool:
        run, insert, events = self.run, self.insert, self.events
        count = False
        inserted_is_checkpoint = self.fused
        if insert is not None:
            # the tenant's quotas, atomically with the insert (429 quota_exceeded otherwise)
            count = self.svc.rt.quotas.on_start_tx(tx, run.tenant, run.started_at)
            if inserted_is_checkpoint:  # the row and the events together (one round trip on PostgreSQL)
                added = tx.execute_then_insert("stepflow.insert_execution", insert, "stepflow.insert_event", events)
                events = []
            else:
                added = tx.execute("stepflow.insert_execution", insert)
            if not added:
                raise StaleHead(f"workflow {run.workflow!r}: version {run.head_check} is no longer the latest")
        elif self.recheck:
            self.svc.rt.quotas.check_running_tx(tx, run.tenant)
        if not inserted_is_checkpoint:
            if self.follow_known:  # the row and the events together (one round trip on PostgreSQL)
                changed = tx.execute_then_insert(
                    "stepflow.checkpoint_execution", self.row, "stepflow.insert_event", events
                )
                events = []
            else:
                changed = tx.execute("stepflow.checkpoint_execution", self.row)
            if not changed:
                # fencing: another node claimed this execution (a higher epoch) since we did
                raise LeaseLost(f"execution {run.id}: another node holds its lease now (epoch {run.epoch} is stale)")
        # never past a hole left by a failed transaction of this run (none can be: a start,
        # or a run whose every transaction so far was a checkpoint that committed)
        if events and not self.follow_known:
            follows(tx, run.id, events[0][1])
        tx.executemany("stepflow.insert_event", events)
        if self.del_rows:
            tx.executemany("stepflow.delete_timer", self.del_rows)
        if self.timer_rows:
            tx.executemany("stepflow.upsert_timer", self.timer_rows)
        if self.token_rows:
            tx.executemany("stepflow.insert_token", self.token_rows)
        if self.scopes or self.terminal:
            self.svc.engine.items.persist(tx, run, self.scopes, self.terminal)
        return count
