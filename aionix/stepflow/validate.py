"""Validation of a DSL document: every problem at once, each with a JSON pointer.

Schema errors come from the pydantic models; the graph rules (entry, `next`/`default`
targets, reachability, ends, unique names across nested branches) and expression syntax are
checked on the raw document so that a schema error elsewhere does not hide them.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from aionix import expr
from aionix.stepflow.asl import is_asl
from aionix.stepflow.asl.validate import validate as validate_asl
from aionix.stepflow.models import Problem, State, ValidationReport, Workflow


def _expression_fields() -> tuple[str, ...]:
    """Every state field that may hold `{% %}` expressions (typed `Any`, as the models declare
    them), so that a field added to a model is syntax-checked without being listed here.
    `output` (an `Output` object), `routes` and `catch` are walked separately."""
    names: set[str] = set()
    for model in typing.get_args(typing.get_args(State)[0]):
        for name, info in model.model_fields.items():
            if "Any" in str(info.annotation) and name not in ("output", "routes", "catch"):
                names.add(name)
    return tuple(sorted(names))


EXPRESSION_FIELDS = _expression_fields()
TERMINAL_TYPES = frozenset({"succeed", "fail"})


def _ptr(*parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _schema_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS)]
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")  # the offending field is the state's type, not the whole state
            msg = f"type must be one of {', '.join(sorted(_UNION_TAGS))}" + (
                f", not {err['input'].get('type')!r}"
                if isinstance(err.get("input"), dict) and "type" in err["input"]
                else ""
            )
        out.append(Problem(pointer=_ptr(*loc) or "/", message=msg))
    return out


_UNION_TAGS = {"task", "parallel", "map", "router", "wait", "set", "succeed", "fail"}


def _machines(doc: dict[str, Any], base: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The document and every nested branch/processor, with their pointer prefix."""
    yield base, doc
    states = doc.get("states")
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        if state.get("type") == "parallel" and isinstance(state.get("branches"), list):
            for i, branch in enumerate(state["branches"]):
                if isinstance(branch, dict):
                    yield from _machines(branch, (*base, "states", name, "branches", i))
        if state.get("type") == "map" and isinstance(state.get("processor"), dict):
            yield from _machines(state["processor"], (*base, "states", name, "processor"))


def _successors(state: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(state.get("next"), str):
        out.append((state["next"], ("next",)))
    if isinstance(state.get("default"), str):
        out.append((state["default"], ("default",)))
    for key in ("routes", "catch"):
        items = state.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict) and isinstance(item.get("next"), str):
                    out.append((item["next"], (key, i, "next")))
    return out


def _kind(state: dict[str, Any]) -> str | None:
    """A state's type, or None when it is not a string (the schema problems name that)."""
    kind = state.get("type")
    return kind if isinstance(kind, str) else None


def _graph_problems(doc: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    seen_names: dict[str, str] = {}
    for base, machine in _machines(doc):
        states = machine.get("states")
        if not isinstance(states, dict) or not states:
            continue
        entry = machine.get("entry")
        if not isinstance(entry, str):
            problems.append(Problem(pointer=_ptr(*base, "entry"), message="missing entry: name the first state"))
        elif entry not in states:
            problems.append(Problem(pointer=_ptr(*base, "entry"), message=f"entry names an unknown state {entry!r}"))
        for name, state in states.items():
            where = _ptr(*base, "states", name)
            if name in seen_names and base:
                problems.append(
                    Problem(pointer=where, message=f"duplicate state name {name!r} (also at {seen_names[name]})")
                )
            elif name in seen_names:
                problems.append(Problem(pointer=where, message=f"duplicate state name {name!r}"))
            seen_names.setdefault(name, where)
            if not isinstance(state, dict):
                continue
            kind = _kind(state)
            for target, rel in _successors(state):
                if target not in states:
                    problems.append(
                        Problem(pointer=_ptr(*base, "states", name, *rel), message=f"unknown state {target!r}")
                    )
            has_next = isinstance(state.get("next"), str)
            is_end = state.get("end") is True
            if kind in TERMINAL_TYPES:
                if has_next:
                    problems.append(
                        Problem(pointer=where + "/next", message=f"a {kind} state ends the run; it takes no next")
                    )
            elif kind == "router":
                if has_next or is_end:
                    problems.append(Problem(pointer=where, message="a router takes routes and default, not next/end"))
            elif has_next and is_end:
                problems.append(Problem(pointer=where, message="has both next and end"))
            elif not has_next and not is_end and kind is not None:
                problems.append(Problem(pointer=where, message="has neither next nor end: true"))
            if kind == "map" and not isinstance(state.get("processor"), dict):
                problems.append(
                    Problem(pointer=where + "/processor", message="a map needs a processor {entry, states}")
                )
            if kind == "parallel" and (not isinstance(state.get("branches"), list) or not state["branches"]):
                problems.append(Problem(pointer=where + "/branches", message="a parallel needs at least one branch"))
            if kind == "wait" and (state.get("seconds") is None) == (state.get("timestamp") is None):
                problems.append(Problem(pointer=where, message="a wait needs exactly one of seconds or timestamp"))
            for i, retrier in enumerate(state.get("retry") if isinstance(state.get("retry"), list) else []):
                errs = retrier.get("errors") if isinstance(retrier, dict) else None
                if isinstance(errs, list) and "States.ALL" in errs and (len(errs) > 1 or i != len(state["retry"]) - 1):
                    problems.append(
                        Problem(
                            pointer=where + f"/retry/{i}/errors",
                            message="States.ALL must appear alone in the last retrier",
                        )
                    )
            for i, catcher in enumerate(state.get("catch") if isinstance(state.get("catch"), list) else []):
                errs = catcher.get("errors") if isinstance(catcher, dict) else None
                if isinstance(errs, list) and "States.ALL" in errs and (len(errs) > 1 or i != len(state["catch"]) - 1):
                    problems.append(
                        Problem(
                            pointer=where + f"/catch/{i}/errors",
                            message="States.ALL must appear alone in the last catcher",
                        )
                    )
        if isinstance(entry, str) and entry in states:
            problems.extend(_reachability(base, states, entry))
    return problems


def _reachability(base: tuple[Any, ...], states: dict[str, Any], entry: str) -> list[Problem]:
    problems = []
    edges = {n: [t for t, _ in _successors(s)] if isinstance(s, dict) else [] for n, s in states.items()}
    reached = {entry}
    todo = [entry]
    while todo:
        for target in edges.get(todo.pop(), []):
            if target in states and target not in reached:
                reached.add(target)
                todo.append(target)
    for name in states:
        if name not in reached:
            problems.append(
                Problem(pointer=_ptr(*base, "states", name), message=f"state {name!r} is unreachable from {entry!r}")
            )
    # states from which some end can be reached
    ending = {
        n for n, s in states.items() if isinstance(s, dict) and (s.get("end") is True or _kind(s) in TERMINAL_TYPES)
    }
    changed = True
    while changed:
        changed = False
        for name, targets in edges.items():
            if name not in ending and any(t in ending for t in targets):
                ending.add(name)
                changed = True
    for name in states:
        if name in reached and name not in ending:
            problems.append(
                Problem(pointer=_ptr(*base, "states", name), message=f"no path from {name!r} ever reaches an end")
            )
    return problems


def _expression_values(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for base, machine in _machines(doc):
        states = machine.get("states")
        if not isinstance(states, dict):
            continue
        for name, state in states.items():
            if not isinstance(state, dict):
                continue
            where = (*base, "states", name)
            for key in EXPRESSION_FIELDS:
                if key in state:
                    yield _ptr(*where, key), state[key]
            if isinstance(state.get("output"), dict) and "expression" in state["output"]:
                yield _ptr(*where, "output", "expression"), state["output"]["expression"]
            if isinstance(state.get("action"), str):
                yield _ptr(*where, "action"), state["action"]
            for key in ("routes", "catch"):
                for i, item in enumerate(state.get(key) if isinstance(state.get(key), list) else []):
                    if not isinstance(item, dict):
                        continue
                    for sub in ("condition", "assign", "output"):
                        if sub in item:
                            value = item[sub]
                            if sub == "output" and isinstance(value, dict) and key == "routes":
                                value = value.get("expression")
                            yield _ptr(*where, key, i, sub), value


def _expression_problems(doc: dict[str, Any]) -> list[Problem]:
    problems = []
    for pointer, value in _expression_values(doc):
        try:
            expr.compile_template(value, pointer=pointer)
        except expr.ExpressionError as exc:
            problems.append(
                Problem(
                    pointer=exc.details.get("pointer", pointer),
                    message=f"JSONata syntax error: {exc.message}",
                    expression=exc.expression,
                    position=exc.position,
                )
            )
    return problems


def validate(doc: Any, *, known_target: Callable[[str], bool] | None = None) -> ValidationReport:
    """Check a DSL document; `known_target(action)` (optional) turns unknown actions into warnings."""
    if is_asl(doc):
        return validate_asl(doc, known_target=known_target)
    if not isinstance(doc, dict):
        return ValidationReport(valid=False, errors=[Problem(pointer="/", message="a workflow must be a JSON object")])
    errors: list[Problem] = []
    try:
        Workflow.model_validate(doc)
    except ValidationError as exc:
        errors.extend(_schema_problems(exc))
    if not isinstance(doc.get("states"), dict) and not any(p.pointer == "/states" for p in errors):
        errors.append(Problem(pointer="/states", message="missing states"))
    if "entry" not in doc and not any(p.pointer == "/entry" for p in errors):
        errors.append(Problem(pointer="/entry", message="missing entry: name the first state"))
    seen = {(p.pointer, p.message) for p in errors}
    for problem in _graph_problems(doc) + _expression_problems(doc):
        if (problem.pointer, problem.message) not in seen:
            seen.add((problem.pointer, problem.message))
            errors.append(problem)
    warnings: list[Problem] = []
    if known_target is not None and not errors:
        for pointer, value in _expression_values(doc):
            if (
                pointer.endswith("/action")
                and isinstance(value, str)
                and not expr.is_expression(value)
                and not known_target(value)
            ):
                warnings.append(
                    Problem(
                        pointer=pointer, message=f"no executor is registered for {value!r} (yet)", severity="warning"
                    )
                )
    errors = [
        p
        for p in errors
        if not (
            p.message == "Field required"
            and p.pointer.endswith("/entry")
            and any(q.pointer == p.pointer and q is not p for q in errors)
        )
    ]
    return ValidationReport(valid=not errors, errors=errors, warnings=warnings)
