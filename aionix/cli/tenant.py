"""`aio tenant`: tenants (cross-tenant admins), their quotas and usage."""

from __future__ import annotations

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import state

app = typer.Typer(help="Tenants: create, list, suspend, resume, quotas, usage.", no_args_is_help=True)
COLUMNS = ["name", "status", "quotas", "created_at", "suspended_at"]
USAGE_COLUMNS = ["quota", "used", "limit", "unit", "source", "resets_at"]
QUOTA_NAMES = (
    "executions_per_day",
    "concurrent_executions",
    "stored_bytes",
    "function_gb_seconds_per_day",
    "webhooks_per_minute",
    "ai_usd_per_day",
)
_FLOATS = ("function_gb_seconds_per_day", "ai_usd_per_day")


def _quotas(items: list[str] | None) -> dict[str, float | int]:
    """`NAME=LIMIT` pairs (0: unlimited) as a quota body."""
    out: dict[str, float | int] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in QUOTA_NAMES:
            raise CLIError(f"--quota: expected NAME=LIMIT with NAME one of {', '.join(QUOTA_NAMES)}", EXIT_USAGE)
        try:
            number = float(value)
        except ValueError:
            raise CLIError(f"--quota {name}: {value!r} is not a number", EXIT_USAGE) from None
        out[name] = number if name in _FLOATS else int(number)
    return out


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the tenant's name ([a-z0-9][a-z0-9-]*)"),
    quota: list[str] = typer.Option(None, "--quota", help="NAME=LIMIT override (repeatable; 0: unlimited)"),
) -> None:
    """Create a tenant (cross-tenant admins); give it keys with `aio keys create --tenant`."""
    st = state(ctx)
    body: dict = {"name": name}
    if quota:
        body["quotas"] = _quotas(quota)
    st.emit(st.client.post("/api/v1/tenants", body))


@app.command("list")
def list_tenants(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List every tenant (cross-tenant admins)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/tenants", params={"limit": limit, "cursor": cursor}), columns=COLUMNS)


@app.command("suspend")
def suspend(ctx: typer.Context, name: str = typer.Argument(..., help="tenant")) -> None:
    """Suspend a tenant: its keys are refused, its schedules and webhooks stop; nothing is deleted."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/tenants/{name}/suspend"))


@app.command("resume")
def resume(ctx: typer.Context, name: str = typer.Argument(..., help="tenant")) -> None:
    """Resume a suspended tenant."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/tenants/{name}/resume"))


@app.command("quotas")
def quotas(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="tenant"),
    quota: list[str] = typer.Option(
        None, "--quota", help="NAME=LIMIT (repeatable; 0: unlimited); the ones not given take [quotas] defaults"
    ),
) -> None:
    """Set a tenant's quota overrides (replacing its previous ones)."""
    st = state(ctx)
    st.emit(st.client.put(f"/api/v1/tenants/{name}/quotas", _quotas(quota)))


@app.command("usage")
def usage(ctx: typer.Context, name: str = typer.Argument(None, help="tenant (default: the key's own)")) -> None:
    """A tenant's quotas: use, limit and reset of each."""
    st = state(ctx)
    if name is None:
        name = st.client.get("/api/v1/whoami")["tenant"]
    result = st.client.get(f"/api/v1/tenants/{name}/usage")
    st.emit({"items": result["quotas"]} if st.output == "table" else result, columns=USAGE_COLUMNS)
