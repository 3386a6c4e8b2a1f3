"""`aio user`, `aio group` and `aio auth`: users and groups, sign-in and access tokens."""

from __future__ import annotations

import sys

import typer

from aionix.cli.client import CLIError
from aionix.cli.state import state

app = typer.Typer(help="Users of the tenant: create, list, get, update, delete.", no_args_is_help=True)
group_app = typer.Typer(
    help="Groups of users: create, list, get, delete, add and remove members.", no_args_is_help=True
)
auth_app = typer.Typer(help="Sign-in and access tokens: login, token, refresh, logout.", no_args_is_help=True)
COLUMNS = ["name", "role", "source", "email", "disabled", "last_login_at"]
GROUP_COLUMNS = ["name", "description", "members", "created_at"]


def _password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CLIError("--password-stdin: no password on standard input", 2)
    return value


@app.command("create")
def create_user(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the sign-in name"),
    role: str = typer.Option("viewer", "--role", help="viewer, operator or admin"),
    email: str = typer.Option(None, "--email"),
    group: list[str] = typer.Option([], "--group", help="a group to join (repeatable)"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read a password (local user) from stdin"),
) -> None:
    """Create a user; with a password it signs in locally (`aio auth login`)."""
    st = state(ctx)
    body = {"name": name, "role": role, "email": email, "groups": group, "password": _password(password_stdin)}
    st.emit(st.client.post("/api/v1/users", {k: v for k, v in body.items() if v is not None}))


@app.command("list")
def list_users(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List the tenant's users."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/users", params={"limit": limit, "cursor": cursor}), columns=COLUMNS)


@app.command("get")
def get_user(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show a user and its groups."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/users/{name}"))


@app.command("update")
def update_user(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    role: str = typer.Option(None, "--role"),
    email: str = typer.Option(None, "--email"),
    disable: bool = typer.Option(None, "--disable/--enable", help="a disabled user cannot sign in"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="set a new password read from stdin"),
) -> None:
    """Change a user's role, email, password or disabled flag."""
    st = state(ctx)
    body = {"role": role, "email": email, "disabled": disable, "password": _password(password_stdin)}
    st.emit(st.client.put(f"/api/v1/users/{name}", {k: v for k, v in body.items() if v is not None}))


@app.command("delete")
def delete_user(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a user (its sessions end)."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/users/{name}"))


@group_app.command("create")
def create_group(
    ctx: typer.Context, name: str = typer.Argument(...), description: str = typer.Option("", "--description")
) -> None:
    """Create a group."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/groups", {"name": name, "description": description}))


@group_app.command("list")
def list_groups(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List the tenant's groups."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/groups", params={"limit": limit, "cursor": cursor}), columns=GROUP_COLUMNS)


@group_app.command("get")
def get_group(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show a group and its members."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/groups/{name}"))


@group_app.command("delete")
def delete_group(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a group."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/groups/{name}"))


@group_app.command("add")
def add_member(ctx: typer.Context, name: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
    """Add a user to a group."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/groups/{name}/members", {"user": user}))


@group_app.command("remove")
def remove_member(ctx: typer.Context, name: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
    """Remove a user from a group."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/groups/{name}/members/{user}"))


@auth_app.command("config")
def auth_config(ctx: typer.Context) -> None:
    """How to sign in to this server (local users, OIDC)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/auth/config"))


@auth_app.command("login")
def login(
    ctx: typer.Context,
    username: str = typer.Argument(...),
    tenant: str = typer.Option("default", "--tenant"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
) -> None:
    """Sign in a local user: prints an access token and a refresh token."""
    st = state(ctx)
    password = _password(password_stdin) or typer.prompt("password", hide_input=True)
    result = st.client.post("/api/v1/auth/login", {"username": username, "password": password, "tenant": tenant})
    if st.quiet:
        print(result["access_token"])
    else:
        st.emit(result)


@auth_app.command("token")
def token(
    ctx: typer.Context, ttl: int = typer.Option(None, "--ttl", help="seconds (at most the server's TTL)")
) -> None:
    """Exchange the API key for a short-lived access token."""
    st = state(ctx)
    result = st.client.post("/api/v1/auth/token", {"ttl_seconds": ttl} if ttl else {})
    if st.quiet:
        print(result["access_token"])
    else:
        st.emit(result)


@auth_app.command("refresh")
def refresh(ctx: typer.Context, refresh_token: str = typer.Argument(..., help="the refresh token (aior_…)")) -> None:
    """A new access token and refresh token for a refresh token (which is used up)."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/auth/refresh", {"refresh_token": refresh_token}))


@auth_app.command("logout")
def logout(ctx: typer.Context, refresh_token: str = typer.Argument(..., help="the refresh token (aior_…)")) -> None:
    """End a session (its refresh tokens are revoked)."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/auth/logout", {"refresh_token": refresh_token}))


@auth_app.command("jwks")
def jwks(ctx: typer.Context) -> None:
    """The public keys that verify access tokens."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/auth/jwks"))


@auth_app.command("rotate-key")
def rotate_key(ctx: typer.Context) -> None:
    """Make a new access-token signing key (cross-tenant admin); old tokens stay valid until expiry."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/auth/signing-keys/rotate"))
