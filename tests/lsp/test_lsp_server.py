"""The language server through an LSP client (pytest-lsp): diagnostics with exact ranges in YAML
and JSON, completion in each context, hover, definition, symbols, formatting, and the code
lenses' commands against the real server."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest
from lsprotocol import types as t

pytestmark = pytest.mark.asyncio(loop_scope="module")

FLOW_YAML = """\
# an order workflow
entry: Fetch
states:
  Fetch:
    type: task
    action: http
    bogus: 1
    retry:
      - errors: [Http.Timeout]
        max_attempts: 2
    assign:
      total: "{% input.total %}"
    next: Decide
  Decide:
    type: router
    routes:
      - condition: "{% vars.total > %}"
        next: Missing
    default: Done
  Done:
    type: succeed
"""


def _uri(tmp_path, name):
    return (tmp_path / name).as_uri()


async def _open(lsp, uri, text, language="yaml"):
    lsp.diagnostics.pop(uri, None)
    lsp.text_document_did_open(
        t.DidOpenTextDocumentParams(
            text_document=t.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
        )
    )
    for _ in range(200):
        if uri in lsp.diagnostics:
            return lsp.diagnostics[uri]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no diagnostics for {uri}")


def _span(d):
    r = d.range
    return (r.start.line, r.start.character, r.end.line, r.end.character)


async def _labels(lsp, uri, line, character):
    result = await lsp.text_document_completion_async(
        t.CompletionParams(
            text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(line=line, character=character)
        )
    )
    items = result.items if isinstance(result, t.CompletionList) else result or []
    return {i.label: i for i in items}


async def _hover(lsp, uri, line, character):
    result = await lsp.text_document_hover_async(
        t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(line=line, character=character)
        )
    )
    return result.contents.value if result else None


# ------------------------------------------------------------------ diagnostics
async def test_yaml_diagnostics_point_at_the_exact_ranges(lsp, tmp_path):
    diags = await _open(lsp, _uri(tmp_path, "orders.flow.yaml"), FLOW_YAML)
    by_message = {d.message.split(":")[0]: d for d in diags}
    # an unknown field: its key, line 7 (0-based 6), columns 4-9
    assert _span(by_message["unknown field"]) == (6, 4, 6, 9)
    # a reference to a missing state: the value `Missing` on line 18
    missing = next(d for d in diags if "unknown state 'Missing'" in d.message)
    assert _span(missing) == (17, 14, 17, 21)
    assert missing.code == "/states/Decide/routes/0/next"
    # the JSONata syntax error inside {% %}: the `>` where the expression ends too early
    syntax = next(d for d in diags if d.message.startswith("JSONata syntax error"))
    line = FLOW_YAML.splitlines()[16]
    assert _span(syntax) == (16, line.index(">"), 16, line.index(">") + 1)
    assert all(d.severity == t.DiagnosticSeverity.Error for d in diags)


async def test_json_diagnostics_point_at_the_exact_ranges(lsp, tmp_path):
    doc = {
        "entry": "A",
        "states": {
            "A": {"type": "set", "value": "{% $sum( %}", "next": "Nowhere"},
            "B": {"type": "succeed"},
        },
    }
    text = json.dumps(doc, indent=2)
    lines = text.splitlines()
    diags = await _open(lsp, _uri(tmp_path, "calc.flow.json"), text, "json")
    nowhere = next(d for d in diags if "unknown state 'Nowhere'" in d.message)
    row = next(i for i, ln in enumerate(lines) if '"next"' in ln)
    col = lines[row].index('"Nowhere"')
    assert _span(nowhere) == (row, col, row, col + len('"Nowhere"'))
    unreachable = next(d for d in diags if "unreachable" in d.message)
    row_b = next(i for i, ln in enumerate(lines) if '"B": {' in ln)
    assert _span(unreachable) == (row_b, 4, row_b, 7)  # the key "B"
    syntax = next(d for d in diags if d.message.startswith("JSONata syntax error"))
    row_v = next(i for i, ln in enumerate(lines) if '"value"' in ln)
    start = lines[row_v].index("$sum(")
    assert syntax.range.start.line == row_v and start <= syntax.range.start.character <= start + len("$sum(")


async def test_asl_and_parse_errors(lsp, tmp_path):
    asl = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Q"}}}, indent=2)
    diags = await _open(lsp, _uri(tmp_path, "m.asl.json"), asl, "json")
    assert [(d.message, _span(d)) for d in diags] == [
        ("Next names 'Q', which is not a state of this state machine", (5, 14, 5, 17))
    ]
    diags = await _open(lsp, _uri(tmp_path, "broken.flow.yaml"), "entry: A\nstates:\n  A: [1, 2\n", "yaml")
    assert len(diags) == 1 and diags[0].message.startswith("YAML:") and diags[0].range.start.line >= 2


# ------------------------------------------------------------------ completion
async def test_completion_in_each_context(lsp, tmp_path):
    uri = _uri(tmp_path, "complete.flow.yaml")
    await _open(lsp, uri, FLOW_YAML)
    lines = FLOW_YAML.splitlines()
    # state names for next (not the state itself)
    assert set(await _labels(lsp, uri, 12, len(lines[12]))) == {"Decide", "Done"}
    # ... for a route's next and for default
    assert {"Fetch", "Done"} <= set(await _labels(lsp, uri, 17, len(lines[17])))
    assert "Fetch" in await _labels(lsp, uri, 18, len(lines[18]))
    # error names in retry, the connector kinds' own included
    errors = await _labels(lsp, uri, 8, lines[8].index("Http"))
    assert {"States.ALL", "States.Timeout", "Http.Timeout", "Http.Status.404", "Sql.Error", "Redis.Timeout"} <= set(
        errors
    )
    assert errors["Sql.Error"].detail == "connector kind sql"
    # a state's type
    assert {"task", "map", "router", "succeed"} <= set(await _labels(lsp, uri, 20, len(lines[20])))


async def test_completion_of_fields_while_typing_a_key(lsp, tmp_path):
    uri = _uri(tmp_path, "fields.flow.yaml")
    lines = FLOW_YAML.splitlines()
    lines.insert(6, "    he")  # half a key inside the task Fetch: the document does not parse
    await _open(lsp, uri, "\n".join(lines) + "\n")
    fields = await _labels(lsp, uri, 6, 6)
    assert {"heartbeat_seconds", "parameters", "catch", "mode", "timeout_seconds"} <= set(fields)
    assert "action" not in fields and "next" not in fields  # already there
    assert "heartbeat_seconds" in fields["heartbeat_seconds"].documentation.value
    # a retrier's fields
    lines = FLOW_YAML.splitlines()
    lines.insert(10, "        ")
    uri2 = _uri(tmp_path, "fields2.flow.yaml")
    await _open(lsp, uri2, "\n".join(lines) + "\n")
    retrier = await _labels(lsp, uri2, 10, 8)
    assert {"backoff_rate", "interval_seconds", "jitter"} <= set(retrier) and "max_attempts" not in retrier
    # JSON: a key being written in a state object
    doc = json.dumps({"entry": "A", "states": {"A": {"type": "set", "value": 1, "end": True}}}, indent=2)
    jlines = doc.splitlines()
    jlines.insert(5, '      "as",')
    juri = _uri(tmp_path, "fields.flow.json")
    await _open(lsp, juri, "\n".join(jlines), "json")
    assert {"assign", "output", "comment"} <= set(await _labels(lsp, juri, 5, 9))


async def test_completion_of_jsonata_functions_and_variables_in_scope(lsp, tmp_path):
    flow = FLOW_YAML.replace("{% vars.total > %}", "{% vars. %}")
    uri = _uri(tmp_path, "vars.flow.yaml")
    await _open(lsp, uri, flow)
    line = flow.splitlines()[16]
    at = line.index("vars.") + len("vars.")
    scope = await _labels(lsp, uri, 16, at)
    assert set(scope) == {"total"} and scope["total"].detail == "expression input.total"
    # upstream only: Fetch cannot see a variable that Decide assigns
    flow2 = FLOW_YAML.replace('total: "{% input.total %}"', 'total: "{% vars. %}"').replace(
        "    default: Done\n", "    default: Done\n    assign:\n      later: 1\n"
    )
    uri2 = _uri(tmp_path, "vars2.flow.yaml")
    await _open(lsp, uri2, flow2)
    line = flow2.splitlines()[11]
    assert "later" not in await _labels(lsp, uri2, 11, line.index("vars.") + 5)
    # JSONata functions after $, with $secret and $param
    flow3 = FLOW_YAML.replace("{% vars.total > %}", "{% $ %}")
    uri3 = _uri(tmp_path, "fns.flow.yaml")
    await _open(lsp, uri3, flow3)
    fns = await _labels(lsp, uri3, 16, flow3.splitlines()[16].index("$") + 1)
    assert {"$sum", "$string", "$map", "$secret", "$param"} <= set(fns)
    # the root variables and context.*
    flow4 = FLOW_YAML.replace("{% vars.total > %}", "{% context. %}")
    uri4 = _uri(tmp_path, "ctx.flow.yaml")
    await _open(lsp, uri4, flow4)
    ctx = await _labels(lsp, uri4, 16, flow4.splitlines()[16].index("context.") + 8)
    assert {"execution_id", "attempt", "state", "item"} <= set(ctx)


async def test_completion_of_the_servers_trns_secrets_and_params(lsp, server, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    with server.client() as c:
        r = c.post(
            "/api/v1/workflows",
            json={"name": f"lsp-child-{suffix}", "definition": {"entry": "A", "states": {"A": {"type": "succeed"}}}},
        )
        assert r.status_code == 201, r.text
        template_trn = r.json()["trn"]
        r = c.post(
            "/api/v1/secrets",
            json={
                "name": f"lsp-token-{suffix}",
                "type": "password",
                "value": "hunter2-" + suffix,
                "description": "the API token",
            },
        )
        assert r.status_code in (200, 201), r.text
        r = c.put(f"/api/v1/params/lsp/{suffix}/rate", json={"type": "string", "value": "5"})
        assert r.status_code in (200, 201), r.text
    flow = FLOW_YAML.replace("action: http", "action: ").replace("{% vars.total > %}", "{% $secret. %}")
    uri = _uri(tmp_path, "remote.flow.yaml")
    await _open(lsp, uri, flow)
    actions = await _labels(lsp, uri, 5, len("    action: "))
    assert template_trn in actions and {"http", "sql", "transform"} <= set(actions)
    line = flow.splitlines()[16]
    secrets = await _labels(lsp, uri, 16, line.index("$secret.") + 8)
    assert f"lsp-token-{suffix}" in secrets
    flow2 = FLOW_YAML.replace("{% vars.total > %}", "{% $param('/ %}")
    uri2 = _uri(tmp_path, "params.flow.yaml")
    await _open(lsp, uri2, flow2)
    line = flow2.splitlines()[16]
    assert f"/lsp/{suffix}/rate" in await _labels(lsp, uri2, 16, line.index("'/") + 2)
    # hover on a secret reference: its metadata, never its value
    flow3 = FLOW_YAML.replace("{% vars.total > %}", f"{{% $secret.lsp-token-{suffix} = 'x' %}}")
    uri3 = _uri(tmp_path, "secret.flow.yaml")
    await _open(lsp, uri3, flow3)
    line = flow3.splitlines()[16]
    text = await _hover(lsp, uri3, 16, line.index("$secret") + 3)
    assert f"lsp-token-{suffix}" in text and "password" in text and "the API token" in text
    assert "hunter2" not in text


# ------------------------------------------------------------------ hover, definition, symbols, formatting
async def test_hover_definition_symbols(lsp, tmp_path):
    uri = _uri(tmp_path, "nav.flow.yaml")
    await _open(lsp, uri, FLOW_YAML)
    lines = FLOW_YAML.splitlines()
    # a field's docs from the JSON Schema
    text = await _hover(lsp, uri, 9, lines[9].index("max_attempts") + 2)
    assert "max_attempts" in text and "retries after the first attempt" in text and "integer" in text
    # the type of a variable
    text = await _hover(lsp, uri, 16, lines[16].index("vars.total") + 6)
    assert "vars.total" in text and "input.total" in text and "Fetch" in text
    # go to definition: `next: Decide` -> the key Decide
    loc = await lsp.text_document_definition_async(
        t.DefinitionParams(text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(line=12, character=12))
    )
    loc = loc[0] if isinstance(loc, list) else loc
    assert loc.uri == uri and (loc.range.start.line, loc.range.start.character) == (13, 2)
    assert (loc.range.end.line, loc.range.end.character) == (13, 8)
    # document symbols: the states, nested branches inside a parallel
    nested = {
        "entry": "P",
        "states": {
            "P": {
                "type": "parallel",
                "branches": [{"entry": "X", "states": {"X": {"type": "succeed"}}}],
                "end": True,
            }
        },
    }
    juri = _uri(tmp_path, "nested.flow.json")
    await _open(lsp, juri, json.dumps(nested, indent=2), "json")
    symbols = await lsp.text_document_document_symbol_async(
        t.DocumentSymbolParams(text_document=t.TextDocumentIdentifier(uri=juri))
    )
    assert [(s.name, s.detail, [c.name for c in s.children]) for s in symbols] == [("P", "parallel", ["X"])]


async def test_formatting(lsp, tmp_path):
    uri = _uri(tmp_path, "fmt.flow.json")
    await _open(lsp, uri, '{"entry":"A","states":{"A":{"type":"succeed"}}}', "json")
    edits = await lsp.text_document_formatting_async(
        t.DocumentFormattingParams(
            text_document=t.TextDocumentIdentifier(uri=uri), options=t.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    assert len(edits) == 1
    assert edits[0].new_text == json.dumps({"entry": "A", "states": {"A": {"type": "succeed"}}}, indent=2) + "\n"
    yuri = _uri(tmp_path, "fmt.flow.yaml")
    await _open(lsp, yuri, "entry: A\nstates: {A: {type: succeed}}\n")
    edits = await lsp.text_document_formatting_async(
        t.DocumentFormattingParams(
            text_document=t.TextDocumentIdentifier(uri=yuri),
            options=t.FormattingOptions(tab_size=2, insert_spaces=True),
        )
    )
    assert edits[0].new_text == "entry: A\nstates:\n  A:\n    type: succeed\n"


# ------------------------------------------------------------------ code lenses against the real server
async def test_code_lenses_validate_run_and_open_studio(lsp, server, tmp_path):
    name = f"lsp-run-{uuid.uuid4().hex[:8]}"
    flow = 'entry: Double\nstates:\n  Double:\n    type: set\n    value: "{% input.n * 2 %}"\n    end: true\n'
    path = tmp_path / f"{name}.flow.yaml"
    path.write_text(flow)
    (tmp_path / f"{name}.input.json").write_text('{"n": 21}')
    uri = path.as_uri()
    await _open(lsp, uri, flow)
    lenses = await lsp.text_document_code_lens_async(t.CodeLensParams(text_document=t.TextDocumentIdentifier(uri=uri)))
    titles = [lens.command.title for lens in lenses]
    assert titles == [
        "Validate on server",
        f"Run with {name}.input.json",
        "Open in Studio",
        "Simulate (cost and duration)",
    ]

    async def run(lens):
        return await lsp.workspace_execute_command_async(
            t.ExecuteCommandParams(command=lens.command.command, arguments=lens.command.arguments)
        )

    report = await run(lenses[0])
    assert report["ok"] is True and report["valid"] is True
    simulated = await run(lenses[3])  # nothing runs: the template does not exist yet
    assert simulated["ok"] is True and simulated["feasible"] is True
    assert "estimated_cost_usd" in simulated and simulated["risks"] == []
    with server.client() as c:
        assert c.get(f"/api/v1/workflows/{name}").status_code == 404
    result = await run(lenses[1])
    assert result["status"] == "SUCCEEDED" and result["output"] == 42 and result["workflow"] == name
    with server.client() as c:
        assert c.get(f"/api/v1/workflows/{name}").json()["version"] == 1
    # a second run is a new version of the same template
    result = await run(lenses[1])
    assert result["version"] == 2 and result["output"] == 42
    opened = await run(lenses[2])
    assert opened["url"] == f"{server.url}/workflows/{name}"
    assert any(d.uri == opened["url"] and d.external for d in lsp.shown_documents)

    # the server's own validation: an action it does not know is a warning from aionix-server
    bad = 'entry: A\nstates:\n  A:\n    type: task\n    action: "trn:openact:default:action/http/nope"\n    end: true\n'
    buri = _uri(tmp_path, "warn.flow.yaml")
    await _open(lsp, buri, bad)
    lsp.diagnostics.pop(buri, None)
    report = await lsp.workspace_execute_command_async(
        t.ExecuteCommandParams(command="aionix.lsp.validateOnServer", arguments=[buri])
    )
    assert report["ok"] is True
    published = lsp.diagnostics[buri]
    server_side = [d for d in published if d.source == "aionix-server"]
    assert len(server_side) == len(report["errors"]) + len(report["warnings"])
    for d in server_side:
        assert d.range.start.line == 4  # the action's line


async def test_asl_completion_contexts(lsp, tmp_path):
    asl = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "http",
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "B"}],
                "Next": "B",
            },
            "B": {"Type": "Pass", "End": True},
        },
    }
    text = json.dumps(asl, indent=2)
    lines = text.splitlines()
    uri = _uri(tmp_path, "complete.asl.json")
    assert list(await _open(lsp, uri, text, "json")) == []

    def at(needle, nth=0):
        rows = [i for i, ln in enumerate(lines) if needle in ln]
        row = rows[nth]
        return row, lines[row].index(needle) + len(needle) - 1

    assert set(await _labels(lsp, uri, *at('"Next": "B"', 1))) == {"B"}  # the state's own Next
    assert set(await _labels(lsp, uri, *at('"Next": "B"', 0))) == {"B"}  # the catcher's Next
    assert set(await _labels(lsp, uri, *at('"StartAt": "A'))) == {"A", "B"}
    assert {"Task", "Choice", "Map"} <= set(await _labels(lsp, uri, *at('"Type": "Pass')))
    assert {"States.ALL", "Http.Timeout"} <= set(await _labels(lsp, uri, *at('"States.ALL')))


async def test_settings_from_initialization_options(server, tmp_path):
    """An editor passes the server URL and key itself (the VS Code extension's settings): no env."""
    from pytest_lsp import ClientServerConfig

    env = {"HOME": str(tmp_path), "AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    config = ClientServerConfig(server_command=[sys.executable, "-m", "aionix.cli.main", "lsp"], server_env=env)
    client = await config.start()
    try:
        options = {"url": server.url, "apiKey": server.admin_key}
        await client.initialize_session(
            t.InitializeParams(capabilities=t.ClientCapabilities(), initialization_options=options)
        )
        name = f"lsp-init-{uuid.uuid4().hex[:8]}"
        with server.client() as c:
            c.post(
                "/api/v1/workflows",
                json={"name": name, "definition": {"entry": "A", "states": {"A": {"type": "succeed"}}}},
            )
        flow = "entry: A\nstates:\n  A:\n    type: task\n    action: \n    end: true\n"
        uri = _uri(tmp_path, "init.flow.yaml")
        await _open(client, uri, flow)
        labels = await _labels(client, uri, 4, len("    action: "))
        assert f"trn:stepflow:default:template/{name}" in labels
    finally:
        await client.shutdown_session()


async def test_asl_hover_and_other_files_are_left_alone(lsp, tmp_path):
    text = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": None, "End": True}}}, indent=2)
    uri = _uri(tmp_path, "hover.asl.json")
    await _open(lsp, uri, text, "json")
    row = next(i for i, ln in enumerate(text.splitlines()) if "ResultPath" in ln)
    hover = await _hover(lsp, uri, row, text.splitlines()[row].index("ResultPath") + 2)
    assert "ResultPath" in hover and "discard" in hover
    # a YAML file that is not a workflow: no diagnostics, no completion, no hover
    other = _uri(tmp_path, "compose.yaml")
    assert list(await _open(lsp, other, "services:\n  web:\n    image: nginx\n    next: \n")) == []
    assert await _labels(lsp, other, 3, len("    next: ")) == {}
    assert await _hover(lsp, other, 0, 2) is None
