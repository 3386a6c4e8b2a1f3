"""`aio policy`: policies on TRNs — documents, attachments, and `aio policy test` (simulate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import state

app = typer.Typer(
    help="Policies (IAM-style JSON on TRNs): create, attach to keys, users and groups, test.", no_args_is_help=True
)
COLUMNS = ["name", "builtin", "version", "description"]
KINDS = ("key", "user", "group")


def _load(file: str) -> dict:
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{file}: not JSON: {exc}", EXIT_USAGE) from None


def _target(key: str | None, user: str | None, group: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in zip(KINDS, (key, user, group), strict=True) if v]
    if len(given) != 1:
        raise CLIError("name exactly one of --key, --user or --group", EXIT_USAGE)
    return given[0]


@app.command("list")
def list_policies(
    ctx: typer.Context, limit: int = typer.Option(None, "--limit"), cursor: str = typer.Option(None, "--cursor")
) -> None:
    """The tenant's policies, the built-in role policies (aionix-viewer/-operator/-admin) first."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/policies", params={"limit": limit, "cursor": cursor}), columns=COLUMNS)


@app.command("get")
def get(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """One policy with its document."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/policies/{name}"))


@app.command("put")
def put(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    file: str = typer.Argument(..., help="the policy document (JSON; - for stdin)"),
    description: str = typer.Option("", "--description"),
) -> None:
    """Create or replace a policy from a JSON document ({"statements": [...]})."""
    st = state(ctx)
    doc = _load(file)
    st.emit(st.client.put(f"/api/v1/policies/{name}", {"description": description, "document": doc}))


@app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Delete a policy and its attachments."""
    st = state(ctx)
    st.client.delete(f"/api/v1/policies/{name}")
    if not st.quiet:
        print(f"deleted policy {name}")


@app.command("attachments")
def attachments(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """The keys, users and groups a policy is attached to."""
    st = state(ctx)
    st.emit(
        st.client.get(f"/api/v1/policies/{name}/attachments"), columns=["principal_kind", "principal_id", "created_at"]
    )


def _attach(ctx: typer.Context, op: str, name: str, key: str | None, user: str | None, group: str | None) -> None:
    st = state(ctx)
    kind, ident = _target(key, user, group)
    st.emit(
        st.client.post(f"/api/v1/policies/{name}/{op}", {"principal_kind": kind, "principal_id": ident}),
        columns=["principal_kind", "principal_id", "created_at"],
    )


@app.command("attach")
def attach(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    key: str = typer.Option(None, "--key", help="an API key id (key_…)"),
    user: str = typer.Option(None, "--user", help="a user id"),
    group: str = typer.Option(None, "--group", help="a group name"),
) -> None:
    """Attach a policy to a key, a user or a group."""
    _attach(ctx, "attach", name, key, user, group)


@app.command("detach")
def detach(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    key: str = typer.Option(None, "--key"),
    user: str = typer.Option(None, "--user"),
    group: str = typer.Option(None, "--group"),
) -> None:
    """Detach a policy from a key, a user or a group."""
    _attach(ctx, "detach", name, key, user, group)


@app.command("tags")
def tags(ctx: typer.Context, trn: str = typer.Argument(..., help="the resource's TRN")) -> None:
    """The tags of a resource (read by the `tags` condition of policies)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/tags", params={"trn": trn}))


@app.command("tag")
def tag(
    ctx: typer.Context,
    trn: str = typer.Argument(..., help="the resource's TRN (a workflow, function, secret, parameter, …)"),
    pairs: list[str] = typer.Argument(..., help="KEY=VALUE tags; they replace the resource's tags"),
) -> None:
    """Set the tags of a resource: `aio policy tag trn:stepflow:prod:template/pay team=billing`."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"{pair!r}: tags are KEY=VALUE", EXIT_USAGE)
        values[key] = value
    st = state(ctx)
    st.emit(st.client.put("/api/v1/tags", {"trn": trn, "tags": values}))


@app.command("untag")
def untag(ctx: typer.Context, trn: str = typer.Argument(..., help="the resource's TRN")) -> None:
    """Remove every tag of a resource."""
    st = state(ctx)
    st.client.delete("/api/v1/tags", params={"trn": trn})
    if not st.quiet:
        print(f"removed the tags of {trn}")


@app.command("actions")
def actions(ctx: typer.Context) -> None:
    """Every action a statement can name, with its route, least role and resource."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/policy-actions"), columns=["action", "method", "path", "role"])


@app.command("test")
def test(
    ctx: typer.Context,
    action: str = typer.Argument(..., help="e.g. stepflow:StartExecution"),
    resource: str = typer.Argument(..., help="a TRN, e.g. trn:stepflow:prod:template/billing-run"),
    key: str = typer.Option(None, "--key", help="as this API key (its role and attached policies)"),
    user: str = typer.Option(None, "--user", help="as this user id"),
    group: list[str] = typer.Option([], "--group", help="a group of the principal (repeatable)"),
    role: str = typer.Option(None, "--role", help="viewer, operator, admin or none"),
    source_ip: str = typer.Option(None, "--source-ip"),
    at: float = typer.Option(None, "--time", help="Unix time (default: now)"),
    intent: str = typer.Option(None, "--intent"),
    route: str = typer.Option(None, "--route", help="'METHOD /path'"),
    provider: str = typer.Option(None, "--provider"),
    via: str = typer.Option("api", "--via", help="api, mcp or bus"),
    tag: list[str] = typer.Option([], "--tag", help="a resource tag KEY=VALUE (repeatable)"),
    tenant: str = typer.Option(None, "--acting-tenant", help="the tenant the call acts in (default: yours)"),
    draft: list[str] = typer.Option([], "--with", help="an unsaved policy document to add (JSON file; repeatable)"),
) -> None:
    """May a principal do ACTION on RESOURCE? Prints the decision and the deciding statement;
    exits 0 when allowed, 1 when denied (for scripts and CI)."""
    st = state(ctx)
    tags = {}
    for t in tag:
        k, sep, v = t.partition("=")
        if not sep:
            raise CLIError(f"--tag {t!r}: expected KEY=VALUE", EXIT_USAGE)
        tags[k] = v
    context = {
        "source_ip": source_ip,
        "time": at,
        "intent": intent,
        "route": route,
        "provider": provider,
        "via": via,
        "tags": tags or None,
        "tenant": tenant,
    }
    body = {
        "action": action,
        "resource": resource,
        "key_id": key,
        "user_id": user,
        "groups": group,
        "role": role,
        "context": {k: v for k, v in context.items() if v is not None},
        "extra_policies": [_load(f) for f in draft],
    }
    result = st.client.post("/api/v1/policies/simulate", {k: v for k, v in body.items() if v is not None})
    if st.output in ("json", "yaml") or st.quiet:
        st.emit(result)
    else:
        stmt = result.get("statement")
        by = f" by {stmt['policy']} ({stmt['sid'] or 'statement ' + str(stmt['index'])})" if stmt else ""
        print(f"{result['decision'].upper()}: {action} on {resource} ({result['reason']}{by})")
    if result["decision"] != "allow":
        raise typer.Exit(1)
