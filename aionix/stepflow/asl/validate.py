"""Validation of an Amazon States Language definition, every problem at once, each with the
JSON pointer of the ASL field (`/States/Check/Choices/0/Next`) and ASL's own field names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aionix import expr
from aionix.stepflow.asl import choice as choice_mod
from aionix.stepflow.asl import distributed, intrinsics, jsonpath, resources
from aionix.stepflow.asl.evaluate import compile_jsonata, constant
from aionix.stepflow.models import Problem, ValidationReport

COMMON = {"Type", "Comment", "QueryLanguage"}
IO_PATHS = {"InputPath", "OutputPath"}
JSONATA_IO = {"Output", "Assign"}
FIELDS: dict[str, set[str]] = {
    "Pass": {"Next", "End", "Result", "ResultPath", "Parameters", "Assign", "Output"} | IO_PATHS,
    "Task": {
        "Next",
        "End",
        "Resource",
        "Parameters",
        "Arguments",
        "ResultPath",
        "ResultSelector",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Credentials",
    }
    | IO_PATHS
    | JSONATA_IO,
    "Choice": {"Choices", "Default", "Assign", "Output"} | IO_PATHS,
    "Wait": {"Next", "End", "Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Assign", "Output"} | IO_PATHS,
    "Succeed": {"Output"} | IO_PATHS,
    "Fail": {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": {"Next", "End", "Branches", "Parameters", "Arguments", "ResultPath", "ResultSelector", "Retry", "Catch"}
    | IO_PATHS
    | JSONATA_IO,
    "Map": {
        "Next",
        "End",
        "Iterator",
        "ItemProcessor",
        "ItemsPath",
        "Items",
        "ItemSelector",
        "Parameters",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "ResultPath",
        "ResultSelector",
        "Retry",
        "Catch",
        "Label",
    }
    | IO_PATHS
    | JSONATA_IO,
}
JSONPATH_ONLY = {
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultPath",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "Result",
    "MaxConcurrencyPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
}
JSONATA_ONLY = {"Arguments", "Output", "Items"}
UNSUPPORTED = {
    "Credentials": "Credentials (cross-account roles) are not supported",
}
#: the fields of a catcher (ResultPath: JSONPath only; Output: JSONata only)
CATCHER_FIELDS = {"ErrorEquals", "Next", "Comment", "Assign", "Output", "ResultPath"}
#: the fields of a JSONata Choice rule
JSONATA_RULE_FIELDS = {"Condition", "Next", "Comment", "Output", "Assign"}
TOP = {"StartAt", "States", "Comment", "QueryLanguage", "TimeoutSeconds", "Version", "dialect"}


def _ptr(*parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class _Checker:
    def __init__(self, mock_target: str | None) -> None:
        self.errors: list[Problem] = []
        self.mock_target = mock_target

    def err(self, pointer: tuple[Any, ...], message: str, **extra: Any) -> None:
        self.errors.append(Problem(pointer=_ptr(*pointer) or "/", message=message, **extra))

    # ------------------------------------------------------------ machines
    def machine(self, doc: Any, base: tuple[Any, ...], ql: str, top: bool = False) -> None:
        if not isinstance(doc, dict):
            self.err(base, "a state machine must be a JSON object with StartAt and States")
            return
        if top:
            for key in doc:
                if key not in TOP:
                    self.err((*base, key), f"unknown top-level field {key!r}")
            if "TimeoutSeconds" in doc and not _positive_int(doc["TimeoutSeconds"]):
                self.err((*base, "TimeoutSeconds"), "TimeoutSeconds must be a positive integer")
        if "QueryLanguage" in doc and doc["QueryLanguage"] not in ("JSONata", "JSONPath"):
            self.err((*base, "QueryLanguage"), "QueryLanguage must be JSONata or JSONPath")
        ql = doc.get("QueryLanguage", ql) if doc.get("QueryLanguage") in ("JSONata", "JSONPath") else ql
        states = doc.get("States")
        if not isinstance(states, dict) or not states:
            self.err((*base, "States"), "States must be a non-empty object of states")
            return
        start = doc.get("StartAt")
        if not isinstance(start, str):
            self.err((*base, "StartAt"), "StartAt must name the first state")
        elif start not in states:
            self.err((*base, "StartAt"), f"StartAt names {start!r}, which is not in States")
        for name, state in states.items():
            if not isinstance(name, str) or not name or len(name) > 80:
                self.err((*base, "States", name), "a state name must be 1 to 80 characters")
            self.state((*base, "States", name), name, state, states, ql)
        if isinstance(start, str) and start in states:
            self.reachability(base, states, start)

    def reachability(self, base: tuple[Any, ...], states: dict[str, Any], start: str) -> None:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in seen or name not in states:
                continue
            seen.add(name)
            todo.extend(_successors(states[name]))
        for name in states:
            if name not in seen:
                self.err((*base, "States", name), f"state {name!r} is not reachable from StartAt")

    # ------------------------------------------------------------ states
    def state(self, p: tuple[Any, ...], name: str, s: Any, states: dict[str, Any], ql: str) -> None:
        if not isinstance(s, dict):
            self.err(p, "a state must be a JSON object")
            return
        kind = s.get("Type")
        if not isinstance(kind, str) or kind not in FIELDS:
            self.err((*p, "Type"), f"Type must be one of {', '.join(sorted(FIELDS))}")
            return
        if "QueryLanguage" in s and s["QueryLanguage"] not in ("JSONata", "JSONPath"):
            self.err((*p, "QueryLanguage"), "QueryLanguage must be JSONata or JSONPath")
        elif s.get("QueryLanguage") == "JSONPath" and ql == "JSONata":
            self.err((*p, "QueryLanguage"), "a state cannot use JSONPath when the state machine uses JSONata")
        ql = s.get("QueryLanguage", ql)
        allowed = FIELDS[kind] | COMMON
        for key in s:
            if key not in allowed:
                self.err((*p, key), f"field {key!r} is not valid in a {kind} state")
            elif key in UNSUPPORTED:
                self.err((*p, key), UNSUPPORTED[key])
            elif ql == "JSONata" and key in JSONPATH_ONLY:
                self.err((*p, key), f"field {key!r} is a JSONPath field; in JSONata mode use Arguments/Output/Assign")
            elif ql == "JSONPath" and key in JSONATA_ONLY:
                self.err((*p, key), f"field {key!r} needs QueryLanguage JSONata")
        if kind not in ("Choice", "Succeed", "Fail"):
            has_next, has_end = "Next" in s, s.get("End") is True
            if has_next == has_end:
                self.err(p, f"state {name!r} needs exactly one of Next or End: true")
            if has_next:
                self.target((*p, "Next"), s["Next"], states)
        for field in ("InputPath", "OutputPath", "ItemsPath"):
            if field in s and s[field] is not None:
                self.path((*p, field), s[field])
        if "ResultPath" in s and s["ResultPath"] is not None:
            self.reference_path((*p, "ResultPath"), s["ResultPath"])
        for field in ("Parameters", "ResultSelector", "ItemSelector"):
            if field in s and ql == "JSONPath":
                self.payload((*p, field), s[field])
        if "Assign" in s:
            if not isinstance(s["Assign"], dict):
                self.err((*p, "Assign"), "Assign must be an object of variable names")
            elif ql == "JSONPath":
                self.payload((*p, "Assign"), s["Assign"])
        if ql == "JSONata":
            for field in ("Arguments", "Output", "Assign", "Items", "ItemSelector", "Seconds", "Timestamp"):
                if field in s:
                    self.jsonata((*p, field), s[field])
            for field in (
                "Error",
                "Cause",
                "MaxConcurrency",
                "ToleratedFailureCount",
                "ToleratedFailurePercentage",
                "TimeoutSeconds",
                "HeartbeatSeconds",
            ):
                if isinstance(s.get(field), str):
                    self.jsonata((*p, field), s[field])
        getattr(self, "_" + kind.lower())(p, s, states, ql)
        for i, r in enumerate(s.get("Retry", []) if isinstance(s.get("Retry", []), list) else [None]):
            self.retrier((*p, "Retry", i), r)
        if "Retry" in s and not isinstance(s["Retry"], list):
            self.err((*p, "Retry"), "Retry must be an array of retriers")
        catch = s.get("Catch", [])
        if not isinstance(catch, list):
            self.err((*p, "Catch"), "Catch must be an array of catchers")
            catch = []
        for i, c in enumerate(catch):
            self.catcher((*p, "Catch", i), c, states, ql)

    def _pass(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        return None

    def _succeed(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        return None

    def _fail(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if a in s and b in s:
                self.err((*p, b), f"a Fail state takes {a} or {b}, not both")
            if b in s:
                value = s[b]
                if not isinstance(value, str):
                    self.err((*p, b), f"{b} must be a path or an intrinsic function")
                elif intrinsics.is_intrinsic(value):
                    self.intrinsic((*p, b), value)
                else:
                    self.path((*p, b), value)
            if a in s and not isinstance(s[a], str):
                self.err((*p, a), f"{a} must be a string")

    def _wait(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        given = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in s]
        if len(given) != 1:
            self.err(p, "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath")
            return
        field = given[0]
        value = s[field]
        if field == "Seconds" and not (isinstance(value, str) and ql == "JSONata"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.err((*p, field), "Seconds must be a non-negative integer")
        elif field == "Timestamp" and not (isinstance(value, str) and value.strip().startswith("{%")):
            if not isinstance(value, str) or choice_mod.parse_timestamp(value) is None:
                self.err((*p, field), "Timestamp must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z")
        elif field.endswith("Path"):
            self.path((*p, field), value)

    def _choice(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        rules = s.get("Choices")
        if not isinstance(rules, list) or not rules:
            self.err((*p, "Choices"), "Choices must be a non-empty array of choice rules")
            rules = []
        for i, rule in enumerate(rules):
            rp = (*p, "Choices", i)
            if not isinstance(rule, dict):
                self.err(rp, "a choice rule must be an object")
                continue
            if "Next" not in rule:
                self.err((*rp, "Next"), "a top-level choice rule needs Next")
            else:
                self.target((*rp, "Next"), rule["Next"], states)
            if ql == "JSONata":
                for key in rule:
                    if key not in JSONATA_RULE_FIELDS:
                        self.err((*rp, key), f"field {key!r} is not valid in a JSONata choice rule")
                if "Condition" not in rule:
                    self.err((*rp, "Condition"), "a JSONata choice rule needs a Condition")
                else:
                    self.jsonata((*rp, "Condition"), rule["Condition"])
                for field in ("Output", "Assign"):
                    if field in rule:
                        self.jsonata((*rp, field), rule[field])
            else:
                self.rule(rp, rule)
                if "Assign" in rule:
                    self.payload((*rp, "Assign"), rule["Assign"])
        if "Default" in s:
            self.target((*p, "Default"), s["Default"], states)

    def rule(self, p: tuple[Any, ...], rule: Any) -> None:
        if not isinstance(rule, dict):
            self.err(p, "a choice rule must be an object")
            return
        for combinator in ("And", "Or"):
            if combinator in rule:
                if not isinstance(rule[combinator], list) or not rule[combinator]:
                    self.err((*p, combinator), f"{combinator} must be a non-empty array of rules")
                    return
                for i, inner in enumerate(rule[combinator]):
                    self.rule((*p, combinator, i), inner)
                return
        if "Not" in rule:
            self.rule((*p, "Not"), rule["Not"])
            return
        ops = [k for k in rule if k in choice_mod.COMPARISONS or k in choice_mod.TYPE_TESTS]
        if len(ops) != 1:
            self.err(p, "a choice rule needs exactly one comparison operator (StringEquals, IsPresent, …)")
            return
        if not isinstance(rule.get("Variable"), str):
            self.err((*p, "Variable"), "Variable must be a path")
            return
        self.path((*p, "Variable"), rule["Variable"])
        op = ops[0]
        value = rule[op]
        if op.endswith("Path"):
            if not isinstance(value, str):
                self.err((*p, op), f"{op} must be a path")
            else:
                self.path((*p, op), value)
        elif op in choice_mod.TYPE_TESTS or op == "BooleanEquals":
            if not isinstance(value, bool):
                self.err((*p, op), f"{op} must be true or false")
        elif op.startswith("Numeric"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.err((*p, op), f"{op} must be a number")
        elif not isinstance(value, str):
            self.err((*p, op), f"{op} must be a string")

    def _parallel(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        branches = s.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.err((*p, "Branches"), "Branches must be a non-empty array of state machines")
            return
        for i, branch in enumerate(branches):
            self.machine(branch, (*p, "Branches", i), ql)

    def _map(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        key = "ItemProcessor" if "ItemProcessor" in s else "Iterator" if "Iterator" in s else None
        if key is None:
            self.err((*p, "ItemProcessor"), "a Map state needs an ItemProcessor")
            return
        if "ItemSelector" in s and "Parameters" in s:
            self.err((*p, "Parameters"), "a Map state takes ItemSelector or Parameters, not both")
        processor = s[key]
        distributed.check(p, s, ql, self.err)  # ProcessorConfig, ItemReader, ItemBatcher, ResultWriter
        if isinstance(processor, dict):
            inner = {k: v for k, v in processor.items() if k != "ProcessorConfig"}
            self.machine(inner, (*p, key), ql)
        else:
            self.machine(processor, (*p, key), ql)
        for field in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
            if field + "Path" in s:
                if field in s:
                    self.err((*p, field + "Path"), f"a Map takes {field} or {field}Path, not both")
                self.path((*p, field + "Path"), s[field + "Path"])
            if field not in s:
                continue
            raw = s[field]
            if isinstance(raw, str) and ql != "JSONata":
                self.err((*p, field), f"{field} must be a number (expressions need QueryLanguage JSONata)")
                continue
            value = constant(raw)
            if isinstance(raw, str) and value is None:
                continue  # an expression that reads the execution: checked when the Map starts
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            if field == "ToleratedFailurePercentage":
                if not number or not 0 <= value <= 100:
                    self.err((*p, field), f"{field} must be between 0 and 100")
            elif not number or value < 0 or int(value) != value:
                self.err((*p, field), f"{field} must be a non-negative integer")

    def _task(self, p: tuple[Any, ...], s: dict[str, Any], states: dict[str, Any], ql: str) -> None:
        if "Resource" not in s:
            self.err((*p, "Resource"), "a Task state needs a Resource")
        else:
            problem = resources.check(s["Resource"], _ptr(*p, "Resource"), self.mock_target)
            if problem is not None:
                self.err((*p, "Resource"), problem)
        for field in ("TimeoutSeconds", "HeartbeatSeconds"):
            if field in s and field + "Path" in s:
                self.err((*p, field + "Path"), f"a Task takes {field} or {field}Path, not both")
            if field + "Path" in s:
                self.path((*p, field + "Path"), s[field + "Path"])
            if field in s and not _positive_int(s[field]) and not (ql == "JSONata" and isinstance(s[field], str)):
                self.err((*p, field), f"{field} must be a positive integer")
        timeout, heartbeat = s.get("TimeoutSeconds"), s.get("HeartbeatSeconds")
        if _positive_int(timeout) and _positive_int(heartbeat) and heartbeat >= timeout:
            self.err((*p, "HeartbeatSeconds"), "HeartbeatSeconds must be smaller than TimeoutSeconds")

    # ------------------------------------------------------------ pieces
    def retrier(self, p: tuple[Any, ...], r: Any) -> None:
        if not isinstance(r, dict):
            self.err(p, "a retrier must be an object")
            return
        allowed = {
            "ErrorEquals",
            "IntervalSeconds",
            "MaxAttempts",
            "BackoffRate",
            "MaxDelaySeconds",
            "JitterStrategy",
            "Comment",
        }
        for key in r:
            if key not in allowed:
                self.err((*p, key), f"field {key!r} is not valid in a retrier")
        self.error_equals((*p, "ErrorEquals"), r.get("ErrorEquals"))
        if "IntervalSeconds" in r and not _positive_int(r["IntervalSeconds"]):
            self.err((*p, "IntervalSeconds"), "IntervalSeconds must be a positive integer")
        attempts = r.get("MaxAttempts", 3)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            self.err((*p, "MaxAttempts"), "MaxAttempts must be a non-negative integer")
        rate = r.get("BackoffRate", 2.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 1:
            self.err((*p, "BackoffRate"), "BackoffRate must be a number ≥ 1.0")
        if "MaxDelaySeconds" in r and not _positive_int(r["MaxDelaySeconds"]):
            self.err((*p, "MaxDelaySeconds"), "MaxDelaySeconds must be a positive integer")
        if r.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
            self.err((*p, "JitterStrategy"), "JitterStrategy must be FULL or NONE")

    def catcher(self, p: tuple[Any, ...], c: Any, states: dict[str, Any], ql: str) -> None:
        if not isinstance(c, dict):
            self.err(p, "a catcher must be an object")
            return
        allowed = CATCHER_FIELDS - ({"ResultPath"} if ql == "JSONata" else {"Output"})
        for key in c:
            if key not in allowed:
                self.err((*p, key), f"field {key!r} is not valid in a catcher")
        self.error_equals((*p, "ErrorEquals"), c.get("ErrorEquals"))
        if "Next" not in c:
            self.err((*p, "Next"), "a catcher needs Next")
        else:
            self.target((*p, "Next"), c["Next"], states)
        if c.get("ResultPath") is not None:
            self.reference_path((*p, "ResultPath"), c["ResultPath"])
        if ql == "JSONata":
            for field in ("Output", "Assign"):
                if field in c:
                    self.jsonata((*p, field), c[field])

    def error_equals(self, p: tuple[Any, ...], names: Any) -> None:
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.err(p, "ErrorEquals must be a non-empty array of error names")
        elif "States.ALL" in names and len(names) > 1:
            self.err(p, "States.ALL must appear alone in ErrorEquals")

    def target(self, p: tuple[Any, ...], name: Any, states: dict[str, Any]) -> None:
        if not isinstance(name, str) or name not in states:
            self.err(p, f"{p[-1]} names {name!r}, which is not a state of this state machine")

    def path(self, p: tuple[Any, ...], value: Any) -> None:
        if not isinstance(value, str):
            self.err(p, f"{p[-1]} must be a JSONPath string")
            return
        try:
            jsonpath.parse(value)
        except jsonpath.PathError as exc:
            self.err(p, exc.message)

    def reference_path(self, p: tuple[Any, ...], value: Any) -> None:
        self.path(p, value)
        if not isinstance(value, str):
            return
        try:
            parsed = jsonpath.parse(value)
        except jsonpath.PathError:
            return
        if parsed.root != "$" or not all(seg.kind in ("name", "index") for seg in parsed.segments):
            self.err(p, f"{p[-1]} must be a reference path ($ followed by names and indexes only)")

    def intrinsic(self, p: tuple[Any, ...], value: str) -> None:
        try:
            intrinsics.parse(value.strip())
        except intrinsics.IntrinsicError as exc:
            self.err(p, exc.message)

    def payload(self, p: tuple[Any, ...], template: Any) -> None:
        if isinstance(template, dict):
            for key, value in template.items():
                if isinstance(key, str) and key.endswith(".$"):
                    if not isinstance(value, str):
                        self.err((*p, key), f"the value of {key!r} must be a path or an intrinsic function")
                    elif intrinsics.is_intrinsic(value):
                        self.intrinsic((*p, key), value)
                    else:
                        self.path((*p, key), value)
                else:
                    self.payload((*p, key), value)
        elif isinstance(template, list):
            for i, value in enumerate(template):
                self.payload((*p, i), value)

    def jsonata(self, p: tuple[Any, ...], template: Any) -> None:
        try:
            compile_jsonata(template, _ptr(*p))
        except expr.ExpressionError as exc:
            self.err(
                tuple(exc.details.get("pointer", _ptr(*p)).strip("/").split("/")),
                f"JSONata syntax error: {exc.message}",
                expression=exc.expression,
                position=exc.position,
            )


def _successors(s: Any) -> list[str]:
    if not isinstance(s, dict):
        return []
    out = [s["Next"]] if isinstance(s.get("Next"), str) else []
    if isinstance(s.get("Default"), str):
        out.append(s["Default"])
    for rule in s.get("Choices", []) if isinstance(s.get("Choices"), list) else []:
        if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
            out.append(rule["Next"])
    for c in s.get("Catch", []) if isinstance(s.get("Catch"), list) else []:
        if isinstance(c, dict) and isinstance(c.get("Next"), str):
            out.append(c["Next"])
    return out


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _task_resources(machine: Any, base: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    out: list[tuple[tuple[Any, ...], str]] = []
    states = machine.get("States") if isinstance(machine, dict) else None
    for name, s in (states or {}).items():
        if not isinstance(s, dict):
            continue
        p = (*base, "States", name)
        if s.get("Type") == "Task" and isinstance(s.get("Resource"), str):
            out.append(((*p, "Resource"), s["Resource"]))
        for i, branch in enumerate(s.get("Branches") or []):
            out.extend(_task_resources(branch, (*p, "Branches", i)))
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(s.get(key), dict):
                out.extend(_task_resources(s[key], (*p, key)))
    return out


def validate(
    definition: Any, *, mock_target: str | None = None, known_target: Callable[[str], bool] | None = None
) -> ValidationReport:
    """Check an ASL definition; every problem at once, each with the pointer of its field.
    `known_target(resource)` (optional) turns Task resources with no executor into warnings."""
    checker = _Checker(mock_target)
    checker.machine(definition, (), "JSONPath", top=True)
    warnings: list[Problem] = []
    if known_target is not None and not checker.errors:
        for pointer, resource in _task_resources(definition):
            base, _ = resources.split_suffix(resource)
            if not base.startswith("arn:") and not known_target(base):
                message = f"no executor is registered for {base!r} (yet)"
                warnings.append(Problem(pointer=_ptr(*pointer), message=message, severity="warning"))
    return ValidationReport(valid=not checker.errors, errors=checker.errors, warnings=warnings)
