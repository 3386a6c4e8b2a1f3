"""`aio param`: ParamStore parameters."""

from __future__ import annotations

import json

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import read_document, state

app = typer.Typer(help="Parameters: set, get, list, versions, rollback, delete.", no_args_is_help=True)
COLUMNS = ["path", "type", "version", "value", "updated_at"]
WIDE = ["path", "type", "version", "value", "dynamic", "description", "labels", "updated_at", "updated_by"]


def _url(path: str) -> str:
    return "/api/v1/params/" + path.strip().lstrip("/")


def _typed(value: str, type_: str) -> object:
    """The command-line text as the parameter's type (a `{% … %}` expression stays text)."""
    if value.strip().startswith("{%"):
        return value
    if type_ == "number":
        try:
            number = float(value)
        except ValueError:
            raise CLIError(f"VALUE: {value!r} is not a number", EXIT_USAGE) from None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if type_ == "boolean":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise CLIError("VALUE: a boolean is true or false", EXIT_USAGE)
        return lowered == "true"
    if type_ == "json":
        return read_document(value, "VALUE")
    return value


@app.command("set")
def set_param(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="/app/db/host"),
    value: str = typer.Argument(
        ..., help="the value; json: JSON, @file or -; a {% … %} expression is evaluated at read time"
    ),
    type_: str = typer.Option("string", "--type", "-t", help="string, number, boolean, json or secret_ref"),
    description: str = typer.Option(None, "--description"),
    schema: str = typer.Option(None, "--schema", help="JSON Schema (JSON, @file)"),
    pattern: str = typer.Option(None, "--pattern", help="regular expression a string value must match"),
    label: list[str] = typer.Option(None, "--label", help="version label for the new version (repeatable)"),
    expected_version: int = typer.Option(
        None, "--expected-version", help="fail unless the current version is this (0: new)"
    ),
) -> None:
    """Create or update a parameter (a new version)."""
    st = state(ctx)
    body: dict = {"type": type_, "value": _typed(value, type_), "labels": label or []}
    if description is not None:
        body["description"] = description
    if schema is not None:
        body["json_schema"] = read_document(schema, "--schema")
    if pattern is not None:
        body["pattern"] = pattern
    if expected_version is not None:
        body["expected_version"] = expected_version
    st.emit(st.client.put(_url(path), body), id_field="path")


@app.command("get")
def get(
    ctx: typer.Context,
    path: str = typer.Argument(...),
    version: int = typer.Option(None, "--version"),
    label: str = typer.Option(None, "--label"),
    evaluate: bool = typer.Option(False, "--evaluate", help="evaluate a dynamic value, resolve a secret_ref (admin)"),
    raw: bool = typer.Option(False, "--raw", help="print only the value"),
) -> None:
    """A parameter (current version, or --version / --label)."""
    st = state(ctx)
    params = {"version": version, "label": label, "evaluate": "true" if evaluate else None}
    result = st.client.get(_url(path), params=params)
    if raw:
        value = result["value"]
        print(value if isinstance(value, str) else json.dumps(value))
    else:
        st.emit(result, id_field="path")


@app.command("list")
def list_params(
    ctx: typer.Context,
    prefix: str = typer.Argument("/", help="path prefix"),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="the subtree as one nested object"),
    evaluate: bool = typer.Option(False, "--evaluate"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """Parameters under a prefix."""
    st = state(ctx)
    params = {
        "prefix": prefix,
        "recursive": "true" if recursive else None,
        "evaluate": "true" if evaluate else None,
        "limit": limit,
        "cursor": cursor,
    }
    result = st.client.get("/api/v1/params", params=params)
    if recursive:
        if st.output in ("json", "yaml"):
            st.emit(result)
        else:
            print(json.dumps(result["tree"], indent=2, ensure_ascii=False))
    else:
        st.emit(result, columns=COLUMNS, wide_columns=WIDE, id_field="path")


@app.command("versions")
def versions(
    ctx: typer.Context,
    path: str = typer.Argument(...),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """Every version, newest first, with who and when."""
    st = state(ctx)
    st.emit(
        st.client.get(_url(path) + "/versions", params={"limit": limit, "cursor": cursor}),
        columns=["version", "type", "value", "labels", "note", "created_at", "created_by"],
        id_field="version",
    )


@app.command("label")
def label(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="/app/db/host"),
    labels: list[str] = typer.Argument(..., help="one or more labels"),
    version: int = typer.Option(..., "--version", help="the version the labels name"),
) -> None:
    """Point labels at a version (a label names one version; reusing it moves it)."""
    st = state(ctx)
    st.emit(st.client.post(_url(path) + "/labels", {"version": version, "labels": labels}), id_field="path")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    path: str = typer.Argument(...),
    version: int = typer.Argument(..., help="the version to make current again (as a new version)"),
    label: list[str] = typer.Option(None, "--label"),
) -> None:
    """Make an old version current again, as a new version."""
    st = state(ctx)
    st.emit(st.client.post(_url(path) + "/rollback", {"version": version, "labels": label or []}), id_field="path")


@app.command("delete")
def delete(ctx: typer.Context, path: str = typer.Argument(...)) -> None:
    """Delete a parameter and all its versions."""
    st = state(ctx)
    st.emit(st.client.delete(_url(path)), id_field="path")
