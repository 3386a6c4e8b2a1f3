"""`aio act`: OpenAct connector kinds, connections and actions (and AuthFlow sign-in)."""

from __future__ import annotations

import typer

from aionix.cli.client import EXIT_NOT_FOUND, CLIError
from aionix.cli.state import read_document, state

app = typer.Typer(help="Connectors: kinds, connections, actions, execute, auth.", no_args_is_help=True)
conn_app = typer.Typer(help="Connections: create, list, get, update, delete, test.", no_args_is_help=True)
app.add_typer(conn_app, name="conn")

ACTION_COLUMNS = ["name", "kind", "connection", "operation", "updated_at"]
CONN_COLUMNS = ["name", "kind", "description", "updated_at"]


@app.command("connectors")
def connectors(ctx: typer.Context) -> None:
    """List connector kinds and their operations."""
    st = state(ctx)
    kinds = st.client.get("/api/v1/connectors")
    rows = [
        {
            "kind": k["kind"],
            "title": k["title"],
            "operations": ", ".join(o["name"] for o in k["operations"]),
            "available": k["available"],
            "extra": k["extra"],
        }
        for k in kinds
    ]
    st.emit(
        rows if st.output in ("table", "wide") else kinds,
        columns=["kind", "title", "operations", "available"],
        id_field="kind",
    )


@conn_app.command("create")
def conn_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="connection name"),
    kind: str = typer.Option(..., "--kind", help="connector kind (aio act connectors)"),
    config: str = typer.Option(
        "{}", "--config", help="config as JSON, @file or -; secrets only as *_secret CredVault names"
    ),
    description: str = typer.Option("", "--description"),
) -> None:
    """Create a connection."""
    st = state(ctx)
    body = {"name": name, "kind": kind, "config": read_document(config, "--config"), "description": description}
    st.emit(st.client.post("/api/v1/connections", body), id_field="name")


@conn_app.command("list")
def conn_list(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """List connections."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/connections", params={"kind": kind, "limit": limit, "cursor": cursor}),
        columns=CONN_COLUMNS,
        id_field="name",
    )


@conn_app.command("get")
def conn_get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show a connection."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/connections/{name}"), id_field="name")


@conn_app.command("update")
def conn_update(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    config: str = typer.Option(..., "--config", help="the new config as JSON, @file or -"),
    description: str = typer.Option("", "--description"),
) -> None:
    """Replace a connection's config."""
    st = state(ctx)
    body = {"config": read_document(config, "--config"), "description": description}
    st.emit(st.client.put(f"/api/v1/connections/{name}", body), id_field="name")


@conn_app.command("delete")
def conn_delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a connection (no action may use it)."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/connections/{name}"), id_field="name")


@conn_app.command("test")
def conn_test(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Check that a connection reaches its server; exit 1 when it does not."""
    st = state(ctx)
    result = st.client.post(f"/api/v1/connections/{name}/test")
    st.emit(result)
    if not result.get("ok"):
        raise typer.Exit(1)


def _action_body(kind: str, connection: str | None, operation: str | None, parameters: str, description: str) -> dict:
    return {
        "kind": kind,
        "connection": connection,
        "operation": operation,
        "parameters": read_document(parameters, "--parameters"),
        "description": description,
    }


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="action name"),
    kind: str = typer.Option(..., "--kind"),
    connection: str = typer.Option(None, "--connection", help="connection name or TRN"),
    operation: str = typer.Option(None, "--operation"),
    parameters: str = typer.Option(
        "{}", "--parameters", help="JSON, @file or -; strings may be {% JSONata %} over input"
    ),
    description: str = typer.Option("", "--description"),
) -> None:
    """Save an action (a parameterised operation on a connection)."""
    st = state(ctx)
    body = {"name": name, **_action_body(kind, connection, operation, parameters, description)}
    st.emit(st.client.post("/api/v1/actions", body), id_field="name")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="action name or TRN"),
    kind: str = typer.Option(..., "--kind"),
    connection: str = typer.Option(None, "--connection", help="connection name or TRN"),
    operation: str = typer.Option(None, "--operation"),
    parameters: str = typer.Option(
        "{}", "--parameters", help="JSON, @file or -; strings may be {% JSONata %} over input"
    ),
    description: str = typer.Option("", "--description"),
) -> None:
    """Replace a saved action's definition."""
    st = state(ctx)
    body = _action_body(kind, connection, operation, parameters, description)
    st.emit(st.client.put(f"/api/v1/actions/{name}", body), id_field="name")


@app.command("list")
def list_actions(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """List saved actions."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/actions", params={"kind": kind, "limit": limit, "cursor": cursor}),
        columns=ACTION_COLUMNS,
        id_field="name",
    )


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show a saved action."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/actions/{name}"), id_field="name")


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a saved action."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/actions/{name}"), id_field="name")


@app.command("execute")
def execute(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    input: str = typer.Option("null", "--input", help="the action's input as JSON, @file or -"),
    parameters: str = typer.Option(None, "--parameters", help="parameter overrides as JSON"),
) -> None:
    """Run a saved action and print its result."""
    st = state(ctx)
    body = {"input": read_document(input, "--input")}
    if parameters:
        body["parameters"] = read_document(parameters, "--parameters")
    out = st.client.post(f"/api/v1/actions/{name}/execute", body)
    st.emit(out["result"] if st.output in ("json", "yaml") else out)


@app.command("auth")
def auth(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="an http connection with oauth2 authorization_code auth"),
    open_browser: bool = typer.Option(False, "--open", help="open the authorization URL in a browser"),
    timeout: float = typer.Option(300.0, "--timeout", help="seconds to wait for the browser to come back"),
) -> None:
    """Sign a connection in with OAuth2 (PKCE): prints the authorization URL, waits for the
    callback, then stores the tokens in CredVault under the connection's token_secret."""
    import time
    import webbrowser

    st = state(ctx)
    started = st.client.post(f"/api/v1/connections/{name}/authorize")
    url = started["authorization_url"]
    print(f"Open this URL to authorize {name}:\n{url}", flush=True)
    if open_browser:
        webbrowser.open(url)
    deadline = time.monotonic() + timeout
    while True:
        status = st.client.get(f"/api/v1/authflow/{started['state']}")
        if status["completed"]:
            break
        if time.monotonic() > deadline:
            raise CLIError(f"no answer from the browser within {timeout:g} s", 1)
        time.sleep(0.5)
    if status["error"]:
        raise CLIError(f"authorization failed: {status['error']}", 1)
    if not status["tokens"]:
        raise CLIError("the tokens were already handed over to another caller", 1)
    secret = status["token_secret"]
    try:
        st.client.get(f"/api/v1/secrets/{secret}")
        exists = True
    except CLIError as exc:
        if exc.exit_code != EXIT_NOT_FOUND:
            raise
        exists = False
    if exists:
        st.client.put(f"/api/v1/secrets/{secret}", {"value": status["tokens"]})
    else:
        st.client.post(
            "/api/v1/secrets",
            {
                "name": secret,
                "type": "oauth_token",
                "value": status["tokens"],
                "description": f"OAuth2 tokens of connection {name}",
            },
        )
    st.emit({"connection": name, "authorized": True, "token_secret": secret})
