"""The engine's history events shaped like Step Functions' `GetExecutionHistory`.

`format_history(definition, events)` maps each engine event (`StateEntered`, `TaskScheduled`,
`MapStarted`, …) to the AWS event of the same meaning (`PassStateEntered`, `TaskScheduled`,
`MapStateStarted`, …) with AWS's detail field names (`stateEnteredEventDetails.input` as a JSON
string, …), numbers them from 1 and adds `MapIterationStarted/Succeeded/Failed` around each
map item's events, so tools written against AWS histories read Aionix ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aionix.stepflow.asl.evaluate import ACCOUNT, PARTITION, REGION, dumps


def state_types(definition: dict[str, Any]) -> dict[str, str]:
    """State name → ASL Type, through every branch and item processor."""
    out: dict[str, str] = {}

    def walk(machine: Any) -> None:
        if not isinstance(machine, dict):
            return
        for name, state in (machine.get("States") or {}).items():
            if not isinstance(state, dict):
                continue
            out.setdefault(name, state.get("Type", "Pass"))
            for branch in state.get("Branches") or []:
                walk(branch)
            walk(state.get("ItemProcessor") or state.get("Iterator"))

    walk(definition)
    return out


def _ts(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _resource(definition_types: dict[str, str], tasks: dict[str, str], state: str | None) -> dict[str, Any]:
    resource = tasks.get(state or "", "")
    kind = "lambda" if ":lambda:" in resource else resource.split(":")[1] if resource.startswith("trn:") else "aionix"
    return {"resourceType": kind, "resource": resource}


def _task_resources(definition: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(machine: Any) -> None:
        if not isinstance(machine, dict):
            return
        for name, state in (machine.get("States") or {}).items():
            if not isinstance(state, dict):
                continue
            if state.get("Type") == "Task" and isinstance(state.get("Resource"), str):
                out[name] = state["Resource"]
            for branch in state.get("Branches") or []:
                walk(branch)
            walk(state.get("ItemProcessor") or state.get("Iterator"))

    walk(definition)
    return out


def format_history(
    definition: dict[str, Any], events: list[dict[str, Any]], *, workflow: str = "", execution_id: str = ""
) -> dict[str, Any]:
    """`{"events": [...]}` as `GetExecutionHistory` returns it."""
    types = state_types(definition)
    tasks = _task_resources(definition)
    out: list[dict[str, Any]] = []
    # map item frames: first and last event index of every frame "<map frame>.<Map>.<i>"
    maps: dict[str, tuple[str, str]] = {}  # frame id of a map state -> (state, frame)
    for e in events:
        if e.get("type") == "MapStarted" and e.get("frame"):
            maps[f"{e['frame']}.{e['state']}."] = (e["state"], e["frame"])
    last_of: dict[str, int] = {}
    for i, e in enumerate(events):
        frame = e.get("frame") or ""
        for prefix in maps:
            if frame.startswith(prefix):
                item = prefix + frame[len(prefix) :].split(".")[0]
                last_of[item] = i
    started: set[str] = set()

    def add(type_: str, ts: float, details_key: str | None = None, details: dict[str, Any] | None = None) -> None:
        event: dict[str, Any] = {"timestamp": _ts(ts), "type": type_, "id": len(out) + 1, "previousEventId": len(out)}
        if details_key is not None:
            event[details_key] = details or {}
        out.append(event)

    for i, e in enumerate(events):
        kind, state, frame, detail, ts = e["type"], e.get("state"), e.get("frame") or "", e.get("detail") or {}, e["ts"]
        for prefix, (map_state, _) in maps.items():
            if frame.startswith(prefix):
                item = prefix + frame[len(prefix) :].split(".")[0]
                if item not in started:
                    started.add(item)
                    index = int(item[len(prefix) :])
                    add(
                        "MapIterationStarted",
                        ts,
                        "mapIterationStartedEventDetails",
                        {"name": map_state, "index": index},
                    )
        stype = types.get(state or "", "Pass")
        if kind == "ExecutionStarted":
            add(
                "ExecutionStarted",
                ts,
                "executionStartedEventDetails",
                {
                    "input": dumps(detail.get("input")),
                    "inputDetails": {"truncated": False},
                    "roleArn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/aionix",
                    "stateMachineArn": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{workflow}",
                },
            )
        elif kind == "StateEntered":
            add(
                f"{stype}StateEntered",
                ts,
                "stateEnteredEventDetails",
                {"name": state, "input": dumps(detail.get("input")), "inputDetails": {"truncated": False}},
            )
        elif kind == "StateExited":
            if stype == "Map":
                add("MapStateSucceeded", ts)
            elif stype == "Parallel":
                add("ParallelStateSucceeded", ts)
            add(
                f"{stype}StateExited",
                ts,
                "stateExitedEventDetails",
                {"name": state, "output": dumps(detail.get("output")), "outputDetails": {"truncated": False}},
            )
        elif kind == "StateFailed":
            if stype == "Map":
                add("MapStateFailed", ts)
            elif stype == "Parallel":
                add("ParallelStateFailed", ts)
        elif kind == "TaskScheduled":
            add(
                "TaskScheduled",
                ts,
                "taskScheduledEventDetails",
                {**_resource(types, tasks, state), "region": REGION},  # parameters are not recorded
            )
            add("TaskStarted", ts, "taskStartedEventDetails", _resource(types, tasks, state))
        elif kind == "TaskSucceeded":
            add(
                "TaskSucceeded",
                ts,
                "taskSucceededEventDetails",
                {
                    **_resource(types, tasks, state),
                    "output": dumps(detail.get("result")),
                    "outputDetails": {"truncated": False},
                },
            )
        elif kind == "TaskFailed":
            failed = {**_resource(types, tasks, state)}
            if detail.get("error") is not None:
                failed["error"] = detail["error"]
            if detail.get("cause") is not None:
                failed["cause"] = detail["cause"]
            add("TaskFailed", ts, "taskFailedEventDetails", failed)
        elif kind == "MapStarted":
            add("MapStateStarted", ts, "mapStateStartedEventDetails", {"length": detail.get("items", 0)})
        elif kind == "ParallelStarted":
            add("ParallelStateStarted", ts)
        elif kind == "MapRunStarted":  # a distributed Map: its child executions form the map run
            add("MapStateStarted", ts, "mapStateStartedEventDetails", {"length": 0})
            add("MapRunStarted", ts, "mapRunStartedEventDetails", {"mapRunArn": detail.get("map_run_arn")})
        elif kind == "MapRunSucceeded":
            add("MapRunSucceeded", ts)
        elif kind == "MapRunFailed":
            add(
                "MapRunFailed",
                ts,
                "mapRunFailedEventDetails",
                {k: detail[k] for k in ("error", "cause") if detail.get(k) is not None},
            )
        elif kind == "WaitStarted" or kind == "WaitEnded" or kind == "RetryScheduled" or kind == "Caught":
            pass
        elif kind == "ExecutionSucceeded":
            add(
                "ExecutionSucceeded",
                ts,
                "executionSucceededEventDetails",
                {"output": dumps(detail.get("output")), "outputDetails": {"truncated": False}},
            )
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            key = {
                "ExecutionFailed": "executionFailedEventDetails",
                "ExecutionTimedOut": "executionTimedOutEventDetails",
            }
            body = {k: detail[k] for k in ("error", "cause") if detail.get(k) is not None}
            add(kind, ts, key.get(kind, "executionAbortedEventDetails"), body)
        for prefix, (map_state, _) in maps.items():
            if frame.startswith(prefix):
                item = prefix + frame[len(prefix) :].split(".")[0]
                if last_of.get(item) == i:
                    index = int(item[len(prefix) :])
                    outcome = "MapIterationFailed" if kind == "StateFailed" else "MapIterationSucceeded"
                    key = (
                        "mapIterationFailedEventDetails"
                        if kind == "StateFailed"
                        else "mapIterationSucceededEventDetails"
                    )
                    add(outcome, ts, key, {"name": map_state, "index": index})
    return {"events": out}


_NATIVE_TYPES = {
    "set": "Pass",
    "router": "Choice",
    "wait": "Wait",
    "succeed": "Succeed",
    "fail": "Fail",
    "parallel": "Parallel",
    "map": "Map",
    "task": "Task",
}


def _native_as_asl(definition: dict[str, Any]) -> dict[str, Any]:
    """Enough of a native DSL definition, in ASL names, for `state_types`/`_task_resources`."""

    def machine(m: Any) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for name, s in ((m or {}).get("states") or {}).items():
            if not isinstance(s, dict):
                continue
            out: dict[str, Any] = {"Type": _NATIVE_TYPES.get(s.get("type", ""), "Pass")}
            if isinstance(s.get("action"), str):
                out["Resource"] = s["action"]
            if s.get("branches"):
                out["Branches"] = [machine(b) for b in s["branches"]]
            if s.get("processor"):
                out["ItemProcessor"] = machine(s["processor"])
            states[name] = out
        return {"States": states}

    return machine(definition)


async def execution_history(service: Any, tenant: str, execution_id: str) -> dict[str, Any]:
    """Every event of one execution, in AWS shape (the StepFlow service reads them)."""
    from aionix.stepflow.asl import is_asl

    envelope = await service.envelope_by_id(execution_id, tenant)
    definition = await service.execution_definition(tenant, envelope)
    if not is_asl(definition):
        definition = _native_as_asl(definition)
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await service.history(tenant, execution_id, after, 1000)
        events.extend(page["items"])
        if not page["items"] or not page.get("next_cursor"):
            break
        after = page["items"][-1]["seq"]
    return format_history(definition, events, workflow=envelope["workflow"], execution_id=execution_id)
