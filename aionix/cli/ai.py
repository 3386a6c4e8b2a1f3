"""`aio task`, `aio router` and `aio usage`: AI tasks, the router's policy versions and
decisions, and the usage ledger."""

from __future__ import annotations

import sys
from typing import Any

import typer

from aionix.cli.client import EXIT_USAGE, CLIError, sse_events
from aionix.cli.state import read_document, state

task_app = typer.Typer(help="AI tasks: submit, get, cancel, list, follow.", no_args_is_help=True)
router_app = typer.Typer(help="The AI router: policy reload, versions, rollback, decisions.", no_args_is_help=True)
usage_app = typer.Typer(help="AI usage (tokens, cost) and budgets.", invoke_without_command=True)

TASK_COLUMNS = ["task_id", "intent", "status", "engine.route", "engine.provider", "engine.model", "usage.cost_usd"]


def _flat(env: dict[str, Any]) -> dict[str, Any]:
    out = dict(env)
    for part in ("engine", "usage"):
        for k, v in (env.get(part) or {}).items():
            out[f"{part}.{k}"] = v
    return out


def _follow(st: Any, task_id: str) -> dict[str, Any]:
    """Print the task's tokens as they stream; return the final envelope."""
    client = st.client
    final: dict[str, Any] | None = None
    try:
        for kind, data in sse_events(client, f"/api/v1/tasks/{task_id}"):
            if kind in ("done", "error"):
                final = data
            elif kind == "token" and not st.quiet and st.output not in ("json", "yaml"):
                print(data.get("text", ""), end="", flush=True)
    except KeyboardInterrupt:
        client.post(f"/api/v1/tasks/{task_id}/cancel")
        print(f"\naio: canceled {task_id}", file=sys.stderr)
        sys.exit(130)
    if not st.quiet and st.output not in ("json", "yaml"):
        print()
    return final or client.get(f"/api/v1/tasks/{task_id}")


@task_app.command("submit")
def submit(
    ctx: typer.Context,
    intent: str = typer.Argument(..., help="the intent (intents.yml)"),
    params: str = typer.Option("{}", "--params", "-p", help="params as JSON/YAML, @file or -"),
    privacy: str = typer.Option(
        None, "--privacy", help="local-only, hybrid or allow-api (only stricter than the intent)"
    ),
    budget_usd: float = typer.Option(None, "--budget-usd"),
    latency_ms: int = typer.Option(None, "--latency-ms"),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    follow: bool = typer.Option(False, "--follow", "-f", help="stream the tokens as they come"),
    idempotency_key: str = typer.Option(None, "--idempotency-key", help="a replay never calls a provider twice"),
) -> None:
    """Submit a task; --follow streams its answer."""
    st = state(ctx)
    body_params = read_document(params, "--params")
    if not isinstance(body_params, dict):
        raise CLIError("--params: must be a JSON/YAML object", EXIT_USAGE)
    body: dict[str, Any] = {"intent": intent, "params": body_params, "stream": follow}
    for key, value in (
        ("privacy", privacy),
        ("budget_usd", budget_usd),
        ("latency_ms", latency_ms),
        ("max_tokens", max_tokens),
    ):
        if value is not None:
            body[key] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    env = st.client.post("/api/v1/tasks", body, headers=headers)
    if follow and env.get("status") == "RUNNING":
        env = _follow(st, env["task_id"])
    st.emit(_flat(env) if st.output not in ("json", "yaml") else env, columns=TASK_COLUMNS, id_field="task_id")


@task_app.command("get")
def get(ctx: typer.Context, task_id: str = typer.Argument(...)) -> None:
    """A task's envelope."""
    st = state(ctx)
    env = st.client.get(f"/api/v1/tasks/{task_id}")
    st.emit(_flat(env) if st.output not in ("json", "yaml") else env, columns=TASK_COLUMNS, id_field="task_id")


@task_app.command("follow")
def follow_task(ctx: typer.Context, task_id: str = typer.Argument(...)) -> None:
    """Stream a task's tokens (SSE) until it ends."""
    st = state(ctx)
    env = _follow(st, task_id)
    st.emit(_flat(env) if st.output not in ("json", "yaml") else env, columns=TASK_COLUMNS, id_field="task_id")


@task_app.command("cancel")
def cancel(ctx: typer.Context, task_id: str = typer.Argument(...)) -> None:
    """Cancel a running task (its provider stream is closed)."""
    st = state(ctx)
    env = st.client.post(f"/api/v1/tasks/{task_id}/cancel")
    st.emit(_flat(env) if st.output not in ("json", "yaml") else env, columns=TASK_COLUMNS, id_field="task_id")


@task_app.command("list")
def list_tasks(
    ctx: typer.Context,
    status: str = typer.Option(None, "--status", help="OK, ERROR, TIMEOUT, CANCELED or RUNNING"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """The tenant's tasks, newest first."""
    st = state(ctx)
    page = st.client.get("/api/v1/tasks", params={"status": status, "limit": limit, "cursor": cursor})
    if st.output not in ("json", "yaml"):
        page = {**page, "items": [_flat(i) for i in page["items"]]}
    st.emit(page, columns=TASK_COLUMNS, id_field="task_id")


@router_app.command("reload")
def reload(ctx: typer.Context) -> None:
    """Load the policy files again (admin); a bad file is refused and the running version stays."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/router/policy/reload"), id_field="version")


@router_app.command("versions")
def versions(
    ctx: typer.Context,
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """Every loaded policy version, newest first."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/router/policy/versions", params={"limit": limit, "cursor": cursor}),
        columns=["version", "active", "digest", "created_at", "created_by"],
        id_field="version",
    )


@router_app.command("rollback")
def rollback(ctx: typer.Context, version: int = typer.Argument(..., help="the policy version to make active")) -> None:
    """Make an earlier policy version active (admin)."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/router/policy/rollback", {"version": version}), id_field="version")


@router_app.command("decisions")
def decisions(
    ctx: typer.Context,
    task_id: str = typer.Option(None, "--task"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """The router's decisions, newest first, with their reasons."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/router/decisions", params={"task_id": task_id, "limit": limit, "cursor": cursor}),
        columns=["seq", "task_id", "intent", "route", "provider", "model", "tier", "chosen_by", "reason"],
        id_field="seq",
    )


def _show(ctx: typer.Context, group_by: str, since: str | None) -> None:
    st = state(ctx)
    result = st.client.get("/api/v1/usage", params={"group_by": group_by, "since": since})
    if st.output in ("json", "yaml"):
        st.emit(result)
    else:
        st.emit(
            {"items": result["items"]},
            columns=[group_by, "tasks", "tokens_in", "tokens_out", "cost_usd", "avg_latency_ms"],
            id_field=group_by,
        )


@usage_app.callback()
def usage_default(
    ctx: typer.Context,
    group_by: str = typer.Option("intent", "--group-by", help="intent, provider, model, day or key"),
    since: str = typer.Option(None, "--since", help="YYYY-MM-DD (default: 30 days ago)"),
) -> None:
    """Tokens and cost from the usage ledger (`aio usage --group-by provider`)."""
    if ctx.invoked_subcommand is None:
        _show(ctx, group_by, since)


@usage_app.command("show")
def usage_show(
    ctx: typer.Context,
    group_by: str = typer.Option("intent", "--group-by", help="intent, provider, model, day or key"),
    since: str = typer.Option(None, "--since", help="YYYY-MM-DD (default: 30 days ago)"),
) -> None:
    """Tokens and cost from the usage ledger, grouped."""
    _show(ctx, group_by, since)


@usage_app.command("budget")
def budget(
    ctx: typer.Context,
    daily_usd: float = typer.Option(None, "--daily-usd", help="set the tenant's daily budget (admin; 0: no limit)"),
    monthly_usd: float = typer.Option(None, "--monthly-usd", help="set the tenant's monthly budget (admin)"),
    reset: bool = typer.Option(False, "--reset", help="back to the [ai] budgets defaults (admin)"),
) -> None:
    """The tenant's AI budget; with --daily-usd/--monthly-usd/--reset, set it."""
    st = state(ctx)
    if daily_usd is None and monthly_usd is None and not reset:
        st.emit(st.client.get("/api/v1/usage/budget"), id_field="tenant")
        return
    st.emit(
        st.client.put("/api/v1/usage/budget", {"daily_usd": daily_usd, "monthly_usd": monthly_usd}), id_field="tenant"
    )
