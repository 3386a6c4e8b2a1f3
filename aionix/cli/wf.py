"""`aio wf`: workflow templates, executions, history, streaming, callbacks."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from aionix.cli.client import EXIT_FAILED, EXIT_USAGE, CLIError, sse_events
from aionix.cli.output import iso_times
from aionix.cli.state import read_document, state

app = typer.Typer(help="Workflows (StepFlow): templates, executions, callbacks.", no_args_is_help=True)
exec_app = typer.Typer(help="Executions: list, get, history, follow, cancel, redrive.", no_args_is_help=True)
app.add_typer(exec_app, name="exec")

TEMPLATE_COLUMNS = ["name", "version", "description", "updated_at"]
EXEC_COLUMNS = ["execution_id", "workflow", "version", "status", "started_at", "duration_ms"]
EXEC_WIDE = [*EXEC_COLUMNS, "error", "redrive_count", "trace_id"]
HISTORY_COLUMNS = ["seq", "type", "state", "frame", "detail"]


def _definition(value: str) -> dict[str, Any]:
    doc = read_document(value, "definition")
    if not isinstance(doc, dict):
        raise CLIError("definition: a workflow is a JSON or YAML object", EXIT_USAGE)
    return doc


@app.command("schema")
def schema(ctx: typer.Context) -> None:
    """Print the JSON Schema of the workflow DSL."""
    st = state(ctx)
    print(json.dumps(st.client.get("/api/v1/workflows/schema"), indent=2))


@app.command("validate")
def validate(
    ctx: typer.Context, file: str = typer.Argument(..., help="definition: JSON/YAML file, @file, inline JSON or -")
) -> None:
    """Validate a definition; every problem is listed with its JSON pointer."""
    st = state(ctx)
    report = st.client.post("/api/v1/workflows/validate", {"definition": _definition(file)})
    if st.output in ("json", "yaml"):
        st.emit(report)
    else:
        for p in report["errors"] + report.get("warnings", []):
            where = f" (expression {p['expression']!r}, position {p['position']})" if p.get("expression") else ""
            print(f"{p['severity']}: {p['pointer']}: {p['message']}{where}")
        if report["valid"]:
            print("valid")
    if not report["valid"]:
        n = len(report["errors"])
        raise CLIError(f"the definition is not valid ({n} problem{'' if n == 1 else 's'})", EXIT_FAILED)


@app.command("test")
def test(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="ASL definition: JSON/YAML file, @file, inline JSON or -"),
    input: str = typer.Option(None, "--input", help="execution input: JSON, @file or -"),
    mock_config: str = typer.Option(None, "--mock-config", help="Step Functions Local MockConfigFile (JSON)"),
    test_case: str = typer.Option(None, "--test-case", help="the mock config's test case to run"),
    state_machine: str = typer.Option(None, "--state-machine", help="its state machine (default: the one with it)"),
    history: bool = typer.Option(False, "--history", help="also print the history in AWS shape"),
) -> None:
    """Run an ASL definition offline on the engine, AWS integrations answered by a mock config."""
    from aionix.errors import AionixError
    from aionix.stepflow.asl.local import test_definition

    st = state(ctx)
    mocks = read_document(mock_config, "mock config") if mock_config else None
    data = read_document(input, "input") if input else None
    try:
        outcome, events = test_definition(
            _definition(file), data, mock_config=mocks, test_case=test_case, state_machine=state_machine
        )
    except AionixError as exc:
        raise CLIError(exc.message, EXIT_USAGE) from None
    result = outcome.as_dict()
    if history:
        result["history"] = events["events"]
    if st.output in ("json", "yaml"):
        st.emit(result)
    else:
        print(json.dumps(result, indent=2))
    if outcome.status != "SUCCEEDED":
        raise CLIError(f"the execution ended {outcome.status}", EXIT_FAILED)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    file: str = typer.Argument(..., help="definition: JSON/YAML file, @file, inline JSON or -"),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Create a workflow template."""
    st = state(ctx)
    body: dict[str, Any] = {"name": name, "definition": _definition(file)}
    if description:
        body["description"] = description
    st.emit(st.client.post("/api/v1/workflows", body), id_field="name")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    file: str = typer.Argument(...),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Save a new version of a template."""
    st = state(ctx)
    body: dict[str, Any] = {"definition": _definition(file)}
    if description:
        body["description"] = description
    st.emit(st.client.put(f"/api/v1/workflows/{name}", body), id_field="name")


@app.command("list")
def list_templates(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List workflow templates."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/workflows", params={"limit": limit, "cursor": cursor}),
        columns=TEMPLATE_COLUMNS,
        id_field="name",
    )


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...), version: int = typer.Option(None, "--version")) -> None:
    """Show a template (the latest version unless --version)."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/workflows/{name}", params={"version": version}), id_field="name")


@app.command("versions")
def versions(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """List a template's versions."""
    st = state(ctx)
    st.emit(
        st.client.get(f"/api/v1/workflows/{name}/versions"),
        columns=["version", "created_at", "description"],
        id_field="version",
    )


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a template."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/workflows/{name}"), id_field="name")


@app.command("start")
def start(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    input: str = typer.Option("null", "--input", "-i", help="JSON/YAML, @file or -"),
    sync: bool = typer.Option(False, "--sync", help="wait for the result"),
    version: int = typer.Option(None, "--version"),
) -> None:
    """Start an execution (async unless --sync); prints the result envelope."""
    st = state(ctx)
    body: dict[str, Any] = {"input": read_document(input), "mode": "sync" if sync else "async"}
    if version is not None:
        body["version"] = version
    envelope = st.client.post(f"/api/v1/workflows/{name}/executions", body)
    st.emit(envelope, id_field="execution_id")
    if envelope.get("status") in ("FAILED", "TIMED_OUT", "ABORTED"):
        raise CLIError(f"execution {envelope['execution_id']} ended {envelope['status']}", EXIT_FAILED)


@exec_app.command("list")
def exec_list(
    ctx: typer.Context,
    workflow: str = typer.Option(None, "--workflow", "-w"),
    status: str = typer.Option(None, "--status"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """List executions, newest first."""
    st = state(ctx)
    page = st.client.get(
        "/api/v1/executions", params={"workflow": workflow, "status": status, "limit": limit, "cursor": cursor}
    )
    st.emit(page, columns=EXEC_COLUMNS, wide_columns=EXEC_WIDE, id_field="execution_id")


@exec_app.command("get")
def exec_get(ctx: typer.Context, execution_id: str = typer.Argument(...)) -> None:
    """Show an execution's result envelope."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/executions/{execution_id}"), id_field="execution_id")


@exec_app.command("history")
def exec_history(
    ctx: typer.Context,
    execution_id: str = typer.Argument(...),
    after: int = typer.Option(0, "--after"),
    limit: int = typer.Option(None, "--limit"),
) -> None:
    """Show an execution's history events."""
    st = state(ctx)
    st.emit(
        st.client.get(f"/api/v1/executions/{execution_id}/history", params={"after": after, "limit": limit}),
        columns=HISTORY_COLUMNS,
        id_field="seq",
    )


def follow_execution(st: Any, execution_id: str, *, cancel_on_interrupt: bool = False) -> dict[str, Any]:
    """Print an execution's events from its Server-Sent Events stream as they happen and return
    the final envelope. Ctrl-C stops following (and cancels the run only when asked)."""
    client = st.client
    final: dict[str, Any] | None = None
    try:
        for kind, data in sse_events(client, f"/api/v1/executions/{execution_id}"):
            if kind == "done":
                final = data
            elif st.quiet:
                continue
            elif st.output == "json":
                print(json.dumps(iso_times(data)), flush=True)
            else:
                detail = json.dumps(data.get("detail"))[:120]
                print(f"{data['seq']:>5}  {data['type']:<20} {data.get('state') or '':<20} {detail}", flush=True)
    except KeyboardInterrupt:
        if cancel_on_interrupt:
            client.post(f"/api/v1/executions/{execution_id}/cancel")
            print(f"aio: cancelled {execution_id}", file=sys.stderr)
        else:
            print(f"aio: stopped following {execution_id} (it keeps running)", file=sys.stderr)
        sys.exit(130)
    if final is None:
        final = client.get(f"/api/v1/executions/{execution_id}")
    return final


def _finish(st: Any, final: dict[str, Any]) -> None:
    if st.output in ("json", "yaml"):
        st.emit(final, id_field="execution_id")
    elif not st.quiet:
        shown = final.get("output") if final["status"] == "SUCCEEDED" else final.get("error")
        print(f"{final['status']}  {json.dumps(shown)}")
    else:
        print(final["execution_id"])
    if final["status"] != "SUCCEEDED":
        raise CLIError(f"execution {final['execution_id']} ended {final['status']}", EXIT_FAILED)


@exec_app.command("follow")
def exec_follow(
    ctx: typer.Context,
    execution_id: str = typer.Argument(...),
    cancel_on_interrupt: bool = typer.Option(False, "--cancel-on-interrupt", help="Ctrl-C also cancels the run"),
) -> None:
    """Follow an execution live (state entered/exited as it happens) until it ends."""
    st = state(ctx)
    _finish(st, follow_execution(st, execution_id, cancel_on_interrupt=cancel_on_interrupt))


@exec_app.command("watch", hidden=True)
def exec_watch(ctx: typer.Context, execution_id: str = typer.Argument(...)) -> None:
    """Same as `follow`."""
    st = state(ctx)
    _finish(st, follow_execution(st, execution_id))


@app.command("run")
def run_workflow(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    input: str = typer.Option("null", "--input", "-i", help="JSON/YAML, @file or -"),
    wait: bool = typer.Option(False, "--wait", "-w", help="follow it live and end with its result"),
    version: int = typer.Option(None, "--version"),
    cancel_on_interrupt: bool = typer.Option(False, "--cancel-on-interrupt", help="with --wait: Ctrl-C also cancels"),
) -> None:
    """Start an execution; with --wait, show its progress live and exit 1 unless it SUCCEEDED."""
    st = state(ctx)
    body: dict[str, Any] = {"input": read_document(input), "mode": "async"}
    if version is not None:
        body["version"] = version
    envelope = st.client.post(f"/api/v1/workflows/{name}/executions", body)
    if not wait:
        st.emit(envelope, id_field="execution_id")
        return
    if envelope.get("status") == "RUNNING":
        envelope = follow_execution(st, envelope["execution_id"], cancel_on_interrupt=cancel_on_interrupt)
    _finish(st, envelope)


@exec_app.command("cancel")
def exec_cancel(ctx: typer.Context, execution_id: str = typer.Argument(...)) -> None:
    """Abort a running execution."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/executions/{execution_id}/cancel"), id_field="execution_id")


@exec_app.command("redrive")
def exec_redrive(ctx: typer.Context, execution_id: str = typer.Argument(...)) -> None:
    """Restart a FAILED, TIMED_OUT or ABORTED execution from where it failed."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/executions/{execution_id}/redrive"), id_field="execution_id")


@app.command("callback")
def callback(
    ctx: typer.Context,
    token: str = typer.Argument(..., help="the task token"),
    outcome: str = typer.Argument(..., help="success, failure or heartbeat"),
    output: str = typer.Option("null", "--output-json", help="success: the task's output (JSON)"),
    error: str = typer.Option(None, "--error"),
    cause: str = typer.Option(None, "--cause"),
) -> None:
    """Complete, fail or heartbeat a callback task."""
    if outcome not in ("success", "failure", "heartbeat"):
        raise CLIError("outcome must be success, failure or heartbeat", EXIT_USAGE)
    st = state(ctx)
    body: dict[str, Any] = {}
    if outcome == "success":
        body["output"] = read_document(output, "output")
    if error:
        body["error"] = error
    if cause:
        body["cause"] = cause
    st.emit(st.client.post(f"/api/v1/callbacks/{token}/{outcome}", body), id_field="token")
