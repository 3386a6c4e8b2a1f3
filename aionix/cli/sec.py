"""`aio sec`: CredVault secrets. Values are read from `--value` (`@file` for a file, `-` for
stdin, so a value need not appear on the command line) and are printed only by `reveal`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import state

app = typer.Typer(
    help="Secrets: create, list, get, reveal, rotate, versions, policy, delete, rotate-master-key.",
    no_args_is_help=True,
)
COLUMNS = ["name", "type", "latest_version", "updated_at", "deleted_at"]
WIDE = [
    "name",
    "type",
    "latest_version",
    "stages",
    "description",
    "labels",
    "created_at",
    "updated_at",
    "rotated_at",
    "deleted_at",
    "readers",
]
READER_HELP = (
    "TRN pattern of a workflow, function, connection, action or trigger that may read the value "
    "(repeatable; `*` matches anything; admin only). Default: trn:*:TENANT:* (any resource of the tenant)"
)


def _read_value(value: str, secret_type: str | None) -> object:
    """`-` stdin, `@path` a file, otherwise the text itself; JSON parsed for `json` secrets
    (and for `oauth_token` when it looks like an object)."""
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CLIError(f"--value: cannot read {value[1:]}: {exc.strerror}", EXIT_USAGE) from None
    else:
        text = value
    if secret_type == "json" or (secret_type == "oauth_token" and text.lstrip().startswith("{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--value: not valid JSON ({exc.msg} at line {exc.lineno})", EXIT_USAGE) from None
    if (value == "-" or value.startswith("@")) and text.endswith("\n"):
        text = text[:-1]
    return text


def _labels(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--label: expected key=value, got {item!r}", EXIT_USAGE)
        out[key] = val
    return out


def _rotation(target: str | None, schedule: str | None) -> dict | None:
    if target is None and schedule is None:
        return None
    return {"target": target, "schedule": schedule}


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    type_: str = typer.Option("password", "--type", "-t", help="api_key, password, certificate, oauth_token or json"),
    value: str = typer.Option(..., "--value", help="the value, @file, or - for stdin"),
    description: str = typer.Option("", "--description"),
    label: list[str] = typer.Option(None, "--label", help="key=value (repeatable)"),
    rotation_target: str = typer.Option(
        None, "--rotation-target", help="function or workflow TRN that makes new values"
    ),
    rotation_schedule: str = typer.Option(None, "--rotation-schedule", help="cron (UTC) for automatic rotation"),
    reader: list[str] = typer.Option(None, "--reader", help=READER_HELP),
) -> None:
    """Create a secret (version 1)."""
    st = state(ctx)
    body = {
        "name": name,
        "type": type_,
        "value": _read_value(value, type_),
        "description": description,
        "labels": _labels(label),
    }
    if reader:
        body["readers"] = list(reader)
    rotation = _rotation(rotation_target, rotation_schedule)
    if rotation:
        body["rotation"] = rotation
    st.emit(st.client.post("/api/v1/secrets", body), id_field="name")


@app.command("put")
def put(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    value: str = typer.Option(None, "--value", help="a new version: the value, @file, or - for stdin"),
    description: str = typer.Option(None, "--description"),
    label: list[str] = typer.Option(None, "--label", help="key=value (repeatable; replaces the labels)"),
    rotation_target: str = typer.Option(None, "--rotation-target"),
    rotation_schedule: str = typer.Option(None, "--rotation-schedule"),
    clear_rotation: bool = typer.Option(False, "--clear-rotation"),
    reader: list[str] = typer.Option(None, "--reader", help=READER_HELP + " (replaces the readers)"),
) -> None:
    """Store a new version and/or change the metadata."""
    st = state(ctx)
    body: dict = {}
    if reader:
        body["readers"] = list(reader)
    if value is not None:
        current = st.client.get(f"/api/v1/secrets/{name}")
        body["value"] = _read_value(value, current["type"])
    if description is not None:
        body["description"] = description
    if label:
        body["labels"] = _labels(label)
    rotation = _rotation(rotation_target, rotation_schedule)
    if rotation:
        body["rotation"] = rotation
    if clear_rotation:
        body["clear_rotation"] = True
    st.emit(st.client.put(f"/api/v1/secrets/{name}", body), id_field="name")


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    reader: list[str] = typer.Option(None, "--reader", help=READER_HELP),
    none: bool = typer.Option(False, "--none", help="let no workflow, function or connection read it"),
) -> None:
    """Set who may read a secret (admin): `--reader` TRN patterns, or `--none`. Anything else
    that resolves it fails with CredVault.AccessDenied (audited, naming the reader)."""
    st = state(ctx)
    if none and reader:
        raise CLIError("give --reader patterns or --none, not both", EXIT_USAGE)
    if not none and not reader:
        raise CLIError("give at least one --reader pattern (or --none)", EXIT_USAGE)
    st.emit(st.client.put(f"/api/v1/secrets/{name}/policy", {"readers": [] if none else list(reader)}), id_field="name")


@app.command("list")
def list_secrets(
    ctx: typer.Context,
    include_deleted: bool = typer.Option(False, "--include-deleted"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """List secrets (metadata only)."""
    st = state(ctx)
    params = {"limit": limit, "cursor": cursor, "include_deleted": "true" if include_deleted else None}
    st.emit(st.client.get("/api/v1/secrets", params=params), columns=COLUMNS, wide_columns=WIDE, id_field="name")


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """A secret's metadata (never the value)."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/secrets/{name}"), id_field="name")


@app.command("reveal")
def reveal(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    version: int = typer.Option(None, "--version"),
    stage: str = typer.Option(None, "--stage", help="current, previous or pending"),
    raw: bool = typer.Option(False, "--raw", help="print only the value"),
) -> None:
    """Print a secret's value (admin only; audited)."""
    st = state(ctx)
    result = st.client.post(f"/api/v1/secrets/{name}/reveal", None, params={"version": version, "stage": stage})
    if raw:
        value = result["value"]
        print(value if isinstance(value, str) else json.dumps(value))
    else:
        st.emit(result, id_field="name")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    value: str = typer.Option(
        None, "--value", help="the new value, @file, or - (omitted: the rotation target makes it)"
    ),
    no_promote: bool = typer.Option(False, "--no-promote", help="leave the new version pending"),
) -> None:
    """Create a pending version and promote it to current."""
    st = state(ctx)
    body: dict = {"promote": not no_promote}
    if value is not None:
        current = st.client.get(f"/api/v1/secrets/{name}")
        body["value"] = _read_value(value, current["type"])
    st.emit(st.client.post(f"/api/v1/secrets/{name}/rotate", body), id_field="name")


@app.command("versions")
def versions(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Every version with its stages."""
    st = state(ctx)
    st.emit(
        st.client.get(f"/api/v1/secrets/{name}/versions"),
        columns=["version", "stages", "created_at", "created_by"],
        id_field="version",
    )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    force: bool = typer.Option(False, "--force", help="purge now, no recovery window (admin)"),
) -> None:
    """Delete a secret (restorable during the recovery window unless --force)."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/secrets/{name}", params={"force": "true" if force else None}), id_field="name")


@app.command("restore")
def restore(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Cancel a pending deletion."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/secrets/{name}/restore", None), id_field="name")


@app.command("master-key")
def master_key(ctx: typer.Context) -> None:
    """Where the master key comes from and when it was rotated (cross-tenant admin)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/vault/master-key"), id_field="master_id")


@app.command("rotate-master-key")
def rotate_master_key(
    ctx: typer.Context,
    new_key_file: Path = typer.Option(
        None, "--new-key-file", help="file holding the new base64 key (server uses AIONIX_MASTER_KEY)"
    ),
    new_passphrase_file: Path = typer.Option(
        None, "--new-passphrase-file", help="file holding the new passphrase (server uses AIONIX_MASTER_PASSPHRASE)"
    ),
) -> None:
    """Re-wrap every data key under a new master key (cross-tenant admin). With a key file the
    server makes the new key itself; otherwise pass the new key or passphrase in a file."""
    st = state(ctx)
    body: dict = {}
    for option, path, field in (
        ("--new-key-file", new_key_file, "new_key"),
        ("--new-passphrase-file", new_passphrase_file, "new_passphrase"),
    ):
        if path is not None:
            try:
                body[field] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CLIError(f"{option}: cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    st.emit(st.client.post("/api/v1/vault/master-key/rotate", body), id_field="master_id")
