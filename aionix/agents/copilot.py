"""The Copilot's controlled workflow edits: a session holds a *draft* of one workflow; operations
change only the draft and each answers the new draft, its validation and a JSON diff (RFC 6902
operations from the previous draft); `apply` publishes the draft as a new workflow version.

Who may apply: a key with the operator role that is **not the Copilot's own token**. The
Copilot's token is every key that opened the session or ran an operation in it: whoever edits
a draft cannot publish it; a human reviews it and applies it with their own operator key.
Opening a session and running operations need only the viewer role (they never touch a live
version), so a Copilot can work with a read-only key.

Sessions live in memory (`[agents] copilot_session_ttl_seconds`, `copilot_max_sessions`): a
restart drops open drafts, never a published version. A session refuses to apply when the
workflow got a newer version after the session opened (409: open a new session).

`suggest_optimization` is rule-based (independent consecutive tasks -> parallel, network tasks
without retry/catch, consecutive transforms to merge, intents with a cheaper model of an allowed
tier); model-based suggestions are added only when the AI policy has an intent
`copilot.suggest`: the model's proposed operations are validated on a copy of the draft like
any other operation, and a proposal that fails or leaves the draft invalid is rejected.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aionix import jsonutil
from aionix.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error

if TYPE_CHECKING:
    from aionix.agents.simulate import Simulator
    from aionix.api.auth import Principal
    from aionix.runtime import Runtime

OPERATIONS = (
    "create_node",
    "update_node",
    "delete_node",
    "connect_nodes",
    "validate_graph",
    "simulate_execution",
    "suggest_optimization",
    "estimate_cost",
)
EDITS = ("create_node", "update_node", "delete_node", "connect_nodes")
SUGGEST_INTENT = "copilot.suggest"


@dataclass
class Session:
    id: str
    tenant: str
    workflow: str
    base_version: int
    draft: dict[str, Any]
    opened_by: str
    created_at: float
    editors: set[str] = field(default_factory=set)
    operations: list[dict[str, Any]] = field(default_factory=list)
    status: str = "open"
    applied_version: int | None = None
    applied_by: str | None = None


def json_diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations that turn `old` into `new` (objects key by key, other values whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for key in old:
            pointer = f"{path}/{_escape(key)}"
            if key not in new:
                ops.append({"op": "remove", "path": pointer})
            else:
                ops.extend(json_diff(old[key], new[key], pointer))
        for key in new:
            if key not in old:
                ops.append({"op": "add", "path": f"{path}/{_escape(key)}", "value": new[key]})
        return ops
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path or "", "value": new}]


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


class Copilot:
    def __init__(self, rt: Runtime, simulator: Simulator) -> None:
        self.rt = rt
        self.simulator = simulator
        self.config = simulator.skills.config
        self.sessions: dict[str, Session] = {}

    # ------------------------------------------------------------------ sessions
    def _prune(self) -> None:
        cutoff = time.time() - self.config.copilot_session_ttl_seconds
        for sid in [s.id for s in self.sessions.values() if s.created_at < cutoff]:
            del self.sessions[sid]
        while len(self.sessions) >= self.config.copilot_max_sessions:
            oldest = min(self.sessions.values(), key=lambda s: s.created_at)
            del self.sessions[oldest.id]

    def get(self, tenant: str, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or session.tenant != tenant:
            raise NotFound(f"no copilot session {session_id!r}")
        return session

    async def open(self, principal: Principal, workflow: str) -> dict[str, Any]:
        tpl = await self.rt.services["stepflow"].get_template(principal.tenant, workflow)
        self._prune()
        session = Session(
            id="cps_" + secrets.token_hex(10),
            tenant=principal.tenant,
            workflow=workflow,
            base_version=tpl["version"],
            draft=copy.deepcopy(tpl["definition"]),
            opened_by=principal.key_id,
            created_at=time.time(),
        )
        session.editors.add(principal.key_id)
        self.sessions[session.id] = session
        return await self.view(session)

    async def validation(self, session: Session) -> dict[str, Any]:
        report = await self.rt.services["stepflow"].validate(session.tenant, session.draft)
        return report.model_dump(mode="json")

    async def view(self, session: Session) -> dict[str, Any]:
        return {
            "session_id": session.id,
            "workflow": session.workflow,
            "base_version": session.base_version,
            "status": session.status,
            "draft": session.draft,
            "validation": await self.validation(session),
            "operations": session.operations,
            "opened_by": session.opened_by,
            "applied_version": session.applied_version,
            "applied_by": session.applied_by,
        }

    # ------------------------------------------------------------------ operations
    async def operate(self, principal: Principal, session_id: str, body: Any) -> dict[str, Any]:
        session = self.get(principal.tenant, session_id)
        if session.status != "open":
            raise Conflict(
                f"copilot session {session_id} was applied (version {session.applied_version}); open a new one"
            )
        before = copy.deepcopy(session.draft)
        result: Any = None
        if body.op in EDITS:
            session.draft = edit(session.draft, body)
        elif body.op == "validate_graph":
            pass
        elif body.op in ("simulate_execution", "estimate_cost"):
            result = await self._simulate(principal, session, body)
            if body.op == "estimate_cost":
                result = {
                    k: result[k]
                    for k in ("estimated_cost_usd", "budget_sufficient", "budget_remaining_usd", "step_estimates")
                }
        elif body.op == "suggest_optimization":
            result = await self.suggest(principal, session)
        session.editors.add(principal.key_id)
        diff = json_diff(before, session.draft)
        session.operations.append({"op": body.op, "by": principal.key_id, "at": time.time(), "diff": diff})
        return {
            "session_id": session.id,
            "operation": body.op,
            "draft": session.draft,
            "validation": await self.validation(session),
            "diff": diff,
            "result": result,
        }

    async def _simulate(self, principal: Principal, session: Session, body: Any) -> dict[str, Any]:
        from aionix.agents.routes import SimulateRequest

        request = SimulateRequest(definition=session.draft, input=body.input, budget_usd=body.budget_usd)
        return await self.simulator.simulate(principal, request)

    async def apply(self, principal: Principal, session_id: str) -> dict[str, Any]:
        session = self.get(principal.tenant, session_id)
        if session.status != "open":
            raise Conflict(f"copilot session {session_id} was already applied (version {session.applied_version})")
        if principal.key_id in session.editors:
            raise Forbidden(
                "a draft is applied by a human operator key that did not edit it: this key opened the session "
                "or ran its operations (the Copilot's own token)"
            )
        validation = await self.validation(session)
        if not validation["valid"]:
            raise ValidationFailed(
                "the draft is not valid: "
                + "; ".join(f"{p['pointer']}: {p['message']}" for p in validation["errors"][:5]),
                details=validation["errors"],
            )
        stepflow = self.rt.services["stepflow"]
        current = await stepflow.get_template(session.tenant, session.workflow)
        if current["version"] != session.base_version:
            raise Conflict(
                f"workflow {session.workflow!r} is at version {current['version']} since this session opened on "
                f"version {session.base_version}: open a new session"
            )
        published = await stepflow.update_template(
            session.tenant, session.workflow, session.draft, f"copilot session {session.id}"
        )
        session.status = "applied"
        session.applied_version = published["version"]
        session.applied_by = principal.key_id
        out = await self.view(session)
        out["published"] = {k: published[k] for k in ("name", "trn", "version")}
        return out

    # ------------------------------------------------------------------ suggestions
    async def suggest(self, principal: Principal, session: Session) -> dict[str, Any]:
        suggestions = rule_suggestions(session.draft, self.rt)
        suggestions.extend(self._cheaper_intents(session.draft))
        model: dict[str, Any]
        policy = self.simulator.skills.ai_policy()
        if policy is None or SUGGEST_INTENT not in policy.intents.intents:
            model = {
                "used": False,
                "reason": f"no AI intent {SUGGEST_INTENT!r} is configured: rule-based suggestions only",
            }
        else:
            model = await self._model_suggestions(principal, session)
        valid_before = len((await self.validation(session))["errors"])
        for suggestion in suggestions:
            if suggestion.get("operations"):
                suggestion["valid"] = await self._check(session, suggestion["operations"], valid_before) is None
        return {"suggestions": suggestions, "model": model}

    async def _check(self, session: Session, operations: list[dict[str, Any]], errors_before: int) -> str | None:
        """None when the operations apply cleanly to a copy of the draft and leave no new problem."""
        from aionix.agents.routes import CopilotOperation

        draft = copy.deepcopy(session.draft)
        try:
            for raw in operations:
                op = CopilotOperation.model_validate(raw)
                if op.op not in EDITS:
                    return f"{op.op} is not an edit"
                draft = edit(draft, op)
        except Exception as exc:
            return getattr(exc, "message", None) or str(exc)
        report = await self.rt.services["stepflow"].validate(session.tenant, draft)
        if len(report.errors) > errors_before or (errors_before == 0 and not report.valid):
            return "; ".join(f"{p.pointer}: {p.message}" for p in report.errors[:3])
        return None

    async def _model_suggestions(self, principal: Principal, session: Session) -> dict[str, Any]:
        ai = self.rt.services["ai"]
        from aionix.ai.models import SubmitTask

        body = SubmitTask(intent=SUGGEST_INTENT, params={"input": jsonutil.dumps(session.draft).decode()})
        try:
            run = await ai.submit(principal.tenant, principal.key_id, body)
            await ai.wait(run, ai.config.sync_wait_seconds)
            task = run.envelope()
        except Exception as exc:
            return {"used": True, "error": getattr(exc, "message", str(exc)), "accepted": [], "rejected": []}
        if not isinstance(task, dict) or task.get("status") != "OK":
            error = task.get("error") if isinstance(task, dict) else None
            return {"used": True, "error": error or "the model gave no answer", "accepted": [], "rejected": []}
        output = task.get("result")
        if isinstance(output, dict) and "proposals" not in output and isinstance(output.get("text"), str):
            output = output["text"]
        return await self.review_proposals(session, output)

    async def review_proposals(self, session: Session, output: Any) -> dict[str, Any]:
        """Validate a model's proposed operations like any other: each proposal (a list of edit
        operations) is accepted only when it applies to a copy of the draft and adds no problem."""
        proposals: Any = output
        if isinstance(output, str):
            try:
                proposals = jsonutil.loads(output)
            except Exception:
                return {"used": True, "accepted": [], "rejected": [{"proposal": output, "reason": "not JSON"}]}
        if isinstance(proposals, dict):
            proposals = proposals.get("proposals", [proposals])
        if not isinstance(proposals, list):
            return {
                "used": True,
                "accepted": [],
                "rejected": [{"proposal": proposals, "reason": "not a list of proposals"}],
            }
        errors_before = len((await self.validation(session))["errors"])
        accepted, rejected = [], []
        for proposal in proposals:
            operations = proposal.get("operations") if isinstance(proposal, dict) else None
            if not isinstance(operations, list) or not operations:
                rejected.append({"proposal": proposal, "reason": "no operations"})
                continue
            reason = await self._check(session, operations, errors_before)
            (rejected if reason else accepted).append({"proposal": proposal, **({"reason": reason} if reason else {})})
        return {"used": True, "accepted": accepted, "rejected": rejected}

    def _cheaper_intents(self, draft: dict[str, Any]) -> list[dict[str, Any]]:
        policy = self.simulator.skills.ai_policy()
        if policy is None:
            return []
        out = []
        for name, state in _tasks(draft):
            action = state.get("action")
            if not isinstance(action, str) or ":intent/" not in action:
                continue
            spec = policy.intents.intents.get(action.rsplit("/", 1)[-1])
            if spec is None or not spec.candidates:
                continue
            models = policy.models.models
            first = models.get(spec.candidates[0])
            if first is None:
                continue
            price = first.price_in_per_1k + first.price_out_per_1k
            cheaper = [
                m
                for m, model in models.items()
                if model.tier in spec.tiers_allowed and model.price_in_per_1k + model.price_out_per_1k < price
            ]
            if cheaper:
                out.append(
                    {
                        "rule": "cheaper_tier",
                        "state": name,
                        "message": f"{name} uses {spec.candidates[0]}; {', '.join(sorted(cheaper))} of an allowed tier cost less "
                        "(check it meets the intent's latency target)",
                    }
                )
        return out


# ---------------------------------------------------------------------- edits on a draft
def _states(draft: dict[str, Any]) -> dict[str, Any]:
    states = draft.get("states")
    if not isinstance(states, dict):
        raise field_error("draft.states", "the draft has no states object (an ASL draft cannot be edited here)")
    return states


def _tasks(draft: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    states = draft.get("states") if isinstance(draft.get("states"), dict) else {}
    return [(n, s) for n, s in states.items() if isinstance(s, dict) and s.get("type") == "task"]


def edit(draft: dict[str, Any], op: Any) -> dict[str, Any]:
    """The draft after one edit operation (a new object; 422 naming the field when it cannot apply)."""
    draft = copy.deepcopy(draft)
    states = _states(draft)
    if op.op == "create_node":
        if op.name is None or op.state is None:
            raise field_error("name" if op.name is None else "state", "required for create_node")
        if op.name in states:
            raise field_error("name", f"a state {op.name!r} already exists")
        states[op.name] = op.state
        if op.after is not None:
            if op.after not in states:
                raise field_error("after", f"no state {op.after!r}")
            prev = states[op.after]
            if not isinstance(prev, dict):
                raise field_error("after", f"{op.after!r} is not a state object")
            if "next" in prev and "next" not in op.state and not op.state.get("end"):
                op.state["next"] = prev["next"]
            prev.pop("end", None)
            prev["next"] = op.name
    elif op.op == "update_node":
        if op.name is None or op.patch is None:
            raise field_error("name" if op.name is None else "patch", "required for update_node")
        if op.name not in states or not isinstance(states[op.name], dict):
            raise field_error("name", f"no state {op.name!r}")
        for key, value in op.patch.items():
            if value is None:
                states[op.name].pop(key, None)
            else:
                states[op.name][key] = value
    elif op.op == "delete_node":
        if op.name is None:
            raise field_error("name", "required for delete_node")
        if op.name not in states:
            raise field_error("name", f"no state {op.name!r}")
        removed = states.pop(op.name)
        target = (
            op.relink_to if op.relink_to is not None else (removed.get("next") if isinstance(removed, dict) else None)
        )
        if op.relink_to is not None and op.relink_to not in states:
            raise field_error("relink_to", f"no state {op.relink_to!r}")
        if draft.get("entry") == op.name:
            if target is None:
                raise field_error("name", f"{op.name!r} is the entry and has no next state to become the entry")
            draft["entry"] = target
        for state in states.values():
            if not isinstance(state, dict):
                continue
            _relink(state, op.name, target)
    elif op.op == "connect_nodes":
        source, dest = op.from_, op.to
        if source is None or dest is None:
            raise field_error("from" if source is None else "to", "required for connect_nodes")
        if source not in states or not isinstance(states[source], dict):
            raise field_error("from", f"no state {source!r}")
        if dest not in states:
            raise field_error("to", f"no state {dest!r}")
        state = states[source]
        if op.via == "next":
            state.pop("end", None)
            state["next"] = dest
        elif op.via == "default":
            if state.get("type") != "router":
                raise field_error("via", "default is a router's")
            state["default"] = dest
        elif op.via == "catch":
            state.setdefault("catch", []).append({"errors": op.errors or ["States.ALL"], "next": dest})
        elif op.via == "route":
            if state.get("type") != "router" or op.condition is None:
                raise field_error("condition", "a route needs a router state and a condition")
            state.setdefault("routes", []).append({"condition": op.condition, "next": dest})
    return draft


def _relink(state: dict[str, Any], old: str, new: str | None) -> None:
    if state.get("next") == old:
        if new is None:
            state.pop("next")
            state["end"] = True
        else:
            state["next"] = new
    if state.get("default") == old:
        if new is None:
            state.pop("default")
        else:
            state["default"] = new
    for key in ("routes", "catch"):
        items = state.get(key)
        if isinstance(items, list):
            kept = []
            for item in items:
                if isinstance(item, dict) and item.get("next") == old:
                    if new is None:
                        continue
                    item["next"] = new
                kept.append(item)
            state[key] = kept


# ---------------------------------------------------------------------- rule-based suggestions
def _network(state: dict[str, Any], rt: Runtime) -> bool:
    action = state.get("action")
    if not isinstance(action, str):
        return False
    if action.startswith("trn:"):
        return action.startswith(("trn:openact:", "trn:ai:"))
    return action not in ("transform", "ai") and action in getattr(rt.services.get("connectors"), "kinds", {})


def rule_suggestions(draft: dict[str, Any], rt: Runtime) -> list[dict[str, Any]]:
    states = draft.get("states") if isinstance(draft.get("states"), dict) else {}
    out: list[dict[str, Any]] = []
    for name, state in _tasks(draft):
        if _network(state, rt) and not state.get("retry"):
            out.append(
                {
                    "rule": "missing_retry",
                    "state": name,
                    "message": f"{name} calls {state.get('action')} over the network without a retry",
                    "operations": [
                        {
                            "op": "update_node",
                            "name": name,
                            "patch": {
                                "retry": [
                                    {
                                        "errors": ["States.ALL"],
                                        "max_attempts": 3,
                                        "interval_seconds": 1,
                                        "backoff_rate": 2,
                                    }
                                ]
                            },
                        }
                    ],
                }
            )
        if _network(state, rt) and not state.get("catch"):
            out.append(
                {
                    "rule": "missing_catch",
                    "state": name,
                    "message": f"{name} has no catch: a failure after its retries fails the whole execution "
                    "(connect_nodes via catch to a fallback state)",
                }
            )
    for name, state in _tasks(draft):
        succ = state.get("next")
        other = states.get(succ) if isinstance(succ, str) else None
        if not isinstance(other, dict) or other.get("type") != "task" or succ == name:
            continue
        if state.get("action") == "transform" and other.get("action") == "transform":
            out.append(
                {
                    "rule": "merge_transforms",
                    "state": name,
                    "message": f"{name} and {succ} are consecutive transforms: one expression can do both",
                }
            )
            continue
        text = jsonutil.dumps({k: other.get(k) for k in ("parameters", "action")}).decode()
        independent = all(word not in text for word in ("input", "result", "vars", "$states"))
        if (
            independent
            and not state.get("output")
            and not state.get("assign")
            and not state.get("catch")
            and not other.get("catch")
        ):
            group = f"{name}_{succ}_parallel"
            branch_a = {k: v for k, v in state.items() if k not in ("next", "end")}
            branch_b = {k: v for k, v in other.items() if k not in ("next", "end")}
            parallel: dict[str, Any] = {
                "type": "parallel",
                "branches": [
                    {"entry": name, "states": {name: {**branch_a, "end": True}}},
                    {"entry": succ, "states": {succ: {**branch_b, "end": True}}},
                ],
            }
            if other.get("next"):
                parallel["next"] = other["next"]
            else:
                parallel["end"] = True
            out.append(
                {
                    "rule": "parallelize",
                    "state": name,
                    "message": f"{succ} does not read {name}'s result: run them in parallel",
                    "operations": [
                        {"op": "create_node", "name": group, "state": parallel},
                        {"op": "delete_node", "name": succ, "relink_to": group},
                        {"op": "delete_node", "name": name, "relink_to": group},
                    ],
                }
            )
    return out
