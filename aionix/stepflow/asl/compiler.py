"""Amazon States Language → the engine's plan (`aionix.stepflow.compile.Plan`).

ASL runs on the same interpreter as the native DSL: each ASL state becomes the engine state of
the same meaning (Pass → set, Choice → router, …) whose templates are `Hooked` functions that
do ASL's input/output processing (InputPath → Parameters/Arguments → ResultSelector →
ResultPath → OutputPath, or JSONata `Output`/`Assign`) when the engine evaluates them. The
engine hands every hook `{input, result, vars, error, context}`; `input` is the raw state input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aionix import expr
from aionix.expr import References
from aionix.stepflow import compile as plan_mod
from aionix.stepflow.asl import choice as choice_mod
from aionix.stepflow.asl import distributed, resources
from aionix.stepflow.asl.evaluate import (
    MISSING,
    Scope,
    constant,
    dumps,
    input_path,
    jsonata,
    output_path,
    payload,
    read_path,
    result_path,
)
from aionix.stepflow.compile import CatchPlan, Machine, Plan, RetryPlan, RoutePlan, StatePlan
from aionix.stepflow.engine import Failure

JSONATA = "JSONata"
JSONPATH = "JSONPath"
_TYPES = {
    "Pass": "set",
    "Choice": "router",
    "Wait": "wait",
    "Succeed": "succeed",
    "Fail": "fail",
    "Parallel": "parallel",
    "Map": "map",
    "Task": "task",
}
_NO_REFERENCES = References()


class Hooked:
    """Looks like an `expr.Template` to the engine; evaluating it runs `fn(data)`. Its
    `references` are those of every JSONata expression of its state (`_state` sets them), so
    the engine resolves them on entry and hands `$secret`/`$param` in as `bindings`."""

    __slots__ = ("fn", "references")
    is_static = False
    expressions: tuple[Any, ...] = ()

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn
        self.references = _NO_REFERENCES

    def evaluate_inline(self, data: Any = None, bindings: Any = None) -> Any:
        """`expr.evaluate_inline` of `evaluate` (what the engine calls for a `Template`)."""
        return expr.evaluate_inline(self.evaluate, data, bindings)

    def evaluate(self, data: Any = None, bindings: Any = None) -> Any:
        if bindings:
            data = {**(data or {}), "late": bindings}
        try:
            return self.fn(data or {})
        except Failure:
            raise
        except Exception as exc:  # a definition the validator let through must still fail cleanly
            state = ((data or {}).get("context") or {}).get("state", "?")
            raise Failure(
                plan_mod.RUNTIME, f"An error occurred while executing the state '{state}': {type(exc).__name__}: {exc}"
            ) from None


@dataclass(slots=True)
class Options:
    """`mock_target`: a bus action kind that answers AWS service integrations (a mock config);
    without one they are rejected when the definition is saved."""

    mock_target: str | None = None
    #: variables the definition assigns that are named like the late-bound `$secret`/`$param`
    #: (a variable wins: such a name is then not read from CredVault/ParamStore)
    shadowed: frozenset[str] = frozenset()


def compile_asl(definition: dict[str, Any], options: Options | None = None) -> Plan:
    """Compile a validated ASL definition."""
    options = options or Options()
    shadowed = _assigned(definition) & {"secret", "param"}
    if shadowed:
        options = Options(options.mock_target, frozenset(shadowed))
    machines: dict[str, Machine] = {}
    ql = definition.get("QueryLanguage", JSONPATH)
    root = _machine("", definition, machines, ql, options)
    timeout = definition.get("TimeoutSeconds")
    root.timeout_seconds = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None
    return Plan(root, machines)


def _machine(path: str, doc: dict[str, Any], machines: dict[str, Machine], ql: str, options: Options) -> Machine:
    machine = Machine(path, doc["StartAt"], {})
    machines[path] = machine
    for name, state in doc["States"].items():
        machine.states[name] = _state(path, name, state, machines, state.get("QueryLanguage", ql), options)
    return machine


_NESTED = frozenset({"Branches", "ItemProcessor", "Iterator"})
_EXPRESSION = re.compile(r"^\{%(.*)%\}$", re.DOTALL)


def _assigned(value: Any) -> set[str]:
    """Every variable name an `Assign` anywhere in the definition sets."""
    names: set[str] = set()
    if isinstance(value, dict):
        for key, v in value.items():
            if key == "Assign" and isinstance(v, dict):
                names.update(k[:-2] if k.endswith(".$") else k for k in v)
            names |= _assigned(v)
    elif isinstance(value, list):
        for v in value:
            names |= _assigned(v)
    return names


def _source_references(s: dict[str, Any], ql: str, shadowed: frozenset[str]) -> References:
    """The `$secret`/`$param` references of every JSONata expression in the state's own fields
    (any field, Choice rules and catchers included; nested state machines have their own)."""
    if ql != JSONATA:
        return _NO_REFERENCES
    refs = References()

    def walk(v: Any) -> None:
        nonlocal refs
        if isinstance(v, str):
            m = _EXPRESSION.match(v)
            if m is not None:
                try:
                    refs = refs | expr.compile_expression(m.group(1).strip()).references
                except expr.ExpressionError:
                    pass  # the validator reports it; evaluating it fails the state
        elif isinstance(v, dict):
            for key, item in v.items():
                if key != "Comment":
                    walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    for key, value in s.items():
        if key not in _NESTED and key != "Comment":
            walk(value)
    if "secret" in shadowed:
        refs = References(frozenset(), refs.params, refs.dynamic_params, False)
    if "param" in shadowed:
        refs = References(refs.secrets, frozenset(), False, refs.reads_all_secrets)
    return refs


def _state(
    path: str, name: str, s: dict[str, Any], machines: dict[str, Machine], ql: str, options: Options
) -> StatePlan:
    plan = _build_state(path, name, s, machines, ql, options)
    refs = _source_references(s, ql, options.shadowed)
    if refs != _NO_REFERENCES:
        for template in plan_mod.templates(plan):
            if isinstance(template, Hooked):
                template.references = refs
    return plan


def _build_state(
    path: str, name: str, s: dict[str, Any], machines: dict[str, Machine], ql: str, options: Options
) -> StatePlan:
    kind = s["Type"]
    plan = StatePlan(name=name, type=_TYPES[kind], next=s.get("Next"), end=bool(s.get("End")))
    jsonata_mode = ql == JSONATA
    builder = _JSONataState(name, s) if jsonata_mode else _JSONPathState(name, s)
    if kind == "Pass":
        plan.value = builder.pass_value()
        plan.output = builder.output(result_based=False)
        plan.assign = builder.assign()
    elif kind == "Choice":
        plan.routes = builder.routes()
    elif kind == "Wait":
        plan.seconds, plan.timestamp = builder.wait()
        plan.output = builder.output(result_based=False)
        plan.assign = builder.assign()
    elif kind == "Succeed":
        plan.output = builder.output(result_based=False)
    elif kind == "Fail":
        plan.error = builder.fail()
    elif kind in ("Parallel", "Map", "Task"):
        target = resources.resolve(s["Resource"], name, options.mock_target) if kind == "Task" else None
        plan.output = builder.output(result_based=True, target=target)
        plan.assign = builder.assign(result_based=True)
        lambda_errors = target is not None and target.is_lambda
        plan.retry = [_retrier(r, lambda_errors) for r in s.get("Retry", [])]
        plan.catch = [builder.catcher(c, lambda_errors) for c in s.get("Catch", [])]
        if lambda_errors:
            for catcher in plan.catch:
                catcher.errors = _function_aliases(catcher.errors)
        if isinstance(s.get("TimeoutSeconds"), (int, float)):
            plan.timeout_seconds = float(s["TimeoutSeconds"])
        if kind == "Parallel":
            plan.branches = [
                _machine(f"{path}/{name}/{i}", branch, machines, branch.get("QueryLanguage", ql), options)
                for i, branch in enumerate(s["Branches"])
            ]
            plan.item = builder.parallel_input()
        elif kind == "Map":
            processor = s.get("ItemProcessor") or s.get("Iterator")
            plan.processor = _machine(
                f"{path}/{name}/processor", processor, machines, processor.get("QueryLanguage", ql), options
            )
            plan.items = builder.map_items()
            concurrency = constant(s.get("MaxConcurrency"))
            plan.max_concurrency = concurrency if isinstance(concurrency, int) and concurrency > 0 else 0
            count, pct = constant(s.get("ToleratedFailureCount")), constant(s.get("ToleratedFailurePercentage"))
            if isinstance(count, (int, float)) and not isinstance(count, bool):
                plan.tolerated_failure_count = int(count)
            if isinstance(pct, (int, float)) and not isinstance(pct, bool):
                plan.tolerated_failure_percentage = float(pct)
            # from the execution: a …Path (JSONPath) or an expression that reads it (JSONata)
            plan.max_concurrency_template = builder.map_limit("MaxConcurrency")
            plan.tolerated_count_template = builder.map_limit("ToleratedFailureCount")
            plan.tolerated_percentage_template = builder.map_limit("ToleratedFailurePercentage")
            if distributed.is_distributed(s):
                plan.distributed = distributed.compile_spec(name, s, jsonata_mode)
        else:
            assert target is not None
            plan.mode = target.mode
            plan.action = Hooked(lambda d, t=target, b=builder: t.action(d, b))
            plan.parameters = Hooked(lambda d, t=target, b=builder: t.payload(d, b))
            if isinstance(s.get("HeartbeatSeconds"), (int, float)):
                plan.heartbeat_seconds = float(s["HeartbeatSeconds"])
            plan.timeout_template = builder.seconds("TimeoutSeconds")
            plan.heartbeat_template = builder.seconds("HeartbeatSeconds")
    return plan


FUNCTION_ERROR = "Function.Error."


def _function_aliases(names: tuple[str, ...]) -> tuple[str, ...]:
    """A Lambda-style error name (the function's errorType, `MyError`) also matches the Aionix
    function's `Function.Error.MyError`, so Lambda definitions retry and catch unchanged."""
    extra = tuple(FUNCTION_ERROR + n for n in names if not n.startswith(("States.", "Function.")))
    return names + extra


def _retrier(r: dict[str, Any], lambda_errors: bool = False) -> RetryPlan:
    jitter = "full" if r.get("JitterStrategy") == "FULL" else "none"
    names = tuple(r.get("ErrorEquals", []))
    return RetryPlan(
        _function_aliases(names) if lambda_errors else names,
        float(r.get("IntervalSeconds", 1)),
        int(r.get("MaxAttempts", 3)),
        float(r.get("BackoffRate", 2.0)),
        float(r["MaxDelaySeconds"]) if "MaxDelaySeconds" in r else None,
        jitter,
    )


def _error_output(error: dict[str, Any] | None, lambda_errors: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if error:
        name = error.get("error")
        if lambda_errors and isinstance(name, str) and name.startswith(FUNCTION_ERROR):
            name = name[len(FUNCTION_ERROR) :]  # the function's errorType, as Lambda reports it
        if name is not None:
            out["Error"] = name
        if error.get("cause") is not None:
            out["Cause"] = error["cause"]
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _JSONPathState:
    """Input/output processing of one state in JSONPath mode."""

    def __init__(self, name: str, s: dict[str, Any]) -> None:
        self.name, self.s = name, s

    def scope(self, d: dict[str, Any]) -> Scope:
        return Scope.of(self.name, d)

    def effective(self, sc: Scope) -> Any:
        return input_path(sc, self.s.get("InputPath", "$"), sc.input)

    def parameters(self, sc: Scope) -> Any:
        eff = self.effective(sc)
        if "Parameters" in self.s:
            return payload(sc, self.s["Parameters"], eff)
        return eff

    def pass_value(self) -> Hooked:
        def value(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            if "Parameters" in self.s:
                return payload(sc, self.s["Parameters"], self.effective(sc))
            if "Result" in self.s:
                return self.s["Result"]
            return self.effective(sc)

        return Hooked(value)

    def selected(self, sc: Scope, result: Any) -> Any:
        if "ResultSelector" in self.s:
            return payload(sc, self.s["ResultSelector"], result)
        return result

    def output(self, *, result_based: bool, target: resources.Target | None = None) -> Hooked:
        s = self.s

        def out(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            if s["Type"] in ("Wait", "Succeed"):
                return output_path(sc, s.get("OutputPath", "$"), self.effective(sc))
            result = d.get("result")
            if target is not None:
                result = target.shape(result)
            if result_based:
                result = self.selected(sc, result)
            merged = result_path(sc, s.get("ResultPath", "$"), sc.input, result)
            return output_path(sc, s.get("OutputPath", "$"), merged)

        return Hooked(out)

    def assign(self, *, result_based: bool = False) -> Hooked | None:
        if "Assign" not in self.s:
            return None
        s = self.s

        def assign(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            if result_based:
                base = self.selected(sc, d.get("result"))
            elif s["Type"] == "Pass":
                base = d.get("result")
            else:
                base = self.effective(sc)
            return payload(sc, s["Assign"], base)

        return Hooked(assign)

    def routes(self) -> list[RoutePlan]:
        s = self.s
        routes = []
        for rule in s.get("Choices", []):
            test = choice_mod.compile_rule(rule)
            routes.append(
                RoutePlan(
                    Hooked(lambda d, t=test: t(sc := self.scope(d), self.effective(sc))),
                    rule["Next"],
                    self._choice_output(),
                    self._choice_assign(rule.get("Assign", s.get("Assign"))),
                )
            )
        routes.append(self._default_route())
        return routes

    def _choice_output(self) -> Hooked:
        return Hooked(lambda d: output_path(sc := self.scope(d), self.s.get("OutputPath", "$"), self.effective(sc)))

    def _choice_assign(self, template: Any) -> Hooked | None:
        if template is None:
            return None
        return Hooked(lambda d: payload(sc := self.scope(d), template, self.effective(sc)))

    def _default_route(self) -> RoutePlan:
        default = self.s.get("Default")

        def condition(d: dict[str, Any]) -> bool:
            if default is None:
                raise Failure(plan_mod.NO_CHOICE_MATCHED, None)
            return True

        return RoutePlan(
            Hooked(condition), default or "", self._choice_output(), self._choice_assign(self.s.get("Assign"))
        )

    def wait(self) -> tuple[Hooked | None, Hooked | None]:
        s = self.s
        if "Seconds" in s:
            return Hooked(lambda d: s["Seconds"]), None
        if "SecondsPath" in s:

            def seconds(d: dict[str, Any]) -> Any:
                sc = self.scope(d)
                value = read_path(sc, s["SecondsPath"], self.effective(sc))
                where = f"{s['SecondsPath']} == {dumps(value)}"
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise sc.runtime(f"The SecondsPath parameter cannot be parsed as a long value: {where}")
                if isinstance(value, float) and not value.is_integer():
                    raise sc.runtime(f"The SecondsPath parameter cannot be parsed as a long value: {where}")
                if value < 0:
                    raise sc.runtime(f"The SecondsPath parameter references a negative value: {where}")
                return int(value)

            return Hooked(seconds), None
        if "Timestamp" in s:
            return None, Hooked(lambda d: s["Timestamp"])

        def stamp(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            value = read_path(sc, s["TimestampPath"], self.effective(sc))
            if not isinstance(value, str) or choice_mod.parse_timestamp(value) is None:
                raise sc.runtime(
                    f"The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time "
                    f"format string: {s['TimestampPath']} == {dumps(value)}"
                )
            return value

        return None, Hooked(stamp)

    def fail(self) -> Hooked:
        s = self.s

        def fail(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            error = s.get("Error")
            cause = s.get("Cause")
            if "ErrorPath" in s:
                error = payload(sc, {"v.$": s["ErrorPath"]}, sc.input)["v"]
            if "CausePath" in s:
                cause = payload(sc, {"v.$": s["CausePath"]}, sc.input)["v"]
            raise Failure(
                None if error is None else str(error),  # type: ignore[arg-type]
                None if cause is None else str(cause),
            )

        return Hooked(fail)

    def catcher(self, c: dict[str, Any], lambda_errors: bool = False) -> CatchPlan:
        def out(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            return result_path(sc, c.get("ResultPath", "$"), sc.input, _error_output(d.get("error"), lambda_errors))

        assign = None
        if "Assign" in c:
            assign = Hooked(lambda d: payload(self.scope(d), c["Assign"], _error_output(d.get("error"), lambda_errors)))
        return CatchPlan(tuple(c.get("ErrorEquals", [])), c["Next"], Hooked(out), assign)

    def parallel_input(self) -> Hooked:
        return Hooked(lambda d: self.parameters(self.scope(d)))

    def seconds(self, field: str) -> Hooked | None:
        """TimeoutSecondsPath / HeartbeatSecondsPath, read from the effective input."""
        path = self.s.get(field + "Path")
        if not isinstance(path, str):
            return None

        def seconds(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            value = read_path(sc, path, self.effective(sc))
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise sc.runtime(
                    f"The {field}Path field refers to value {dumps(value)} which is not a positive integer: {path}"
                )
            return value

        return Hooked(seconds)

    def map_items(self) -> Hooked:
        s = self.s
        selector = s.get("ItemSelector", s.get("Parameters"))

        def items(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            eff = self.effective(sc)
            values = read_path(sc, s["ItemsPath"], eff) if "ItemsPath" in s else eff
            if not isinstance(values, list):
                raise sc.query_error(f"Map state input must be an array but was: {dumps(values)}")
            if selector is None:
                return values
            return [payload(sc.with_item(i, v, eff), selector, eff) for i, v in enumerate(values)]

        return Hooked(items)

    def map_limit(self, field: str) -> Hooked | None:
        """MaxConcurrencyPath / ToleratedFailureCountPath / ToleratedFailurePercentagePath: a
        path on the effective input, a variable (`$limits.max`) or the context object."""
        path = self.s.get(field + "Path")
        if not isinstance(path, str):
            return None
        percentage = field == "ToleratedFailurePercentage"

        def limit(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            value = read_path(sc, path, self.effective(sc))
            if not _valid_limit(value, percentage):
                text = value if isinstance(value, str) else dumps(value)
                kind = "a valid percentage between 0 and 100" if percentage else "a valid integer"
                raise sc.runtime(f'The {field}Path field refers to value "{text}" which is not {kind}: {path}')
            return value

        return Hooked(limit)


def _valid_limit(value: Any, percentage: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return False
    if percentage:
        return value <= 100
    return isinstance(value, int) or value.is_integer()


class _JSONataState:
    """Arguments/Output/Assign/Items/Condition of one state in JSONata mode."""

    def __init__(self, name: str, s: dict[str, Any]) -> None:
        self.name, self.s = name, s

    def scope(self, d: dict[str, Any], *, result: bool = False) -> Scope:
        sc = Scope.of(self.name, d)
        if result:
            sc.result = d.get("result")
        return sc

    def parameters(self, sc: Scope) -> Any:
        if "Arguments" in self.s:
            return jsonata(sc, self.s["Arguments"], "Arguments")
        return sc.input

    def pass_value(self) -> Hooked:
        return Hooked(lambda d: d.get("input"))

    def output(self, *, result_based: bool, target: resources.Target | None = None) -> Hooked:
        s = self.s

        def out(d: dict[str, Any]) -> Any:
            sc = self.scope(d, result=result_based)
            if target is not None:
                sc.result = target.shape(sc.result)
            if "Output" in s:
                return jsonata(sc, s["Output"], "Output")
            return sc.result if result_based else sc.input

        return Hooked(out)

    def assign(self, *, result_based: bool = False) -> Hooked | None:
        if "Assign" not in self.s:
            return None
        template = self.s["Assign"]
        return Hooked(lambda d: jsonata(self.scope(d, result=result_based), template, "Assign"))

    def routes(self) -> list[RoutePlan]:
        s = self.s
        routes = []
        for i, rule in enumerate(s.get("Choices", [])):
            routes.append(
                RoutePlan(
                    Hooked(lambda d, r=rule, i=i: self._condition(d, r, i)),
                    rule["Next"],
                    self._output(rule.get("Output", s.get("Output", MISSING))),
                    self._assign(rule.get("Assign", s.get("Assign"))),
                )
            )
        default = s.get("Default")

        def otherwise(d: dict[str, Any]) -> bool:
            if default is None:
                raise Failure(plan_mod.NO_CHOICE_MATCHED, None)
            return True

        routes.append(
            RoutePlan(
                Hooked(otherwise), default or "", self._output(s.get("Output", MISSING)), self._assign(s.get("Assign"))
            )
        )
        return routes

    def _condition(self, d: dict[str, Any], rule: dict[str, Any], i: int) -> bool:
        sc = self.scope(d)
        value = jsonata(sc, rule.get("Condition"), "Condition")
        if not isinstance(value, bool):
            raise sc.query_error(
                f"The JSONata expression '{rule.get('Condition')}' specified for the field 'Condition' returned an "
                f"unexpected result type. Expected 'boolean', but was '{_type_name(value)}' for value: {dumps(value)}"
            )
        return value

    def _output(self, template: Any) -> Hooked:
        if template is MISSING:
            return Hooked(lambda d: d.get("input"))
        return Hooked(lambda d: jsonata(self.scope(d), template, "Output"))

    def _assign(self, template: Any) -> Hooked | None:
        if template is None:
            return None
        return Hooked(lambda d: jsonata(self.scope(d), template, "Assign"))

    def wait(self) -> tuple[Hooked | None, Hooked | None]:
        s = self.s
        if "Seconds" in s:

            def seconds(d: dict[str, Any]) -> Any:
                sc = self.scope(d)
                value = jsonata(sc, s["Seconds"], "Seconds")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise sc.query_error(
                        f"The JSONata expression '{s['Seconds']}' specified for the field 'Seconds' returned an "
                        f"unexpected result type. Expected 'integer', but was '{_type_name(value)}' for value: "
                        f"{dumps(value)}"
                    )
                return value

            return Hooked(seconds), None
        return None, Hooked(lambda d: jsonata(self.scope(d), s.get("Timestamp"), "Timestamp"))

    def fail(self) -> Hooked:
        s = self.s

        def fail(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            error = jsonata(sc, s["Error"], "Error") if "Error" in s else None
            cause = jsonata(sc, s["Cause"], "Cause") if "Cause" in s else None
            raise Failure(
                None if error is None else str(error),  # type: ignore[arg-type]
                None if cause is None else str(cause),
            )

        return Hooked(fail)

    def catcher(self, c: dict[str, Any], lambda_errors: bool = False) -> CatchPlan:
        def scope(d: dict[str, Any]) -> Scope:
            sc = self.scope(d)
            sc.error = _error_output(d.get("error"), lambda_errors)
            return sc

        def out(d: dict[str, Any]) -> Any:
            sc = scope(d)
            return jsonata(sc, c["Output"], "Output") if "Output" in c else sc.error

        assign = Hooked(lambda d: jsonata(scope(d), c["Assign"], "Assign")) if "Assign" in c else None
        return CatchPlan(tuple(c.get("ErrorEquals", [])), c["Next"], Hooked(out), assign)

    def parallel_input(self) -> Hooked:
        return Hooked(lambda d: self.parameters(self.scope(d)))

    def seconds(self, field: str) -> Hooked | None:
        """A JSONata TimeoutSeconds / HeartbeatSeconds expression."""
        template = self.s.get(field)
        if not isinstance(template, str):
            return None

        def seconds(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            value = jsonata(sc, template, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise sc.query_error(
                    f"The JSONata expression '{template}' specified for the field '{field}' returned an unexpected "
                    f"result type. Expected 'integer', but was '{_type_name(value)}' for value: {dumps(value)}"
                )
            return value

        return Hooked(seconds)

    def map_items(self) -> Hooked:
        s = self.s
        selector = s.get("ItemSelector")

        def items(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            if "Items" in s:
                values = jsonata(sc, s["Items"], "Items")
                if not isinstance(values, list):
                    source = s["Items"]
                    if isinstance(source, str) and source.strip().startswith("{%"):
                        source = source.strip()[2:-2].strip()
                    raise sc.query_error(
                        f"The JSONata expression '{source}' specified for the field 'Items' returned an unexpected "
                        f"result type. Expected 'array', but was '{_type_name(values)}' for value: {dumps(values)}"
                    )
            else:
                values = sc.input
                if not isinstance(values, list):
                    raise sc.query_error(f"Map state input must be an array but was: {dumps(values)}")
            if selector is None:
                return values
            return [jsonata(sc.with_item(i, v, sc.input), selector, "ItemSelector") for i, v in enumerate(values)]

        return Hooked(items)

    def map_limit(self, field: str) -> Hooked | None:
        """MaxConcurrency / ToleratedFailureCount / ToleratedFailurePercentage as an expression
        that reads the execution (input, variables, context, `$param`…); a constant one is
        static (see `_build_state`)."""
        template = self.s.get(field)
        if not isinstance(template, str) or constant(template) is not None:
            return None
        percentage = field == "ToleratedFailurePercentage"
        source = template.strip()
        if source.startswith("{%") and source.endswith("%}"):
            source = source[2:-2].strip()

        def limit(d: dict[str, Any]) -> Any:
            sc = self.scope(d)
            value = jsonata(sc, template, field)
            if not _valid_limit(value, percentage):
                expected = "number" if percentage else "integer"
                raise sc.query_error(
                    f"The JSONata expression '{source}' specified for the field '{field}' returned an unexpected "
                    f"result type. Expected '{expected}', but was '{_type_name(value)}' for value: {dumps(value)}"
                )
            return value

        return Hooked(limit)
