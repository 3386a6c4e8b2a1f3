"""Completion: what can be written at a position of a workflow file.

The context is found from the parsed document when it parses (or from a copy with the line being
typed completed into `key:`), else from the last version that parsed, and the text of the line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aionix.connectors.kinds import load_kinds
from aionix.lsp import analysis, positions
from aionix.lsp.analysis import ASL, Document
from aionix.lsp.remote import Remote
from aionix.stepflow import compile as plan
from aionix.stepflow.asl.validate import FIELDS as ASL_FIELDS
from aionix.stepflow.models import ASL_TYPES


@dataclass
class Item:
    label: str
    kind: str  # "keyword", "field", "reference", "value", "function", "variable", "module"
    detail: str = ""
    doc: str = ""
    insert: str | None = None


STATE_ERRORS = [
    plan.ALL,
    plan.TASK_FAILED,
    plan.TIMEOUT,
    plan.HEARTBEAT_TIMEOUT,
    plan.RUNTIME,
    plan.QUERY_EVALUATION,
    plan.BRANCH_FAILED,
    plan.NO_CHOICE_MATCHED,
    plan.EXCEED_TOLERATED,
    plan.RESULT_TOO_LARGE,
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ParameterPathFailure",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.Aborted",
    "States.Fail",
]

#: each connector kind's failures beyond `<Prefix>.Timeout` (README, Connectors)
KIND_ERRORS: dict[str, tuple[str, ...]] = {
    "Http": (
        "Timeout",
        "ConnectionError",
        "Refused",
        "TooManyRedirects",
        "GraphQLError",
        "Status.400",
        "Status.401",
        "Status.403",
        "Status.404",
        "Status.409",
        "Status.429",
        "Status.500",
        "Status.502",
        "Status.503",
        "Status.504",
    ),
    "Sql": ("Error", "AuthError", "ConnectionError", "Timeout", "NotConfigured"),
    "Redis": ("Error", "AuthError", "ConnectionError", "Timeout"),
    "S3": ("NoSuchKey", "NoSuchBucket", "AccessDenied", "SignatureDoesNotMatch", "ConnectionError", "Timeout"),
    "Email": ("AuthError", "Rejected", "ConnectionError", "Timeout", "Error"),
    "Fs": ("NotFound", "NotConfigured", "Timeout"),
    "Transform": ("Error", "Timeout"),
}


def error_names() -> list[tuple[str, str]]:
    """(error name, where it comes from): the States.* names and every connector kind's own."""
    out = [(name, "States") for name in STATE_ERRORS]
    seen = {n for n, _ in out}
    for kind in load_kinds().values():
        suffixes = KIND_ERRORS.get(kind.error_prefix, ("Error", "Timeout"))
        for suffix in (*suffixes, "NotInstalled"):
            name = f"{kind.error_prefix}.{suffix}"
            if name not in seen:
                seen.add(name)
                out.append((name, f"connector kind {kind.name}"))
    return out


JSONATA_FUNCTIONS = (
    "string",
    "length",
    "substring",
    "substringBefore",
    "substringAfter",
    "uppercase",
    "lowercase",
    "trim",
    "pad",
    "contains",
    "split",
    "join",
    "match",
    "replace",
    "eval",
    "base64encode",
    "base64decode",
    "encodeUrlComponent",
    "encodeUrl",
    "decodeUrlComponent",
    "decodeUrl",
    "number",
    "abs",
    "floor",
    "ceil",
    "round",
    "power",
    "sqrt",
    "random",
    "formatNumber",
    "formatBase",
    "formatInteger",
    "parseInteger",
    "sum",
    "max",
    "min",
    "average",
    "boolean",
    "not",
    "exists",
    "count",
    "append",
    "sort",
    "reverse",
    "shuffle",
    "distinct",
    "zip",
    "keys",
    "lookup",
    "spread",
    "merge",
    "sift",
    "each",
    "error",
    "assert",
    "type",
    "now",
    "millis",
    "fromMillis",
    "toMillis",
    "map",
    "filter",
    "single",
    "reduce",
)
AIONIX_FUNCTIONS = {
    "secret": "`$secret.NAME`: a CredVault secret's value, read when the state is entered",
    "param": "`$param('/path')`: a parameter's value, read when the state is entered",
}
CONTEXT_FIELDS = {
    "execution_id": "this execution's id",
    "workflow": "the template's name",
    "state": "the current state's name",
    "attempt": "1 on the first try, then 2, 3… on retries",
    "start_time": "when the execution started (Unix time)",
    "tenant": "the execution's tenant",
    "execution_input": "the execution's input",
    "item": "inside a map processor: the item being processed",
    "index": "inside a map processor: the item's position",
    "task_token": "a callback task's token",
}
ROOT_VARIABLES = {
    "input": "the state's input",
    "result": "a task's result (in output/assign), a set state's value",
    "vars": "variables assigned by upstream states (`assign`)",
    "context": "the execution and state: execution_id, workflow, state, attempt, …",
    "error": "in a catcher: {error, cause}",
}


# ------------------------------------------------------------------ context
@dataclass
class Context:
    path: list[Any]  # on_key: the object being written into; else the value's path
    on_key: bool  # writing a field name in the object at `path`
    prefix: str  # the text written so far of the word at the cursor
    expression: str | None = None  # text of a `{% %}` expression before the cursor
    doc: Document | None = None


_YAML_KEY_VALUE = re.compile(
    r"^(\s*)(?:-\s+)*(\"[^\"]*\"|'[^']*'|[^\s:#\"'][^:#]*?)\s*:\s+(.*)$|^(\s*)(?:-\s+)*(\"[^\"]*\"|'[^']*'|[^\s:#\"'][^:#]*?)\s*:$"
)
_JSON_KEY_VALUE = re.compile(r"\"((?:[^\"\\]|\\.)*)\"\s*:\s*\"?([^\"]*)$")
_WORD = re.compile(r"[A-Za-z0-9_.$:/*-]*$")


def context_at(doc: Document, last_good: Document | None, pos: positions.Pos) -> Context:
    line_text = doc.text.splitlines()[pos[0]] if pos[0] < len(doc.text.splitlines()) else ""
    offset = doc.index.offset(pos) - doc.index.starts[pos[0]] if pos[0] < len(doc.index.starts) else 0
    before = line_text[:offset]
    expression = _open_expression(before)
    parsed = _parsed_near(doc, last_good, pos, before)
    prefix = _WORD.search(before).group()  # type: ignore[union-attr]
    if parsed is None or parsed.root is None:
        return Context([], not _is_value(doc, before), prefix, expression, parsed or doc)
    path, _node, on_key = _path_at(parsed, pos, before)
    return Context(path, on_key, prefix, expression, parsed)


def _open_expression(before: str) -> str | None:
    at = before.rfind("{%")
    if at < 0 or "%}" in before[at:]:
        return None
    return before[at + 2 :]


def _is_value(doc: Document, before: str) -> bool:
    if doc.json_like:
        return _JSON_KEY_VALUE.search(before) is not None or before.rstrip().endswith((",", "[")) is False
    return _YAML_KEY_VALUE.match(before) is not None or before.lstrip().startswith("- ")


def _parsed_near(doc: Document, last_good: Document | None, pos: positions.Pos, before: str) -> Document | None:
    if doc.root is not None:
        return doc
    lines = doc.text.splitlines()
    if not doc.json_like and pos[0] < len(lines) and ":" not in lines[pos[0]]:
        patched = "\n".join([*lines[: pos[0]], lines[pos[0]] + ":", *lines[pos[0] + 1 :]])
        attempt = Document(doc.uri, patched)
        if attempt.root is not None:
            return attempt
    if doc.json_like and pos[0] < len(lines):
        line = lines[pos[0]]
        for repl in (line[: len(before)] + '": null' + line[len(before) :].lstrip('"'), line + " null"):
            attempt = Document(doc.uri, "\n".join([*lines[: pos[0]], repl, *lines[pos[0] + 1 :]]))
            if attempt.root is not None:
                return attempt
    return last_good


def _path_at(doc: Document, pos: positions.Pos, before: str) -> tuple[list[Any], positions.Node, bool]:
    assert doc.root is not None
    # a key on the cursor's line: its value (or the key itself while it is written)
    keyed = _key_on_line(doc.root, pos[0], [])
    if keyed is not None:
        path, node = keyed
        assert node.key_end is not None
        if pos <= node.key_end or (doc.json_like and _JSON_KEY_VALUE.search(before) is None):
            return path[:-1], node, True  # writing this key: the object that holds it
        return path, node, False
    path, node, _on_key = positions.node_at(doc.root, pos)
    if node.kind == "seq" and isinstance(node.children, list):
        return path, node, False
    if not doc.json_like:
        # an empty line inside a mapping: the mapping whose keys are indented like the cursor
        indent = len(before) - len(before.lstrip())
        found = _mapping_for_indent(doc.root, pos[0], indent, [])
        if found is not None:
            return found[0], found[1], True
    return path, node, node.kind == "map"


def _key_on_line(node: positions.Node, line: int, path: list[Any]) -> tuple[list[Any], positions.Node] | None:
    items = node.children.items() if isinstance(node.children, dict) else enumerate(node.children)
    for part, child in items:
        if child.key_start is not None and child.key_start[0] == line:
            deeper = _key_on_line(child, line, [*path, part])
            return deeper or ([*path, part], child)
        if child.start[0] <= line <= child.end[0]:
            found = _key_on_line(child, line, [*path, part])
            if found is not None:
                return found
    return None


def _mapping_for_indent(
    node: positions.Node, line: int, indent: int, path: list[Any]
) -> tuple[list[Any], positions.Node] | None:
    if node.kind == "map" and isinstance(node.children, dict) and node.children:
        first = next(iter(node.children.values()))
        if first.key_start is not None and first.key_start[1] == indent and node.start[0] <= line:
            best: tuple[list[Any], positions.Node] | None = (path, node)
        else:
            best = None
        for part, child in node.children.items():
            if child.start[0] <= line and (child.key_start or child.start)[0] < line:
                deeper = _mapping_for_indent(child, line, indent, [*path, part])
                if deeper is not None:
                    best = deeper
        return best
    if node.kind == "seq" and isinstance(node.children, list):
        best = None
        for i, child in enumerate(node.children):
            if child.start[0] <= line:
                deeper = _mapping_for_indent(child, line, indent, [*path, i])
                if deeper is not None:
                    best = deeper
        return best
    return None


# ------------------------------------------------------------------ items
def complete(doc: Document, last_good: Document | None, pos: positions.Pos, remote: Remote) -> list[Item]:
    ctx = context_at(doc, last_good, pos)
    parsed = ctx.doc or doc
    if ctx.expression is not None:
        return expression_items(parsed, ctx, remote)
    d = parsed.dialect
    path = ctx.path
    if ctx.on_key:
        return field_items(parsed, path)
    if not path:
        return []
    machine, name, rest = analysis.locate(path, d)
    last = path[-1]
    names = analysis.state_names(parsed.value, d, machine)
    if last == d.entry and name is None:
        return [Item(n, "reference", "state") for n in names]
    if name is None:
        return []
    if rest == [d.type]:
        if d is ASL:
            return [Item(t, "keyword", "ASL state type") for t in ASL_TYPES]
        return [Item(t, "keyword", "state type", _type_doc(t)) for t in analysis.STATE_DEFS]
    if (len(rest) == 1 and rest[0] in d.next_fields) or (
        len(rest) == 3 and rest[0] in d.item_lists and rest[2] in ("next", "Next")
    ):
        return [Item(n, "reference", "state") for n in names if n != name]
    if len(rest) >= 3 and rest[0] in (d.retry, d.catch) and rest[2] == d.errors_field:
        return [Item(n, "value", where) for n, where in error_names()]
    if rest in (["action"], ["Resource"]):
        return action_items(remote)
    return []


def field_items(doc: Document, path: list[Any]) -> list[Item]:
    d = doc.dialect
    obj = analysis.get_path(doc.value, path)
    present = set(obj) if isinstance(obj, dict) else set()
    if d is ASL:
        machine, name, rest = analysis.locate(path, d)
        if name is not None and not rest:
            kind = analysis.get_path(doc.value, (*machine, d.states, name, "Type"))
            fields = sorted({"Type", "Comment", *ASL_FIELDS.get(kind, set())}) if isinstance(kind, str) else ["Type"]
            return [Item(f, "field", f"ASL {kind or 'state'}") for f in fields if f not in present]
        if name is None and not rest:
            return [
                Item(f, "field", "ASL")
                for f in ("StartAt", "States", "Comment", "TimeoutSeconds", "QueryLanguage")
                if f not in present
            ]
        return []
    schema = analysis.schema_for(doc, path)
    if schema is None:
        return []
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    return [
        Item(
            k,
            "field",
            ("required " if k in required else "") + (analysis._schema_type(v) or ""),
            analysis.field_doc(v, k),
        )
        for k, v in props.items()
        if k not in present
    ]


def _type_doc(kind: str) -> str:
    schema = analysis.dsl_schema()["$defs"].get(analysis.STATE_DEFS[kind], {})
    return f"fields: {', '.join(k for k in schema.get('properties', {}) if k != 'type')}"


def action_items(remote: Remote) -> list[Item]:
    items = [Item(k.name, "module", "connector kind", k.title) for k in load_kinds().values()]
    for collection, what in (("functions", "function"), ("actions", "action"), ("workflows", "template")):
        for entry in remote.listing(collection):
            if isinstance(entry, dict) and entry.get("trn"):
                items.append(Item(entry["trn"], "reference", what, entry.get("description") or ""))
    return items


def expression_items(doc: Document, ctx: Context, remote: Remote) -> list[Item]:
    text = ctx.expression or ""
    m = re.search(r"\$secret\.([A-Za-z0-9_.-]*)$", text)
    if m:
        return [
            Item(s["name"], "variable", f"secret ({s.get('type', '')})", s.get("description") or "")
            for s in remote.listing("secrets")
            if isinstance(s, dict) and "name" in s
        ]
    m = re.search(r"\$param\(\s*[\"']([^\"']*)$", text)
    if m:
        return [
            Item(p["path"], "variable", f"parameter ({p.get('type', '')})", p.get("description") or "")
            for p in remote.listing("params")
            if isinstance(p, dict) and "path" in p
        ]
    if re.search(r"\$[A-Za-z0-9_]*$", text):
        funcs = [Item(f"${f}", "function", "JSONata", insert=f) for f in JSONATA_FUNCTIONS]
        return funcs + [Item(f"${f}", "function", "Aionix", doc, insert=f) for f, doc in AIONIX_FUNCTIONS.items()]
    if re.search(r"\bvars\.[A-Za-z0-9_]*$", text):
        scope = analysis.variables_in_scope(doc.value, doc.dialect, ctx.path)
        return [
            Item(name, "variable", analysis.describe_value(value), f"assigned in state `{state}`")
            for name, (state, value) in scope.items()
        ]
    if re.search(r"\bcontext\.[A-Za-z0-9_]*$", text):
        return [Item(k, "variable", "context", v) for k, v in CONTEXT_FIELDS.items()]
    return [Item(k, "variable", "in scope", v) for k, v in ROOT_VARIABLES.items()]
