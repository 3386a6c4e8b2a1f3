"""What the language server knows about one workflow file, without the protocol: diagnostics
from the real validator, the completion context at a position, hover text, state references and
symbols. `aionix.lsp.server` wires these to LSP messages."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from aionix.lsp import positions
from aionix.lsp.positions import LineIndex, Node, ParseError, Pos
from aionix.stepflow.asl import is_asl

WORKFLOW_SUFFIXES = (".flow.yaml", ".flow.yml", ".flow.json", ".asl.json", ".asl.yaml")


def is_workflow_uri(uri: str) -> bool:
    return uri.endswith(WORKFLOW_SUFFIXES)


def is_json_uri(uri: str) -> bool:
    return uri.endswith(".json")


@dataclass
class Dialect:
    states: str
    entry: str
    type: str
    branches: str
    processors: tuple[str, ...]
    next_fields: tuple[str, ...]  # fields of a state that name another state
    item_lists: tuple[str, ...]  # lists whose items have `next`
    errors_field: str
    retry: str
    catch: str
    assign: str


DSL = Dialect(
    "states",
    "entry",
    "type",
    "branches",
    ("processor",),
    ("next", "default"),
    ("routes", "catch"),
    "errors",
    "retry",
    "catch",
    "assign",
)
ASL = Dialect(
    "States",
    "StartAt",
    "Type",
    "Branches",
    ("ItemProcessor", "Iterator"),
    ("Next", "Default"),
    ("Choices", "Catch"),
    "ErrorEquals",
    "Retry",
    "Catch",
    "Assign",
)


@dataclass
class Document:
    uri: str
    text: str
    value: Any = None
    root: Node | None = None
    error: ParseError | None = None
    index: LineIndex = field(init=False)

    def __post_init__(self) -> None:
        self.index = LineIndex(self.text)
        try:
            self.value, self.root = positions.parse(self.text, is_json_uri(self.uri))
        except ParseError as exc:
            self.error = exc

    @property
    def json_like(self) -> bool:
        return is_json_uri(self.uri)

    @property
    def dialect(self) -> Dialect:
        return ASL if is_asl(self.value) or self.uri.endswith((".asl.json", ".asl.yaml")) else DSL

    @property
    def name(self) -> str:
        """The template name the file stands for: its file name without the suffix."""
        base = self.uri.rsplit("/", 1)[-1]
        for suffix in WORKFLOW_SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return re.sub(r"[^A-Za-z0-9_.-]", "-", base).lstrip("_.-") or "workflow"


# ------------------------------------------------------------------ diagnostics
@dataclass
class Diagnostic:
    start: Pos
    end: Pos
    message: str
    severity: str = "error"
    pointer: str = ""


def diagnostics(doc: Document) -> list[Diagnostic]:
    from aionix.stepflow.validate import validate

    if doc.error is not None:
        line, col = doc.error.pos
        return [Diagnostic((line, col), (line, col + 1), doc.error.message)]
    if doc.root is None:
        return []
    report = validate(doc.value)
    out = []
    for problem in [*report.errors, *report.warnings]:
        start, end = problem_range(doc, problem.pointer, problem.message, problem.expression, problem.position)
        out.append(Diagnostic(start, end, problem.message, problem.severity, problem.pointer))
    return out


def problem_range(
    doc: Document, pointer: str, message: str = "", expression: str | None = None, position: int | None = None
) -> tuple[Pos, Pos]:
    assert doc.root is not None
    node, exact = positions.find(doc.root, pointer)
    if not exact:
        # a missing field: point at the key of the object that lacks it
        if node.key_start is not None:
            return node.key_start, node.key_end  # type: ignore[return-value]
        return node.start, _first_line_end(doc, node)
    if expression is not None and node.kind == "scalar" and node.verbatim and isinstance(node.value, str):
        at = node.value.find(expression)
        if at >= 0:
            begin = doc.index.offset(node.start) + node.quote + at
            p = max(0, min(len(expression), position if position is not None else 0))
            lo = max(0, p - 1)
            hi = max(lo + 1, p)
            return doc.index.pos(begin + lo), doc.index.pos(begin + min(hi, len(expression)))
    if node.key_start is not None and (node.kind != "scalar" or message == "unknown field"):
        return node.key_start, node.key_end  # type: ignore[return-value]
    if node.kind != "scalar":
        return node.start, _first_line_end(doc, node)
    return node.start, node.end


def _first_line_end(doc: Document, node: Node) -> Pos:
    line = node.start[0]
    text = doc.text.splitlines()[line] if line < len(doc.text.splitlines()) else ""
    end = (line, len(text.encode("utf-16-le")) // 2)
    return end if end > node.start else (line, node.start[1] + 1)


# ------------------------------------------------------------------ machines and states
def machines(value: Any, d: Dialect, base: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every state machine (the document, each branch, each processor) with its path."""
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    if not isinstance(value, dict):
        return out
    out.append((base, value))
    states = value.get(d.states)
    if not isinstance(states, dict):
        return out
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        branches = state.get(d.branches)
        if isinstance(branches, list):
            for i, branch in enumerate(branches):
                out.extend(machines(branch, d, (*base, d.states, name, d.branches, i)))
        for key in d.processors:
            if isinstance(state.get(key), dict):
                out.extend(machines(state[key], d, (*base, d.states, name, key)))
    return out


def locate(path: list[Any], d: Dialect) -> tuple[tuple[Any, ...], str | None, list[Any]]:
    """Split a path into (the machine's path, the state's name or None, the rest inside it)."""
    prefix: tuple[Any, ...] = ()
    p = list(path)
    while len(p) >= 2 and p[0] == d.states:
        name, rest = p[1], p[2:]
        if len(rest) >= 2 and rest[0] == d.branches and isinstance(rest[1], int):
            prefix, p = (*prefix, d.states, name, d.branches, rest[1]), rest[2:]
            continue
        if len(rest) >= 1 and rest[0] in d.processors and (len(rest) == 1 or rest[1] in (d.states, d.entry)):
            prefix, p = (*prefix, d.states, name, rest[0]), rest[1:]
            continue
        return prefix, str(name), rest
    return prefix, None, p


def get_path(value: Any, path: tuple[Any, ...] | list[Any]) -> Any:
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value


def state_names(value: Any, d: Dialect, machine: tuple[Any, ...]) -> list[str]:
    states = get_path(value, (*machine, d.states))
    return list(states) if isinstance(states, dict) else []


def successors(state: Any, d: Dialect) -> list[str]:
    if not isinstance(state, dict):
        return []
    out = [state[k] for k in d.next_fields if isinstance(state.get(k), str)]
    for key in d.item_lists:
        for item in state.get(key) if isinstance(state.get(key), list) else []:
            if isinstance(item, dict):
                nxt = item.get("Next" if d is ASL else "next")
                if isinstance(nxt, str):
                    out.append(nxt)
    return out


def upstream(states: dict[str, Any], d: Dialect, target: str) -> list[str]:
    """The states from which `target` can be reached (its ancestors in the graph)."""
    preds: dict[str, set[str]] = {}
    for name, state in states.items():
        for nxt in successors(state, d):
            preds.setdefault(nxt, set()).add(name)
    seen: list[str] = []
    todo = [target]
    while todo:
        for p in sorted(preds.get(todo.pop(), ())):
            if p not in seen and p != target:
                seen.append(p)
                todo.append(p)
    return seen


def variables_in_scope(value: Any, d: Dialect, path: list[Any]) -> dict[str, tuple[str, Any]]:
    """`vars.*` assigned upstream of the state at `path` (also in enclosing machines):
    name -> (assigning state, assigned value)."""
    out: dict[str, tuple[str, Any]] = {}
    frames: list[tuple[tuple[Any, ...], str]] = []
    prefix: tuple[Any, ...] = ()
    p = list(path)
    while len(p) >= 2 and p[0] == d.states:
        name, rest = p[1], p[2:]
        frames.append((prefix, str(name)))
        if len(rest) >= 2 and rest[0] == d.branches and isinstance(rest[1], int):
            prefix, p = (*prefix, d.states, name, d.branches, rest[1]), rest[2:]
        elif len(rest) >= 1 and rest[0] in d.processors:
            prefix, p = (*prefix, d.states, name, rest[0]), rest[1:]
        else:
            break
    for machine, name in frames:
        states = get_path(value, (*machine, d.states))
        if not isinstance(states, dict):
            continue
        for up in upstream(states, d, name):
            for var, assigned in _assigns(states.get(up), d).items():
                out.setdefault(var, (up, assigned))
    return out


def _assigns(state: Any, d: Dialect) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(state, dict):
        return out
    if isinstance(state.get(d.assign), dict):
        out.update(state[d.assign])
    for key in d.item_lists:
        for item in state.get(key) if isinstance(state.get(key), list) else []:
            if isinstance(item, dict) and isinstance(item.get(d.assign), dict):
                for k, v in item[d.assign].items():
                    out.setdefault(k, v)
    return out


def describe_value(value: Any) -> str:
    """The type of an assigned value: a JSON type, or `expression` for `{% %}`."""
    from aionix import expr

    if expr.is_expression(value):
        return f"expression {expr.expression_source(value)}"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null"
    )


# ------------------------------------------------------------------ references, symbols
def reference_at(doc: Document, pos: Pos) -> tuple[str, tuple[Any, ...]] | None:
    """When `pos` is on a value naming a state: (that name, its machine's path)."""
    if doc.root is None:
        return None
    path, node, on_key = positions.node_at(doc.root, pos)
    if on_key or node.kind != "scalar" or not isinstance(node.value, str) or not path:
        return None
    d = doc.dialect
    if path[-1] == d.entry:
        return node.value, tuple(path[:-1])
    machine, name, rest = locate(path, d)
    if name is None:
        return None
    is_ref = (len(rest) == 1 and rest[0] in d.next_fields) or (
        len(rest) == 3 and rest[0] in d.item_lists and rest[2] == ("Next" if d is ASL else "next")
    )
    return (node.value, machine) if is_ref else None


def state_node(doc: Document, machine: tuple[Any, ...], name: str) -> Node | None:
    if doc.root is None:
        return None
    node, exact = positions.find(doc.root, "".join(f"/{p}" for p in (*machine, doc.dialect.states, name)))
    return node if exact else None


@dataclass
class Symbol:
    name: str
    detail: str
    start: Pos
    end: Pos
    sel_start: Pos
    sel_end: Pos
    children: list[Symbol]


def symbols(doc: Document) -> list[Symbol]:
    if doc.root is None:
        return []
    return _symbols(doc, doc.root, doc.dialect)


def _symbols(doc: Document, machine: Node, d: Dialect) -> list[Symbol]:
    states = machine.child(d.states)
    if states is None or not isinstance(states.children, dict):
        return []
    out = []
    for name, node in states.children.items():
        kids: list[Symbol] = []
        branches = node.child(d.branches)
        if branches is not None and isinstance(branches.children, list):
            for branch in branches.children:
                kids.extend(_symbols(doc, branch, d))
        for key in d.processors:
            proc = node.child(key)
            if proc is not None:
                kids.extend(_symbols(doc, proc, d))
        kind = node.child(d.type)
        detail = str(kind.value) if kind is not None and kind.kind == "scalar" else ""
        out.append(
            Symbol(
                name,
                detail,
                node.key_start or node.start,
                node.end,
                node.key_start or node.start,
                node.key_end or node.start,
                kids,
            )
        )
    return out


# ------------------------------------------------------------------ formatting
def formatted(doc: Document) -> str | None:
    """The document re-indented (JSON: 2 spaces; YAML: block style), keys in their order; None when
    it does not parse, or is YAML with comments (PyYAML would drop them)."""
    if doc.root is None or doc.error is not None:
        return None
    if doc.json_like:
        return json.dumps(doc.value, indent=2, ensure_ascii=False) + "\n"
    if _has_yaml_comment(doc.text):
        return None
    return yaml.safe_dump(doc.value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def _has_yaml_comment(text: str) -> bool:
    return any(re.search(r"(^|\s)#", line) for line in text.splitlines())


# ------------------------------------------------------------------ schema docs
@functools.cache
def dsl_schema() -> dict[str, Any]:
    from aionix.stepflow.models import dsl_schema as schema

    return schema()


STATE_DEFS = {
    "task": "TaskState",
    "parallel": "ParallelState",
    "map": "MapState",
    "router": "RouterState",
    "wait": "WaitState",
    "set": "SetState",
    "succeed": "SucceedState",
    "fail": "FailState",
}
ITEM_DEFS = {"retry": "Retrier", "catch": "Catcher", "routes": "Route"}


def schema_for(doc: Document, path: list[Any]) -> dict[str, Any] | None:
    """The JSON Schema object (with `properties`) that describes the object at `path`."""
    schema = dsl_schema()
    defs = schema.get("$defs", {})
    d = doc.dialect
    if d is ASL:
        return None
    machine, name, rest = locate(path, d)
    if name is None:
        if not rest:
            return schema if not machine else defs.get("Branch")
        return None
    if not rest:
        kind = get_path(doc.value, (*machine, d.states, name, d.type))
        return defs.get(STATE_DEFS.get(kind, "")) if isinstance(kind, str) else None
    if len(rest) == 2 and rest[0] in ITEM_DEFS and isinstance(rest[1], int):
        return defs.get(ITEM_DEFS[rest[0]])
    if rest == ["output"]:
        return defs.get("Output")
    return None


def field_doc(prop: dict[str, Any], name: str) -> str:
    """Markdown for one property of a JSON Schema."""
    lines = [f"**{name}**"]
    kinds = _schema_type(prop)
    if kinds:
        lines[0] += f" — `{kinds}`"
    if prop.get("description"):
        lines.append(prop["description"])
    if "default" in prop and prop["default"] not in (None, []):
        lines.append(f"default: `{json.dumps(prop['default'])}`")
    for key, label in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤")):
        if key in prop:
            lines.append(f"{label} {prop[key]}")
    return "\n\n".join(lines)


def _schema_type(prop: dict[str, Any]) -> str:
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "type" in prop:
        return prop["type"] if isinstance(prop["type"], str) else " | ".join(prop["type"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " | ".join(filter(None, (_schema_type(p) for p in prop[key])))
    return "any ({% %} expression or JSON)"
