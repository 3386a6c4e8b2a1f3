"""`aio lsp`: the Language Server Protocol server for workflow files (pygls, stdio).

Files: `*.flow.yaml`, `*.flow.json`, `*.asl.json` (and any YAML/JSON document an editor sends that
is a workflow: ASL is recognized by `StartAt`/`States`). Features: diagnostics from the server's
own validator with exact ranges, completion, hover, go-to-definition, document symbols,
formatting, and code lenses whose commands run on the server (`workspace/executeCommand`):
`aionix.lsp.validateOnServer`, `aionix.lsp.run`, `aionix.lsp.openStudio`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from aionix.cli.client import CLIError
from aionix.lsp import analysis, complete, positions
from aionix.lsp.analysis import Document
from aionix.lsp.remote import Remote

NAME = "aionix-lsp"
VERSION = "0.1.0"
COMMANDS = ("aionix.lsp.validateOnServer", "aionix.lsp.run", "aionix.lsp.openStudio", "aionix.lsp.simulate")

_KINDS = {
    "keyword": t.CompletionItemKind.Keyword,
    "field": t.CompletionItemKind.Field,
    "reference": t.CompletionItemKind.Reference,
    "value": t.CompletionItemKind.EnumMember,
    "function": t.CompletionItemKind.Function,
    "variable": t.CompletionItemKind.Variable,
    "module": t.CompletionItemKind.Module,
}
_SYMBOL_KINDS = {
    "task": t.SymbolKind.Function,
    "parallel": t.SymbolKind.Namespace,
    "map": t.SymbolKind.Array,
    "router": t.SymbolKind.Enum,
    "Choice": t.SymbolKind.Enum,
    "Task": t.SymbolKind.Function,
}


class AionixLanguageServer(LanguageServer):
    def __init__(self, remote: Remote | None = None) -> None:
        super().__init__(NAME, VERSION, text_document_sync_kind=t.TextDocumentSyncKind.Full)
        self.remote = remote or Remote()
        #: the last version of each document that parsed (completion while a line is half written)
        self.last_good: dict[str, Document] = {}

    def document(self, uri: str) -> Document:
        doc = Document(uri, self.workspace.get_text_document(uri).source)
        if doc.root is not None:
            self.last_good[uri] = doc
        return doc

    def publish(self, uri: str, extra: list[t.Diagnostic] | None = None) -> list[t.Diagnostic]:
        doc = self.document(uri)
        diags = [_diagnostic(d) for d in analysis.diagnostics(doc)] if _is_workflow(doc) else []
        diags += extra or []
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=diags))
        return diags


def _is_workflow(doc: Document) -> bool:
    if analysis.is_workflow_uri(doc.uri):
        return True
    value = doc.value
    return isinstance(value, dict) and (
        ("StartAt" in value and "States" in value) or ("entry" in value and "states" in value)
    )


def _range(start: positions.Pos, end: positions.Pos) -> t.Range:
    return t.Range(start=t.Position(line=start[0], character=start[1]), end=t.Position(line=end[0], character=end[1]))


def _diagnostic(d: analysis.Diagnostic, source: str = "aionix") -> t.Diagnostic:
    return t.Diagnostic(
        range=_range(d.start, d.end),
        message=d.message,
        severity=t.DiagnosticSeverity.Warning if d.severity == "warning" else t.DiagnosticSeverity.Error,
        source=source,
        code=d.pointer or None,
    )


server = AionixLanguageServer()


@server.feature(t.INITIALIZE)
def initialize(ls: AionixLanguageServer, params: t.InitializeParams) -> None:
    _configure(ls, params.initialization_options)


@server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: AionixLanguageServer, params: t.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and isinstance(settings.get("aionix"), dict):
        settings = settings["aionix"]
    _configure(ls, settings)


def _configure(ls: AionixLanguageServer, options: Any) -> None:
    if isinstance(options, dict):
        ls.remote.configure(
            url=options.get("url") or options.get("serverUrl") or None,
            api_key=options.get("apiKey") or None,
            profile=options.get("profile") or None,
        )


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: AionixLanguageServer, params: t.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: AionixLanguageServer, params: t.DidChangeTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: AionixLanguageServer, params: t.DidCloseTextDocumentParams) -> None:
    ls.last_good.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


# ------------------------------------------------------------------ completion
@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[".", "$", ":", " ", '"', "'", "/"]))
@server.thread()
def completion(ls: AionixLanguageServer, params: t.CompletionParams) -> t.CompletionList:
    uri = params.text_document.uri
    doc = ls.document(uri)
    last = ls.last_good.get(uri)
    if not (_is_workflow(doc) or (last is not None and _is_workflow(last))):
        return t.CompletionList(is_incomplete=False, items=[])
    pos = (params.position.line, params.position.character)
    items = complete.complete(doc, last, pos, ls.remote)
    return t.CompletionList(
        is_incomplete=False,
        items=[
            t.CompletionItem(
                label=i.label,
                kind=_KINDS.get(i.kind),
                detail=i.detail or None,
                documentation=t.MarkupContent(kind=t.MarkupKind.Markdown, value=i.doc) if i.doc else None,
                insert_text=i.insert,
            )
            for i in items
        ],
    )


# ------------------------------------------------------------------ hover
_TOKEN = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*")


@server.feature(t.TEXT_DOCUMENT_HOVER)
@server.thread()
def hover(ls: AionixLanguageServer, params: t.HoverParams) -> t.Hover | None:
    doc = ls.document(params.text_document.uri)
    if doc.root is None or not _is_workflow(doc):
        return None
    pos = (params.position.line, params.position.character)
    text = hover_text(ls, doc, pos)
    return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text)) if text else None


ASL_DOCS = {
    "StartAt": "the name of the first state",
    "States": "the states, by name",
    "Comment": "a description, ignored when running",
    "QueryLanguage": "`JSONPath` (default) or `JSONata`",
    "TimeoutSeconds": "fail with States.Timeout after this many seconds",
    "Type": "Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map",
    "Next": "the state that runs after this one",
    "End": "`true`: the execution (or branch) ends after this state",
    "Resource": "what a Task runs: a connector kind, a function/action TRN or an AWS-style ARN",
    "Parameters": "JSONPath: the effective input (`.$` keys are paths)",
    "Arguments": "JSONata: the task's arguments (`{% %}` expressions)",
    "InputPath": "JSONPath: the part of the input the state sees",
    "OutputPath": "JSONPath: the part of the output passed on",
    "ResultPath": "JSONPath: where the result goes in the input (`null`: discard it)",
    "ResultSelector": "JSONPath: reshape the result before ResultPath",
    "Output": "JSONata: the state's output",
    "Assign": "variables for the states after this one",
    "Retry": "retriers: ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy",
    "Catch": "catchers: ErrorEquals, Next, ResultPath/Output",
    "ErrorEquals": "error names this retrier or catcher handles (`States.ALL` for any)",
    "IntervalSeconds": "seconds before the first retry (default 1)",
    "MaxAttempts": "retries after the first attempt (default 3; 0: never)",
    "BackoffRate": "the interval's multiplier per retry (default 2.0)",
    "HeartbeatSeconds": "fail with States.HeartbeatTimeout when no heartbeat comes for this long",
    "Choices": "rules tried in order; the first that matches names Next",
    "Default": "the state when no choice matches (else States.NoChoiceMatched)",
    "Seconds": "a Wait's delay",
    "Timestamp": "a Wait's end time (ISO 8601)",
    "Branches": "a Parallel's state machines, run together",
    "ItemProcessor": "a Map's state machine, run for each item",
    "ItemsPath": "JSONPath: the list a Map iterates",
    "Items": "JSONata: the list a Map iterates",
    "MaxConcurrency": "a Map's items in flight at once (0: no limit)",
    "Result": "a Pass state's fixed result",
    "Error": "a Fail state's error name",
    "Cause": "a Fail state's cause",
}


def hover_text(ls: AionixLanguageServer, doc: Document, pos: positions.Pos) -> str | None:
    assert doc.root is not None
    path, node, on_key = positions.node_at(doc.root, pos)
    d = doc.dialect
    if on_key and path:
        schema = analysis.schema_for(doc, path[:-1])
        if schema is not None and str(path[-1]) in schema.get("properties", {}):
            return analysis.field_doc(schema["properties"][str(path[-1])], str(path[-1]))
        machine, name, rest = analysis.locate(path, d)
        if name is not None and not rest:
            kind = analysis.get_path(doc.value, (*machine, d.states, name, d.type))
            return f"**state `{name}`** — {kind or 'no type'}"
        if d is analysis.ASL and str(path[-1]) in ASL_DOCS:
            return f"**{path[-1]}** (Amazon States Language)\n\n{ASL_DOCS[str(path[-1])]}"
        return None
    if node.kind != "scalar" or not isinstance(node.value, str):
        return None
    if "{%" in node.value:
        return _expression_hover(ls, doc, path, pos)
    ref = analysis.reference_at(doc, pos)
    if ref is not None:
        name, machine = ref
        state = analysis.get_path(doc.value, (*machine, d.states, name))
        if not isinstance(state, dict):
            return f"no state `{name}` here"
        return f"**state `{name}`** — {state.get(d.type)}" + (f"\n\n{state['comment']}" if state.get("comment") else "")
    machine, name, rest = analysis.locate(path, d)
    if name is not None and rest == ["type"] and node.value in analysis.STATE_DEFS:
        schema = analysis.dsl_schema()["$defs"][analysis.STATE_DEFS[node.value]]
        return f"**{node.value}** state\n\n" + "\n".join(
            f"- `{k}`: {analysis._schema_type(v)}" for k, v in schema.get("properties", {}).items() if k != "type"
        )
    return None


def _expression_hover(ls: AionixLanguageServer, doc: Document, path: list[Any], pos: positions.Pos) -> str | None:
    line = doc.text.splitlines()[pos[0]]
    col = doc.index.offset(pos) - doc.index.starts[pos[0]]
    token = next((m.group() for m in _TOKEN.finditer(line) if m.start() <= col <= m.end()), None)
    if token is None:
        return None
    if token.startswith("$secret."):
        name = token.split(".", 1)[1]
        info = ls.remote.secret(name)
        if info is None:
            return f"**secret `{name}`** (no server configured, or no such secret)"
        fields = ("name", "type", "description", "latest_version", "labels", "rotation", "updated_at", "trn")
        return f"**secret `{name}`** (metadata; the value is never shown)\n\n" + "\n".join(
            f"- {k}: `{json.dumps(info[k])}`" for k in fields if info.get(k) not in (None, "", {}, [])
        )
    if token.startswith("$"):
        fn = token[1:].split(".")[0]
        if fn in complete.AIONIX_FUNCTIONS:
            return complete.AIONIX_FUNCTIONS[fn]
        return f"JSONata function `${fn}`" if fn in complete.JSONATA_FUNCTIONS else None
    head, _, rest = token.partition(".")
    if head == "vars" and rest:
        var = rest.split(".")[0]
        scope = analysis.variables_in_scope(doc.value, doc.dialect, path)
        if var not in scope:
            return f"`vars.{var}`: not assigned by any state upstream"
        state, value = scope[var]
        return f"`vars.{var}`: {analysis.describe_value(value)}\n\nassigned in state `{state}`"
    if head == "context" and rest:
        return f"`context.{rest}`: {complete.CONTEXT_FIELDS.get(rest.split('.')[0], 'not a context field')}"
    if head in complete.ROOT_VARIABLES:
        return f"`{head}`: {complete.ROOT_VARIABLES[head]}"
    return None


# ------------------------------------------------------------------ definition, symbols, formatting
@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: AionixLanguageServer, params: t.DefinitionParams) -> t.Location | None:
    doc = ls.document(params.text_document.uri)
    ref = analysis.reference_at(doc, (params.position.line, params.position.character))
    if ref is None:
        return None
    node = analysis.state_node(doc, ref[1], ref[0])
    if node is None or node.key_start is None or node.key_end is None:
        return None
    return t.Location(uri=doc.uri, range=_range(node.key_start, node.key_end))


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: AionixLanguageServer, params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
    doc = ls.document(params.text_document.uri)

    def convert(s: analysis.Symbol) -> t.DocumentSymbol:
        return t.DocumentSymbol(
            name=s.name,
            detail=s.detail,
            kind=_SYMBOL_KINDS.get(s.detail, t.SymbolKind.Object),
            range=_range(s.start, max(s.end, s.sel_end)),
            selection_range=_range(s.sel_start, s.sel_end),
            children=[convert(c) for c in s.children],
        )

    return [convert(s) for s in analysis.symbols(doc)]


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: AionixLanguageServer, params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
    doc = ls.document(params.text_document.uri)
    text = analysis.formatted(doc)
    if text is None:
        if doc.error is None and not doc.json_like:
            ls.window_show_message(
                t.ShowMessageParams(type=t.MessageType.Info, message="not formatted: PyYAML would drop its comments")
            )
        return None
    if text == doc.text:
        return []
    end = doc.index.pos(len(doc.text))
    return [t.TextEdit(range=_range((0, 0), end), new_text=text)]


# ------------------------------------------------------------------ code lenses and commands
def input_file(uri: str) -> Path | None:
    """`orders.flow.yaml` runs with `orders.input.json` (or .yaml) beside it, when there is one."""
    path = Path(to_fs_path(uri) or "")
    stem = Document(uri, "").name
    for suffix in (".input.json", ".input.yaml", ".input.yml"):
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


@server.feature(t.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: AionixLanguageServer, params: t.CodeLensParams) -> list[t.CodeLens]:
    uri = params.text_document.uri
    doc = ls.document(uri)
    if not _is_workflow(doc):
        return []
    top = _range((0, 0), (0, 0))
    found = input_file(uri)
    run_title = f"Run with {found.name}" if found else "Run (input {})"
    return [
        t.CodeLens(range=top, command=t.Command(title="Validate on server", command=COMMANDS[0], arguments=[uri])),
        t.CodeLens(
            range=top,
            command=t.Command(title=run_title, command=COMMANDS[1], arguments=[uri, str(found) if found else None]),
        ),
        t.CodeLens(range=top, command=t.Command(title="Open in Studio", command=COMMANDS[2], arguments=[uri])),
        t.CodeLens(
            range=top,
            command=t.Command(
                title="Simulate (cost and duration)",
                command=COMMANDS[3],
                arguments=[uri, str(found) if found else None],
            ),
        ),
    ]


def _fail(ls: AionixLanguageServer, message: str) -> dict[str, Any]:
    ls.window_show_message(t.ShowMessageParams(type=t.MessageType.Error, message=f"Aionix: {message}"))
    return {"ok": False, "error": message}


@server.command(COMMANDS[0])
@server.thread()
def validate_on_server(ls: AionixLanguageServer, *args: Any) -> dict[str, Any]:
    """POST /api/v1/workflows/validate; the server's problems (warnings about actions it does not
    know included) are published as diagnostics with source `aionix-server`."""
    uri = str(args[0]) if args else ""
    doc = ls.document(uri)
    if doc.root is None:
        return _fail(ls, f"{doc.error.message if doc.error else 'empty document'}: fix it before validating")
    try:
        report = ls.remote.request("POST", "/api/v1/workflows/validate", json={"definition": doc.value})
    except CLIError as exc:
        return _fail(ls, exc.message)
    extra = []
    for p in [*report.get("errors", []), *report.get("warnings", [])]:
        start, end = analysis.problem_range(doc, p["pointer"], p["message"], p.get("expression"), p.get("position"))
        extra.append(
            _diagnostic(
                analysis.Diagnostic(start, end, p["message"], p.get("severity", "error"), p["pointer"]),
                source="aionix-server",
            )
        )
    ls.publish(uri, extra)
    summary = "valid" if report.get("valid") else f"{len(report.get('errors', []))} problem(s)"
    ls.window_show_message(t.ShowMessageParams(type=t.MessageType.Info, message=f"Aionix: {doc.name} is {summary}"))
    return {"ok": True, **report}


def _input(args: tuple[Any, ...]) -> Any:
    """The input file named by a lens's second argument ({} without one); raises ValueError."""
    if len(args) < 2 or not args[1]:
        return {}
    try:
        text = Path(str(args[1])).read_text(encoding="utf-8")
        return positions.parse(text, str(args[1]).endswith(".json"))[0]
    except (OSError, positions.ParseError) as exc:
        raise ValueError(f"input file {args[1]}: {getattr(exc, 'message', None) or exc}") from None


@server.command(COMMANDS[1])
@server.thread()
def run(ls: AionixLanguageServer, *args: Any) -> dict[str, Any]:
    """Save the file as template NAME (a new version when it exists) and start an execution with
    the input file, waiting up to 30 s for the result."""
    uri = str(args[0]) if args else ""
    doc = ls.document(uri)
    if doc.root is None:
        return _fail(ls, f"{doc.error.message if doc.error else 'empty document'}: fix it before running")
    try:
        input_value = _input(args)
    except ValueError as exc:
        return _fail(ls, str(exc))
    try:
        try:
            ls.remote.request("PUT", f"/api/v1/workflows/{quote(doc.name)}", json={"definition": doc.value})
        except CLIError as exc:
            if exc.exit_code != 4:  # not found: create it
                raise
            ls.remote.request("POST", "/api/v1/workflows", json={"name": doc.name, "definition": doc.value})
        envelope = ls.remote.request(
            "POST",
            f"/api/v1/workflows/{quote(doc.name)}/executions",
            json={"input": input_value, "mode": "sync", "wait_seconds": 30},
        )
    except CLIError as exc:
        return _fail(ls, exc.message)
    ls.window_show_message(
        t.ShowMessageParams(
            type=t.MessageType.Info,
            message=f"Aionix: {doc.name} execution {envelope.get('execution_id')} {envelope.get('status')}",
        )
    )
    return {"ok": True, **envelope}


@server.command(COMMANDS[2])
@server.thread()
def open_studio(ls: AionixLanguageServer, *args: Any) -> dict[str, Any]:
    """Open the template in the Studio (the browser) through `window/showDocument`."""
    uri = str(args[0]) if args else ""
    doc = Document(uri, "")
    url = f"{ls.remote.base_url}/workflows/{quote(doc.name)}"
    ls.window_show_document(t.ShowDocumentParams(uri=url, external=True))
    return {"ok": True, "url": url}


@server.command(COMMANDS[3])
@server.thread()
def simulate(ls: AionixLanguageServer, *args: Any) -> dict[str, Any]:
    """POST /api/v1/runtime/simulate with the file's definition and input: cost, duration and
    risks, without running anything."""
    uri = str(args[0]) if args else ""
    doc = ls.document(uri)
    if doc.root is None:
        return _fail(ls, f"{doc.error.message if doc.error else 'empty document'}: fix it before simulating")
    try:
        body = {"definition": doc.value, "input": _input(args)}
        report = ls.remote.request("POST", "/api/v1/runtime/simulate", json=body)
    except ValueError as exc:
        return _fail(ls, str(exc))
    except CLIError as exc:
        return _fail(ls, exc.message)
    p50 = (report.get("estimated_duration_ms") or {}).get("p50")
    summary = (
        f"{'feasible' if report.get('feasible') else 'not feasible'}, "
        f"~${report.get('estimated_cost_usd', 0):.4f}, p50 {p50 if p50 is not None else '?'} ms, "
        f"{len(report.get('risks') or [])} risk(s)"
    )
    ls.window_show_message(t.ShowMessageParams(type=t.MessageType.Info, message=f"Aionix: {doc.name}: {summary}"))
    return {"ok": True, **report}


def main(remote: Remote | None = None) -> None:
    if remote is not None:
        server.remote = remote
    server.start_io()


if __name__ == "__main__":
    main()
