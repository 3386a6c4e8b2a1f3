"""`aio keys`: API keys."""

from __future__ import annotations

import typer

from aionix.cli.state import state

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
COLUMNS = ["id", "name", "role", "tenant", "prefix", "created_at", "revoked_at"]


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="a label for the key"),
    role: str = typer.Option("viewer", "--role", help="viewer, operator or admin"),
    tenant: str = typer.Option(None, "--tenant", help="tenant (default: the caller's)"),
    cross_tenant: bool = typer.Option(False, "--cross-tenant", help="admin keys only"),
) -> None:
    """Create a key; it is printed once."""
    st = state(ctx)
    body = {"name": name, "role": role, "cross_tenant": cross_tenant}
    if tenant:
        body["tenant"] = tenant
    result = st.client.post("/api/v1/keys", body)
    if st.quiet:
        print(result["key"])
    else:
        st.emit(result)


@app.command("list")
def list_keys(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List the tenant's keys (never the keys themselves)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/keys", params={"limit": limit, "cursor": cursor}), columns=COLUMNS)


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., help="key id (key_…)")) -> None:
    """Revoke a key."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/keys/{key_id}"))
