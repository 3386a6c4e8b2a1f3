"""Pre-execution simulation: feasibility, cost, duration p50/p95 and risks of a workflow run (or
a list of skill steps), computed only from definitions, lookups and recorded history: nothing
is executed, no connector, function or model is called, nothing is written.

Durations: each state's p50/p95 come from its recorded durations in this workflow's history
(StateEntered -> StateExited), else from the skill (function invocation records), else a
default per state type (`wait`: its seconds). A sequence adds up, weighted by the probability
of reaching each state (router branches from how often history took them, else evenly); a
`parallel` takes its slowest branch (the critical path); a `map` runs ceil(items/concurrency)
waves of its processor. When the stored workflow has finished executions, the whole-run
estimate is their observed p50/p95 (`duration_source: history`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aionix.agents.skills import SAMPLES, Skills, percentiles
from aionix.errors import AionixError, field_error

if TYPE_CHECKING:
    from aionix.api.auth import Principal

STATE_DEFAULT_MS = 1.0
UNKNOWN_MAP_ITEMS = 10
HISTORY_EVENTS = 50_000


@dataclass
class Walk:
    tenant: str
    workflow: str | None
    input: Any
    state_ms: dict[str, list[float]]
    entered: dict[str, int]
    runs: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    risks: list[dict[str, Any]] = field(default_factory=list)
    checked_secrets: dict[str, Any] = field(default_factory=dict)
    checked_params: dict[str, bool] = field(default_factory=dict)
    #: recorded call durations by task target, loaded when a task has no other samples
    targets: dict[str, list[float]] | None = None


class Simulator:
    def __init__(self, skills: Skills) -> None:
        self.skills = skills
        self.rt = skills.rt

    async def simulate(self, principal: Principal, body: Any) -> dict[str, Any]:
        tenant = principal.tenant
        if body.steps is not None:
            result = await self._steps(tenant, body.steps)
        else:
            result = await self._workflow(principal, body)
        if not principal.at_least("operator"):
            result["problems"].append(
                {
                    "kind": "permission",
                    "pointer": "",
                    "message": f"running needs the operator role; this key has {principal.role}",
                }
            )
        cost = round(result["estimated_cost_usd"], 8)
        budget = body.budget_usd
        out = {
            "feasible": not result["problems"],
            "problems": result["problems"],
            "estimated_cost_usd": cost,
            "estimated_duration_ms": result["estimated_duration_ms"],
            "duration_source": result.get("duration_source", "model"),
            "step_estimates": result["steps"],
            "budget_usd": budget,
            "budget_sufficient": None if budget is None else cost <= budget,
            "budget_remaining_usd": None if budget is None else round(budget - cost, 8),
            "risks": result["risks"],
        }
        if budget is not None and cost > budget:
            out["risks"].append(
                {"rule": "over_budget", "pointer": "", "message": f"estimated ${cost} exceeds the budget ${budget}"}
            )
        return out

    # ------------------------------------------------------------------ a list of skill steps
    async def _steps(self, tenant: str, steps: list[Any]) -> dict[str, Any]:
        caps = await self.skills.capabilities(tenant)
        index = {
            item["skill"]: item
            for group in ("connectors", "functions", "actions", "intents", "workflows")
            for item in caps[group]
        }
        problems: list[dict[str, Any]] = []
        estimates: list[dict[str, Any]] = []
        p50 = p95 = cost = 0.0
        for i, step in enumerate(steps):
            item = index.get(step.skill)
            if item is None:
                problems.append(
                    {
                        "kind": "missing",
                        "pointer": f"/steps/{i}/skill",
                        "message": f"no skill {step.skill!r} for this tenant",
                    }
                )
                continue
            if item.get("available") is False:
                problems.append(
                    {
                        "kind": "not_installed",
                        "pointer": f"/steps/{i}/skill",
                        "message": f"{step.skill} is not installed",
                    }
                )
            lat = item.get("latency_ms") or {}
            s50 = float(lat.get("p50") or self.skills.config.default_task_latency_ms)
            s95 = float(lat.get("p95") or s50)
            scost = float(item.get("cost_usd") or 0.0) * step.count
            p50 += s50 * step.count
            p95 += s95 * step.count
            cost += scost
            estimates.append(
                {
                    "state": f"steps[{i}]",
                    "skill": step.skill,
                    "cost": round(scost, 8),
                    "latency": {
                        "p50": round(s50 * step.count, 3),
                        "p95": round(s95 * step.count, 3),
                        "samples": lat.get("samples", 0),
                    },
                    "probability": 1.0,
                }
            )
        return {
            "problems": problems,
            "risks": [],
            "steps": estimates,
            "estimated_cost_usd": cost,
            "estimated_duration_ms": {"p50": round(p50, 3), "p95": round(p95, 3)},
        }

    # ------------------------------------------------------------------ a workflow
    async def _workflow(self, principal: Principal, body: Any) -> dict[str, Any]:
        from aionix.stepflow.compile import compile_workflow

        tenant = principal.tenant
        stepflow = self.rt.services["stepflow"]
        name: str | None = None
        if body.workflow is not None:
            name = body.workflow
            definition = (await stepflow.get_template(tenant, name, body.version))["definition"]
        else:
            definition = body.definition
        report = await stepflow.validate(tenant, definition)
        problems = [{"kind": "invalid", "pointer": p.pointer, "message": p.message} for p in report.errors]
        if not report.valid:
            return {
                "problems": problems,
                "risks": [],
                "steps": [],
                "estimated_cost_usd": 0.0,
                "estimated_duration_ms": {"p50": None, "p95": None},
            }
        plan = compile_workflow(definition)
        state_ms: dict[str, list[float]] = {}
        entered: dict[str, set[str]] = {}
        runs = 0
        run_ms: list[float] = []
        if name is not None:
            rows = await self.rt.store.fetch_all(
                "agents.state_events", {"tenant": tenant, "workflow": name, "limit": HISTORY_EVENTS}
            )
            open_at: dict[tuple[str, str | None, str], float] = {}
            for row in rows:
                key = (row["execution_id"], row["frame"], row["state"])
                if row["type"] == "StateEntered":
                    open_at[key] = row["ts"]
                    entered.setdefault(row["state"], set()).add(row["execution_id"])
                elif key in open_at:
                    state_ms.setdefault(row["state"], []).append((row["ts"] - open_at.pop(key)) * 1000)
            runs = (
                await self.rt.store.fetch_one("agents.finished_count", {"tenant": tenant, "workflow": name}) or {}
            ).get("n") or 0
            run_ms = [
                float(r["duration_ms"])
                for r in await self.rt.store.fetch_all(
                    "agents.execution_durations", {"tenant": tenant, "workflow": name, "limit": SAMPLES}
                )
            ]
        walk = Walk(
            tenant, name, body.input, state_ms, {k: len(v) for k, v in entered.items()}, runs, problems=problems
        )
        p50, p95, cost = await self._machine(walk, plan.root, "", 1.0)
        duration = {"p50": round(p50, 3), "p95": round(p95, 3)}
        source = "model"
        if run_ms:
            observed = percentiles(run_ms)
            duration = {"p50": observed["p50"], "p95": observed["p95"]}
            source = "history"
        return {
            "problems": walk.problems,
            "risks": walk.risks,
            "steps": walk.steps,
            "estimated_cost_usd": cost,
            "estimated_duration_ms": duration,
            "duration_source": source,
        }

    async def _machine(self, walk: Walk, machine: Any, base: str, prob: float) -> tuple[float, float, float]:
        """Expected (p50, p95, cost) of one state graph, entered with probability `prob`."""
        reach: dict[str, float] = {machine.entry: 1.0}
        order: list[str] = []
        # breadth-first over the graph (cycles are visited once: a loop counts one pass)
        queue = [machine.entry]
        while queue:
            current = queue.pop(0)
            if current in order or current not in machine.states:
                continue
            order.append(current)
            state = machine.states[current]
            for succ, share in self._successors(walk, state):
                if succ not in order:
                    reach[succ] = min(1.0, reach.get(succ, 0.0) + reach[current] * share)
                    queue.append(succ)
        total50 = total95 = cost = 0.0
        for name in order:
            state = machine.states[name]
            p = reach[name]
            s50, s95, scost = await self._state(walk, state, f"{base}/states/{name}", prob * p)
            total50 += p * s50
            total95 += p * s95
            cost += p * scost
        return total50, total95, cost

    def _successors(self, walk: Walk, state: Any) -> list[tuple[str, float]]:
        if state.type == "router":
            targets = [r.next for r in state.routes] + ([state.default] if state.default else [])
            if not targets:
                return []
            counts = [walk.entered.get(t, 0) for t in targets]
            total = sum(counts)
            if total:
                return [(t, c / total) for t, c in zip(targets, counts, strict=True)]
            return [(t, 1 / len(targets)) for t in targets]
        return [(state.next, 1.0)] if state.next else []

    async def _state(self, walk: Walk, state: Any, pointer: str, prob: float) -> tuple[float, float, float]:
        await self._references(walk, state, pointer)
        observed = percentiles(walk.state_ms.get(state.name, []))
        skill = state.type
        cost = 0.0
        d50 = d95 = STATE_DEFAULT_MS
        if state.type == "task":
            target = state.action.evaluate() if state.action is not None and state.action.is_static else None
            if isinstance(target, str):
                info = await self.skills.resolve_target(walk.tenant, target)
                skill = info["skill"]
                if not info["exists"]:
                    kind = "not_installed" if "not installed" in info.get("problem", "") else "missing"
                    walk.problems.append(
                        {"kind": kind, "pointer": pointer + "/action", "message": info.get("problem", "missing")}
                    )
                cost = float(info.get("cost") or 0.0)
                lat = info.get("latency") or {}
                if not lat.get("samples"):
                    if walk.targets is None:
                        walk.targets = await self.skills.target_latencies(walk.tenant)
                    lat = percentiles(walk.targets.get(target, []))
                d50 = float(lat.get("p50") or self.skills.config.default_task_latency_ms)
                d95 = float(lat.get("p95") or d50)
                if info.get("network") and not state.retry:
                    walk.risks.append(
                        {
                            "rule": "network_task_without_retry",
                            "pointer": pointer,
                            "message": f"{state.name} calls {target} over the network without a retry"
                            + ("" if state.catch else " or a catch"),
                        }
                    )
            else:
                skill = "dynamic"
                d50 = d95 = self.skills.config.default_task_latency_ms
                walk.risks.append(
                    {
                        "rule": "dynamic_target",
                        "pointer": pointer + "/action",
                        "message": f"{state.name}'s target is computed at run time: not checked, not priced",
                    }
                )
        elif state.type == "wait":
            seconds = state.seconds.evaluate() if state.seconds is not None and state.seconds.is_static else None
            if isinstance(seconds, (int, float)):
                d50 = d95 = float(seconds) * 1000
                retention = self._retention_seconds()
                if retention is not None and seconds > retention:
                    walk.risks.append(
                        {
                            "rule": "wait_exceeds_retention",
                            "pointer": pointer,
                            "message": f"{state.name} waits {seconds}s, longer than the retention of {retention:.0f}s",
                        }
                    )
        elif state.type == "parallel":
            b50 = b95 = 0.0
            for i, branch in enumerate(state.branches):
                r50, r95, rcost = await self._machine(walk, branch, f"{pointer}/branches/{i}", prob)
                b50, b95 = max(b50, r50), max(b95, r95)
                cost += rcost
            d50, d95 = b50, b95
            skill = f"parallel[{len(state.branches)}]"
        elif state.type == "map":
            items = self._map_items(walk, state)
            limit = self._max_concurrency()
            if not state.max_concurrency:
                walk.risks.append(
                    {
                        "rule": "unbounded_map",
                        "pointer": pointer,
                        "message": f"{state.name} has no max_concurrency: up to {limit} items run at once",
                    }
                )
            if items is None:
                walk.risks.append(
                    {
                        "rule": "unknown_map_size",
                        "pointer": pointer + "/items",
                        "message": f"{state.name}'s item count is not known before the run: {UNKNOWN_MAP_ITEMS} assumed",
                    }
                )
                items = UNKNOWN_MAP_ITEMS
            concurrency = max(1, min(state.max_concurrency or limit, limit))
            waves = math.ceil(items / concurrency) if items else 0
            if state.processor is not None:
                r50, r95, rcost = await self._machine(walk, state.processor, pointer + "/processor", prob)
                d50, d95, cost = waves * r50, waves * r95, items * rcost
            skill = f"map[{items} items, {concurrency} at once]"
        if observed["samples"]:
            d50, d95 = float(observed["p50"]), float(observed["p95"])
        walk.steps.append(
            {
                "state": pointer.replace("/states/", "/").lstrip("/") or state.name,
                "skill": skill,
                "cost": round(cost, 8),
                "latency": {"p50": round(d50, 3), "p95": round(d95, 3), "samples": observed["samples"]},
                "probability": round(prob, 4),
            }
        )
        return d50, d95, cost

    def _map_items(self, walk: Walk, state: Any) -> int | None:
        template = state.items
        if template is None:
            return len(walk.input) if isinstance(walk.input, list) else None
        refs = getattr(template, "references", None)
        if refs is not None and (refs.secrets or refs.params or refs.dynamic_params or refs.reads_all_secrets):
            return None
        try:
            value = template.evaluate({"input": walk.input, "vars": {}, "context": {}})
        except Exception:
            return None
        return len(value) if isinstance(value, list) else None

    async def _references(self, walk: Walk, state: Any, pointer: str) -> None:
        from aionix.vault.service import reader_allowed

        refs = state.references
        caller = f"trn:stepflow:{walk.tenant}:template/{walk.workflow}" if walk.workflow else None
        vault = self.rt.services.get("vault")
        for secret in sorted(refs.secrets):
            if secret not in walk.checked_secrets:
                try:
                    walk.checked_secrets[secret] = await vault.get(walk.tenant, secret)
                except AionixError:
                    walk.checked_secrets[secret] = None
            info = walk.checked_secrets[secret]
            if info is None:
                walk.problems.append(
                    {"kind": "missing_secret", "pointer": pointer, "message": f"secret {secret!r} does not exist"}
                )
                continue
            readers = info.get("readers") or []
            who = caller or f"trn:stepflow:{walk.tenant}:template/<inline>"
            if not reader_allowed(readers, who):
                walk.risks.append(
                    {
                        "rule": "secret_not_readable",
                        "pointer": pointer,
                        "message": f"secret {secret!r} may not be read by {who} (readers: {', '.join(readers)})",
                    }
                )
                if caller is not None:
                    walk.problems.append(
                        {
                            "kind": "permission",
                            "pointer": pointer,
                            "message": f"{caller} is not a reader of secret {secret!r}",
                        }
                    )
        params = self.rt.services.get("params")
        for path in sorted(refs.params):
            if path not in walk.checked_params:
                try:
                    await params.get(walk.tenant, path)
                    walk.checked_params[path] = True
                except AionixError:
                    walk.checked_params[path] = False
            if not walk.checked_params[path]:
                walk.problems.append(
                    {"kind": "missing_param", "pointer": pointer, "message": f"parameter {path!r} does not exist"}
                )

    def _stepflow_config(self) -> Any:
        return getattr(self.rt.services.get("stepflow"), "config", None)

    def _retention_seconds(self) -> float | None:
        config = self._stepflow_config()
        days = getattr(config, "retention_days", None)
        return float(days) * 86400 if days else None

    def _max_concurrency(self) -> int:
        config = self._stepflow_config()
        return int(getattr(config, "max_map_concurrency", 256) or 256)


def check_simulate_body(body: Any) -> None:
    given = [k for k in ("workflow", "definition", "steps") if getattr(body, k) is not None]
    if len(given) != 1:
        raise field_error("body", "give exactly one of workflow, definition or steps")
    if body.version is not None and body.workflow is None:
        raise field_error("version", "only with workflow")
