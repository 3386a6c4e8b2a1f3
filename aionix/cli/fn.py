"""`aio fn`: serverless functions — deploy, versions, aliases, invoke, logs."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import typer
import yaml

from aionix.cli.client import EXIT_FAILED, EXIT_USAGE, CLIError
from aionix.cli.state import read_document, state

app = typer.Typer(help="Functions: deploy, versions, aliases, invoke, logs.", no_args_is_help=True)
COLUMNS = ["name", "runtime", "latest_version", "description"]
CONFIG_FILES = ("function.json", "function.yaml", "function.yml")
SKIP = {"__pycache__", ".git", "node_modules", ".venv"}
CONFIG_KEYS = ("handler", "description", "env", "limits", "permissions", "secrets", "resources")


def _path(name: str) -> str:
    return f"/api/v1/functions/{name}"


def package(directory: Path) -> tuple[dict[str, Any], str]:
    """The folder's `function.json|yaml` and its other files as a base64 zip."""
    if not directory.is_dir():
        raise CLIError(f"{directory}: not a directory", EXIT_USAGE)
    config: dict[str, Any] = {}
    for name in CONFIG_FILES:
        path = directory / name
        if path.is_file():
            try:
                config = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise CLIError(f"{path}: not valid JSON/YAML: {exc}", EXIT_USAGE) from None
            break
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if (
                path.is_dir()
                or rel.name in CONFIG_FILES
                or any(part in SKIP for part in rel.parts)
                or path.suffix == ".pyc"
            ):
                continue
            archive.write(path, rel.as_posix())
            count += 1
    if count == 0:
        raise CLIError(f"{directory}: no files to deploy", EXIT_USAGE)
    return config, base64.b64encode(buffer.getvalue()).decode()


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="folder with the code and function.json|yaml"),
    name: str = typer.Option(None, "--name", help="function name (default: from function.json, else the folder name)"),
    runtime: str = typer.Option(None, "--runtime", help="python, deno or wasm (default: from function.json)"),
) -> None:
    """Package a folder and create the function, or publish a new version of it."""
    st = state(ctx)
    config, code = package(directory)
    fn_name = name or config.get("name") or directory.resolve().name
    fn_runtime = runtime or config.get("runtime")
    settings = {k: config[k] for k in CONFIG_KEYS if k in config}
    existing = _exists(st, fn_name)
    if existing:
        result = st.client.post(f"{_path(fn_name)}/versions", {"code": {"zip_base64": code}, "config": settings})
    else:
        if not fn_runtime:
            raise CLIError("--runtime is required (or give 'runtime' in function.json)", EXIT_USAGE)
        result = st.client.post(
            "/api/v1/functions", {"name": fn_name, "runtime": fn_runtime, "code": {"zip_base64": code}, **settings}
        )
    st.emit(
        result, columns=["name", "function", "version", "latest_version", "runtime", "code_sha256"], id_field="name"
    )


def _exists(st: Any, name: str) -> bool:
    try:
        st.client.get(_path(name))
        return True
    except CLIError as exc:
        if exc.exit_code == 4:
            return False
        raise


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    runtime: str = typer.Option(..., "--runtime", help="python, deno or wasm"),
    file: Path = typer.Option(..., "--file", "-f", help="one source file (.py, .ts/.js, .wat or .wasm)"),
    handler: str = typer.Option(None, "--handler"),
    config: str = typer.Option(None, "--config", help="JSON|@file with env, limits, permissions, secrets, resources"),
) -> None:
    """Create a function from one source file."""
    st = state(ctx)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CLIError(f"{file}: {exc.strerror}", EXIT_USAGE) from None
    code: dict[str, Any]
    if file.suffix == ".wasm":
        code = {"wasm_base64": base64.b64encode(data).decode(), "filename": file.name}
    else:
        code = {"source": data.decode("utf-8"), "filename": file.name}
    body: dict[str, Any] = {"name": name, "runtime": runtime, "code": code}
    if handler:
        body["handler"] = handler
    elif runtime == "python":
        body["handler"] = f"{file.stem}.handler"
    elif runtime == "deno":
        body["handler"] = file.name
    if config:
        body.update(read_document(config, "--config"))
    st.emit(st.client.post("/api/v1/functions", body))


@app.command("list")
def list_functions(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """List functions."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/functions", params={"limit": limit, "cursor": cursor}), columns=COLUMNS)


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Show a function with its versions and aliases."""
    st = state(ctx)
    st.emit(st.client.get(_path(name)))


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a function and everything it has."""
    st = state(ctx)
    st.emit(st.client.delete(_path(name)), columns=COLUMNS)


@app.command("publish")
def publish(
    ctx: typer.Context, name: str = typer.Argument(...), description: str = typer.Option(None, "--description")
) -> None:
    """Publish $LATEST as an immutable version."""
    st = state(ctx)
    body = {"description": description} if description else {}
    st.emit(
        st.client.post(f"{_path(name)}/versions", body),
        columns=["function", "version", "sha256", "created_at"],
        id_field="version",
    )


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    version: int = typer.Argument(None, help="show this version only"),
) -> None:
    """List the published versions (or show one)."""
    st = state(ctx)
    if version is not None:
        st.emit(st.client.get(f"{_path(name)}/versions/{version}"))
        return
    st.emit(
        st.client.get(f"{_path(name)}/versions"),
        columns=["version", "code_sha256", "sha256", "created_at", "description"],
    )


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    alias_name: str = typer.Argument(..., metavar="ALIAS"),
    version: str = typer.Argument(...),
    canary: str = typer.Option(None, "--canary", help="a second version that gets --weight of the traffic"),
    weight: float = typer.Option(0.0, "--weight", help="share for --canary, 0..1"),
) -> None:
    """Point an alias at a version (optionally splitting traffic with a canary)."""
    st = state(ctx)
    body: dict[str, Any] = {"version": version}
    if canary:
        body["routing"] = {"version": canary, "weight": weight}
    st.emit(st.client.put(f"{_path(name)}/aliases/{alias_name}", body))


@app.command("traffic")
def traffic(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    alias_name: str = typer.Argument(..., metavar="ALIAS"),
    version: str = typer.Option(None, "--version", help="the second version (omit to stop splitting)"),
    weight: float = typer.Option(0.0, "--weight", help="its share of the traffic, 0..1"),
) -> None:
    """Change an alias's weighted routing (canary) without moving the alias."""
    st = state(ctx)
    st.emit(st.client.post(f"{_path(name)}/aliases/{alias_name}/traffic", {"version": version, "weight": weight}))


@app.command("alias-get")
def alias_get(
    ctx: typer.Context, name: str = typer.Argument(...), alias_name: str = typer.Argument(..., metavar="ALIAS")
) -> None:
    """Show an alias: its version and, for a canary, the second version and its weight."""
    st = state(ctx)
    st.emit(st.client.get(f"{_path(name)}/aliases/{alias_name}"))


@app.command("alias-delete")
def alias_delete(
    ctx: typer.Context, name: str = typer.Argument(...), alias_name: str = typer.Argument(..., metavar="ALIAS")
) -> None:
    """Delete an alias."""
    st = state(ctx)
    st.emit(st.client.delete(f"{_path(name)}/aliases/{alias_name}"))


@app.command("invocation")
def invocation(ctx: typer.Context, name: str = typer.Argument(...), invocation_id: str = typer.Argument(...)) -> None:
    """Show one invocation record (version, duration, status, error)."""
    st = state(ctx)
    st.emit(st.client.get(f"{_path(name)}/invocations/{invocation_id}"))


@app.command("invoke")
def invoke(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    event: str = typer.Argument(None, help="the event: JSON, @file or - for stdin (default null)"),
    qualifier: str = typer.Option(None, "--qualifier", help="version number or alias"),
    run_async: bool = typer.Option(False, "--async", help="return at once with the invocation id"),
) -> None:
    """Invoke a function; exits 1 when the function failed."""
    st = state(ctx)
    payload = read_document(event, "event") if event is not None else None
    params = {"qualifier": qualifier, "mode": "async" if run_async else None}
    record = st.client.request("POST", f"{_path(name)}/invoke", json=payload, params=params)
    if st.output in ("json", "yaml"):
        st.emit(record)
    elif record.get("status") == "SUCCEEDED":
        print(json.dumps(record.get("result"), indent=2))
    elif record.get("status") == "RUNNING":
        print(record["invocation_id"])
    else:
        st.emit(record.get("error"))
    if record.get("status") in ("FAILED", "TIMED_OUT"):
        raise CLIError(f"{name}: {record['status']}: {(record.get('error') or {}).get('error')}", EXIT_FAILED)


@app.command("invocations")
def invocations(
    ctx: typer.Context, name: str = typer.Argument(...), limit: int = typer.Option(None, "--limit")
) -> None:
    """Recent invocation records."""
    st = state(ctx)
    st.emit(
        st.client.get(f"{_path(name)}/invocations", params={"limit": limit}),
        columns=["invocation_id", "version", "status", "duration_ms", "cold_start"],
        id_field="invocation_id",
    )


@app.command("logs")
def logs(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
    invocation: str = typer.Option(None, "--invocation", help="only this invocation"),
    interval: float = typer.Option(1.0, "--interval", help="seconds between polls with --follow"),
    max_polls: int = typer.Option(0, "--max-polls", hidden=True),
) -> None:
    """Captured stdout/stderr of the function's invocations."""
    st = state(ctx)
    after = None
    polls = 0
    while True:
        page = st.client.get(f"{_path(name)}/logs", params={"after": after, "invocation_id": invocation})
        for line in page["items"]:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line["ts"]))
            print(
                f"{stamp} {line['invocation_id'][-12:]} v{line['version']} {line['stream']}: {line['message']}",
                flush=True,
            )
        after = page.get("last_id") or after
        polls += 1
        if not follow or (max_polls and polls >= max_polls):
            return
        if not page["items"]:
            time.sleep(interval)
