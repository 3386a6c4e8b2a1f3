"""What the runtime can do for a tenant (capabilities) and what a run would cost and take
(simulation), from recorded calls, without running anything.

Skill ids: `connector.<kind>.<operation>`, `function.<name>`, `action.<name>`, `intent.<name>`,
`workflow.<name>`. Costs per call come from `[agents] skill_costs` (a skill id, or a prefix
ending in `*`), else: functions `function_usd_per_gb_second` x memory x p50, intents from the
first candidate model's prices (`[agents] intent_input_tokens` in, the intent's `max_tokens`
out), everything else `default_cost_usd`. Latencies are p50/p95 of recorded calls: function
invocation records, per-state durations of execution histories, whole executions.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from aionix import trn as trnlib
from aionix.errors import AionixError

if TYPE_CHECKING:
    from aionix.runtime import Runtime

SAMPLES = 5000
NETWORK_FREE_KINDS = {"transform", "ai"}
EXECUTE_ROLE = "operator"


class AgentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill_costs: dict[str, float] = Field(default_factory=dict, description="USD per call by skill id or prefix*")
    default_cost_usd: float = Field(0.0, ge=0)
    function_usd_per_gb_second: float = Field(0.0000166667, ge=0)
    intent_input_tokens: int = Field(500, ge=0)
    default_task_latency_ms: float = Field(100.0, ge=0)
    copilot_session_ttl_seconds: float = Field(86400.0, gt=0)
    copilot_max_sessions: int = Field(1000, ge=1)


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"p50": None, "p95": None, "samples": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return round(ordered[index], 3)

    return {"p50": pick(0.50), "p95": pick(0.95), "samples": len(ordered)}


class Skills:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.config: AgentsConfig = rt.config.service_section("agents", AgentsConfig)

    # ------------------------------------------------------------------ helpers
    def svc(self, name: str) -> Any:
        return self.rt.services.get(name)

    def configured_cost(self, skill: str) -> float | None:
        costs = self.config.skill_costs
        if skill in costs:
            return costs[skill]
        best: tuple[int, float] | None = None
        for pattern, cost in costs.items():
            if pattern.endswith("*") and skill.startswith(pattern[:-1]) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), cost)
        return best[1] if best else None

    def rate_limits(self) -> dict[str, Any]:
        sec = self.rt.config.security
        return {"per_key_per_second": sec.rate_limit_per_key, "per_key_burst": sec.rate_limit_per_key_burst}

    def ai_policy(self) -> Any:
        ai = self.svc("ai")
        if ai is None:
            return None
        try:
            return ai.active()
        except Exception:
            return None

    async def function_latencies(self, tenant: str) -> dict[str, list[float]]:
        records = getattr(self.svc("functions"), "records", None)
        if records is not None:
            await records.flush()  # invocation records are written behind the answer
        rows = await self.rt.store.fetch_all("agents.function_durations", {"tenant": tenant, "limit": SAMPLES})
        out: dict[str, list[float]] = {}
        for row in rows:
            out.setdefault(row["name"], []).append(float(row["duration_ms"]))
        return out

    async def target_latencies(self, tenant: str) -> dict[str, list[float]]:
        """Recorded task-call durations (TaskScheduled -> TaskSucceeded) by the static target of
        the state that made them (`http`, `trn:openact:…:action/x`, …), across the tenant's runs."""
        from aionix import jsonutil
        from aionix.stepflow.compile import compile_workflow

        rows = await self.rt.store.fetch_all("agents.task_events", {"tenant": tenant, "limit": 4 * SAMPLES})
        targets: dict[tuple[str, int], dict[str, str]] = {}
        open_at: dict[tuple[str, str | None, str], float] = {}
        out: dict[str, list[float]] = {}
        for row in rows:
            key = (row["execution_id"], row["frame"], row["state"])
            if row["type"] == "TaskScheduled":
                open_at[key] = row["ts"]
                continue
            started = open_at.pop(key, None)
            if started is None:
                continue
            version = (row["workflow"], row["version"])
            if version not in targets:
                targets[version] = {}
                found = await self.rt.store.fetch_one(
                    "stepflow.get_version", {"tenant": tenant, "name": row["workflow"], "version": row["version"]}
                )
                try:
                    plan = compile_workflow(jsonutil.loads(found["definition"])) if found else None
                except Exception:
                    plan = None
                for machine in plan.machines.values() if plan else ():
                    for state in machine.states.values():
                        if state.action is not None and state.action.is_static:
                            target = state.action.evaluate()
                            if isinstance(target, str):
                                targets[version][state.name] = target
            target = targets[version].get(row["state"])
            if target is not None:
                out.setdefault(target, []).append((row["ts"] - started) * 1000)
        return out

    async def _all_pages(self, fetch: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(50):
            page = await fetch(cursor)
            items.extend(page.get("items", []))
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items

    # ------------------------------------------------------------------ capabilities
    async def capabilities(self, tenant: str) -> dict[str, Any]:
        rate = self.rate_limits()
        observed = await self.target_latencies(tenant)
        out: dict[str, Any] = {
            "tenant": tenant,
            "connectors": [],
            "functions": [],
            "actions": [],
            "intents": [],
            "workflows": [],
        }
        connectors = self.svc("connectors")
        kinds = connectors.describe_kinds() if connectors is not None else []
        for kind in kinds:
            for op in kind.get("operations", []):
                skill = f"connector.{kind['kind']}.{op['name']}"
                cost = self.configured_cost(skill)
                out["connectors"].append(
                    {
                        "skill": skill,
                        "kind": kind["kind"],
                        "operation": op["name"],
                        "description": op.get("description") or "",
                        "available": kind.get("available", True),
                        "requires_connection": kind.get("requires_connection", False),
                        "parameters": op.get("parameters"),
                        "result": op.get("result"),
                        "cost_usd": cost if cost is not None else self.config.default_cost_usd,
                        "cost_source": "configured" if cost is not None else "default",
                        "latency_ms": percentiles(
                            observed.get(kind["kind"], []) if op["name"] == kind.get("default_operation") else []
                        ),
                        "rate_limits": rate,
                        "permissions": {"role": EXECUTE_ROLE},
                    }
                )
        fn_lat = await self.function_latencies(tenant)
        functions = self.svc("functions")
        if functions is not None:
            summaries = await self._all_pages(lambda c: functions.list(tenant, 500, c))
            for summary in summaries:
                try:
                    info = await functions.get(tenant, summary["name"])
                except AionixError:
                    continue
                config = info.get("config") or {}
                limits = config.get("limits") or {}
                latency = percentiles(fn_lat.get(info["name"], []))
                skill = f"function.{info['name']}"
                cost, source = self.function_cost(skill, limits, latency)
                out["functions"].append(
                    {
                        "skill": skill,
                        "name": info["name"],
                        "trn": info["trn"],
                        "runtime": info["runtime"],
                        "description": info.get("description") or "",
                        "limits": limits,
                        "cost_usd": cost,
                        "cost_source": source,
                        "latency_ms": latency,
                        "rate_limits": rate,
                        "permissions": {"role": EXECUTE_ROLE, "grants": config.get("permissions") or {}},
                    }
                )
        if connectors is not None:
            actions = await self._all_pages(lambda c: connectors.list_actions(tenant, None, c, 500))
            for action in actions:
                skill = f"action.{action['name']}"
                cost = self.configured_cost(skill)
                if cost is None:
                    cost = self.configured_cost(f"connector.{action['kind']}.{action.get('operation')}")
                out["actions"].append(
                    {
                        "skill": skill,
                        "name": action["name"],
                        "trn": action["trn"],
                        "kind": action["kind"],
                        "operation": action.get("operation"),
                        "connection": action.get("connection"),
                        "description": action.get("description") or "",
                        "cost_usd": cost if cost is not None else self.config.default_cost_usd,
                        "cost_source": "configured" if cost is not None else "default",
                        "latency_ms": percentiles(observed.get(action["trn"], [])),
                        "rate_limits": rate,
                        "permissions": {"role": EXECUTE_ROLE},
                    }
                )
        policy = self.ai_policy()
        if policy is not None:
            for name, spec in sorted(policy.intents.intents.items()):
                skill = f"intent.{name}"
                cost, source = self.intent_cost(skill, spec, policy)
                out["intents"].append(
                    {
                        "skill": skill,
                        "name": name,
                        "description": spec.description,
                        "candidates": list(spec.candidates),
                        "privacy": spec.privacy,
                        "input_schema": spec.input_schema,
                        "cost_usd": cost,
                        "cost_source": source,
                        "latency_ms": percentiles(observed.get(f"trn:ai:{tenant}:intent/{name}", [])),
                        "rate_limits": rate,
                        "permissions": {"role": EXECUTE_ROLE},
                    }
                )
        stepflow = self.svc("stepflow")
        if stepflow is not None:
            rows = await self.rt.store.fetch_all("agents.all_execution_durations", {"tenant": tenant, "limit": SAMPLES})
            durations: dict[str, list[float]] = {}
            for row in rows:
                durations.setdefault(row["workflow"], []).append(float(row["duration_ms"]))
            templates = await self._all_pages(lambda c: stepflow.list_templates(tenant, 500, c))
            for tpl in templates:
                out["workflows"].append(
                    {
                        "skill": f"workflow.{tpl['name']}",
                        "name": tpl["name"],
                        "trn": tpl.get("trn"),
                        "version": tpl.get("version"),
                        "latency_ms": percentiles(durations.get(tpl["name"], [])),
                        "rate_limits": rate,
                        "permissions": {"role": EXECUTE_ROLE},
                    }
                )
        return out

    def function_cost(self, skill: str, limits: dict[str, Any], latency: dict[str, Any]) -> tuple[float, str]:
        cost = self.configured_cost(skill)
        if cost is not None:
            return cost, "configured"
        memory_gb = float(limits.get("memory_mb") or 256) / 1024
        seconds = float(latency["p50"] or 0) / 1000
        return round(memory_gb * seconds * self.config.function_usd_per_gb_second, 10), "gb_seconds"

    def intent_cost(self, skill: str, spec: Any, policy: Any) -> tuple[float, str]:
        cost = self.configured_cost(skill)
        if cost is not None:
            return cost, "configured"
        for candidate in spec.candidates:
            model = policy.models.models.get(candidate)
            if model is not None:
                value = (
                    self.config.intent_input_tokens / 1000 * model.price_in_per_1k
                    + spec.max_tokens / 1000 * model.price_out_per_1k
                )
                return round(value, 8), f"model_prices:{candidate}"
        return self.config.default_cost_usd, "default"

    # ------------------------------------------------------------------ skill lookup for a task target
    async def resolve_target(self, tenant: str, target: str) -> dict[str, Any]:
        """What a task's static `action` names: {skill, kind, exists, network, latency, cost, problem?}."""
        if trnlib.is_trn(target):
            try:
                parsed = trnlib.parse(target)
            except AionixError as exc:
                return {"skill": target, "exists": False, "problem": exc.message, "network": False}
            if parsed.tenant != tenant:
                return {"skill": target, "exists": False, "problem": f"{target} is in another tenant", "network": False}
            if parsed.service == "aionixfn" and parsed.type == "function":
                try:
                    info = await self.svc("functions").get(tenant, parsed.name)
                except (AionixError, AttributeError):
                    return {
                        "skill": f"function.{parsed.name}",
                        "exists": False,
                        "problem": f"function {parsed.name!r} does not exist",
                        "network": False,
                    }
                lat = percentiles((await self.function_latencies(tenant)).get(parsed.name, []))
                cost, _ = self.function_cost(
                    f"function.{parsed.name}", (info.get("config") or {}).get("limits") or {}, lat
                )
                return {
                    "skill": f"function.{parsed.name}",
                    "exists": True,
                    "network": False,
                    "latency": lat,
                    "cost": cost,
                }
            if parsed.service == "openact" and parsed.type == "action":
                try:
                    action = await self.svc("connectors").get_action(tenant, parsed.name)
                except (AionixError, AttributeError):
                    return {
                        "skill": f"action.{parsed.name}",
                        "exists": False,
                        "problem": f"action {parsed.name!r} does not exist",
                        "network": False,
                    }
                cost = self.configured_cost(f"action.{parsed.name}")
                if cost is None:
                    cost = self.configured_cost(f"connector.{action['kind']}.{action.get('operation')}")
                return {
                    "skill": f"action.{parsed.name}",
                    "exists": True,
                    "kind": action["kind"],
                    "network": action["kind"] not in NETWORK_FREE_KINDS,
                    "cost": cost if cost is not None else self.config.default_cost_usd,
                }
            if parsed.service == "stepflow" and parsed.type == "template":
                try:
                    await self.svc("stepflow").get_template(tenant, parsed.name)
                except (AionixError, AttributeError):
                    return {
                        "skill": f"workflow.{parsed.name}",
                        "exists": False,
                        "problem": f"workflow {parsed.name!r} does not exist",
                        "network": False,
                    }
                return {"skill": f"workflow.{parsed.name}", "exists": True, "network": False}
            if parsed.service == "ai" and parsed.type == "intent":
                policy = self.ai_policy()
                spec = policy.intents.intents.get(parsed.name) if policy is not None else None
                if spec is None:
                    return {
                        "skill": f"intent.{parsed.name}",
                        "exists": False,
                        "problem": f"intent {parsed.name!r} is not configured",
                        "network": True,
                    }
                cost, _ = self.intent_cost(f"intent.{parsed.name}", spec, policy)
                return {"skill": f"intent.{parsed.name}", "exists": True, "network": True, "cost": cost}
            exists = self.rt.bus.has_target(target)
            return {
                "skill": target,
                "exists": exists,
                "network": True,
                **({} if exists else {"problem": f"nothing executes {target}"}),
            }
        connectors = self.svc("connectors")
        kind = connectors.kinds.get(target) if connectors is not None else None
        if kind is not None:
            op = kind.default_operation or next(iter(kind.operations), "")
            skill = f"connector.{target}.{op}"
            cost = self.configured_cost(skill)
            info = {
                "skill": skill,
                "kind": target,
                "exists": kind.available(),
                "network": target not in NETWORK_FREE_KINDS,
                "cost": cost if cost is not None else self.config.default_cost_usd,
            }
            if not kind.available():
                info["problem"] = f"connector {target!r} is not installed (its package {kind.module} is missing)"
            return info
        if self.rt.bus.has_target(target):
            return {
                "skill": f"connector.{target}",
                "kind": target,
                "exists": True,
                "network": target not in NETWORK_FREE_KINDS,
            }
        return {
            "skill": f"connector.{target}",
            "exists": False,
            "network": False,
            "problem": f"connector {target!r} is not installed",
        }


_SECONDS = re.compile(r"^\d+(\.\d+)?$")
