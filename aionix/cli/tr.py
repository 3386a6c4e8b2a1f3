"""`aio tr`: triggers (schedule, webhook, event): create, list, get, enable, disable, delete,
history, rotate-secret."""

from __future__ import annotations

from typing import Any

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import read_document, state

app = typer.Typer(
    help="Triggers: schedules, webhooks and event rules that start workflows and functions.", no_args_is_help=True
)

COLUMNS = ["name", "kind", "enabled", "target", "next_fire_at", "fire_count"]
WIDE = [*COLUMNS, "schedule", "webhook_path", "event", "input", "version"]
HISTORY_COLUMNS = ["id", "fire_key", "origin", "status", "attempts", "result_id", "error"]
HISTORY_WIDE = [*HISTORY_COLUMNS, "cause", "payload_digest", "created_at"]


def _definition(
    target: str | None,
    schedule: str | None,
    webhook: bool,
    pattern: str | None,
    file: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if file:
        doc = read_document(file, "definition")
        if not isinstance(doc, dict):
            raise CLIError("definition: a trigger is a JSON or YAML object", EXIT_USAGE)
        body.update(doc)
    if target:
        body["target"] = target
    chosen = [flag for flag, on in (("--schedule", schedule), ("--webhook", webhook), ("--pattern", pattern)) if on]
    if len(chosen) > 1:
        raise CLIError(f"give one of --schedule, --webhook, --pattern (got {', '.join(chosen)})", EXIT_USAGE)
    if schedule:
        body["schedule"] = {"expression": schedule}
    elif webhook:
        body["webhook"] = {}
    elif pattern:
        body["event"] = {"pattern": read_document(pattern, "pattern")}
    if "target" not in body:
        raise CLIError("--target is required (a workflow/function/action TRN or an action kind)", EXIT_USAGE)
    return body


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="trigger name"),
    target: str = typer.Option(
        None, "--target", "-t", help="trn:stepflow:…:template/x, trn:aionixfn:…:function/f[:alias], or an action kind"
    ),
    schedule: str = typer.Option(
        None, "--schedule", "-s", help="cron '0 9 * * 1-5', 'rate(5 minutes)' or 'at(2026-12-01T10:00:00Z)'"
    ),
    timezone: str = typer.Option(None, "--timezone", help="IANA time zone of a cron schedule (default UTC)"),
    misfire: str = typer.Option(None, "--misfire", help="skip, fire_once (default) or fire_all"),
    jitter: float = typer.Option(None, "--jitter", help="delay each fire by a stable random 0..N seconds"),
    webhook: bool = typer.Option(False, "--webhook", help="a signed webhook at /hooks/{tenant}/{name}"),
    token: bool = typer.Option(False, "--token", help="webhook: static bearer token instead of signatures"),
    sync_reply: bool = typer.Option(False, "--sync-reply", help="webhook: answer with the workflow's output"),
    pattern: str = typer.Option(None, "--pattern", "-p", help="event pattern (JSON, @file or -)"),
    input_expr: str = typer.Option(None, "--input", help="JSONata transform of the triggering payload"),
    description: str = typer.Option(None, "--description", "-d"),
    disabled: bool = typer.Option(False, "--disabled", help="create it disabled"),
    file: str = typer.Option(
        None, "--file", "-f", help="a full definition (JSON/YAML file, @file or -); flags override it"
    ),
) -> None:
    """Create a trigger. A webhook's secret (or token) is printed once."""
    st = state(ctx)
    body = _definition(target, schedule, webhook or token or sync_reply, pattern, file)
    body["name"] = name
    if "schedule" in body:
        for key, value in (("timezone", timezone), ("misfire", misfire), ("jitter_seconds", jitter)):
            if value is not None:
                body["schedule"][key] = value
    if "webhook" in body:
        if token:
            body["webhook"]["auth"] = "token"
        if sync_reply:
            body["webhook"]["reply"] = "sync"
    if input_expr is not None:
        body["input"] = input_expr
    if description is not None:
        body["description"] = description
    if disabled:
        body["enabled"] = False
    result = st.client.post("/api/v1/triggers", body)
    st.emit({k: v for k, v in result.items() if v is not None}, id_field="name")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="trigger name or TRN"),
    file: str = typer.Option(..., "--file", "-f", help="the full new definition (JSON/YAML file, @file or -)"),
) -> None:
    """Replace a trigger's definition (its kind cannot change)."""
    st = state(ctx)
    body = read_document(file, "definition")
    if not isinstance(body, dict):
        raise CLIError("definition: a trigger is a JSON or YAML object", EXIT_USAGE)
    body.pop("name", None)
    result = st.client.put(f"/api/v1/triggers/{name}", body)
    st.emit({k: v for k, v in result.items() if v is not None}, id_field="name")


@app.command("list")
def list_triggers(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="schedule, webhook or event"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """List the tenant's triggers."""
    st = state(ctx)
    page = st.client.get("/api/v1/triggers", params={"kind": kind, "limit": limit, "cursor": cursor})
    st.emit(page, columns=COLUMNS, wide_columns=WIDE, id_field="name")


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show one trigger."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/triggers/{name}"), id_field="name")


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Enable a trigger (a schedule resumes from now)."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/triggers/{name}/enable"), id_field="name")


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Disable a trigger."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/triggers/{name}/disable"), id_field="name")


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a trigger and its history."""
    st = state(ctx)
    result = st.client.delete(f"/api/v1/triggers/{name}")
    if st.output in ("json", "yaml") or st.quiet:
        st.emit(result, id_field="name")
    else:
        print(f"deleted {result['trn']}")


@app.command("history")
def history(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    status: str = typer.Option(None, "--status", help="pending, delivered, dead, rejected or skipped"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """The trigger's firings, newest first."""
    st = state(ctx)
    page = st.client.get(
        f"/api/v1/triggers/{name}/history", params={"status": status, "limit": limit, "cursor": cursor}
    )
    st.emit(page, columns=HISTORY_COLUMNS, wide_columns=HISTORY_WIDE)


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    grace: float = typer.Option(
        None, "--grace", help="seconds the old secret stays valid (default: server's rotation_grace_seconds)"
    ),
) -> None:
    """Issue a new webhook secret (or token), printed once."""
    st = state(ctx)
    body = {"grace_seconds": grace} if grace is not None else {}
    result = st.client.post(f"/api/v1/triggers/{name}/rotate-secret", body)
    if st.quiet:
        print(result.get("secret") or result.get("token"))
    else:
        st.emit({k: v for k, v in result.items() if v is not None}, id_field="name")
