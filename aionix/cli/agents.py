"""`aio mcp` (an MCP server on stdio), `aio runtime` (capabilities, simulate), `aio copilot`
(controlled workflow edits), and `aio wf simulate`."""

from __future__ import annotations

from typing import Any

import typer

from aionix.cli.client import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, CLIError
from aionix.cli.state import read_document, state
from aionix.cli.wf import app as wf_app

runtime_app = typer.Typer(
    help="What the runtime can do (capabilities) and what a run would cost (simulate).", no_args_is_help=True
)
copilot_app = typer.Typer(
    help="Copilot sessions: edit a workflow draft by operations, review, apply.", no_args_is_help=True
)


def mcp(
    ctx: typer.Context,
    tenant: str = typer.Option(None, "--tenant", help="act in this tenant (cross-tenant admin keys)"),
) -> None:
    """Serve MCP on stdin/stdout for desktop agents, proxying to the server's /mcp with this profile's key.

    Tools, resources and prompts are the server's for that key (its role and tenant); every call is
    audited there. Configure an agent with the command `aio mcp` (and --profile/--url/--api-key).
    """
    try:
        import anyio

        from aionix.agents.mcp_stdio import serve_stdio
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types", "httpx2"):
            raise
        raise CLIError("the MCP server needs the mcp SDK: pip install 'aionix[mcp]'", EXIT_USAGE) from None
    client = state(ctx).client
    if not client.api_key:
        raise CLIError(f"no API key: {client.key_source}", EXIT_USAGE)
    # the key is checked first, so a bad key or URL is one clear line (not an MCP transport error)
    client.get("/api/v1/whoami", headers={"X-Aionix-Tenant": tenant} if tenant else None)
    try:
        anyio.run(serve_stdio, client.url, client.api_key, tenant)
    except KeyboardInterrupt:
        return
    except Exception as exc:
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        text = str(exc) or type(exc).__name__
        if "connect" in type(exc).__name__.lower():
            raise CLIError(f"cannot reach the server at {client.url} ({text})", EXIT_UNREACHABLE) from None
        if "401" in text or "unauthorized" in text.lower():
            raise CLIError(f"the server refused the API key (it came from {client.key_source})", EXIT_FAILED) from None
        raise CLIError(f"MCP proxy to {client.url}/mcp failed: {text}", EXIT_UNREACHABLE) from None


@runtime_app.command("capabilities")
def capabilities(ctx: typer.Context) -> None:
    """Every skill the tenant can use, with cost, latency p50/p95, rate limits and permissions."""
    st = state(ctx)
    caps = st.client.get("/api/v1/runtime/capabilities")
    if st.output in ("json", "yaml"):
        st.emit(caps)
        return
    rows = []
    for group in ("connectors", "functions", "actions", "intents", "workflows"):
        for item in caps.get(group, []):
            lat = item.get("latency_ms") or {}
            rows.append(
                {
                    "skill": item["skill"],
                    "cost_usd": item.get("cost_usd"),
                    "p50_ms": lat.get("p50"),
                    "p95_ms": lat.get("p95"),
                    "role": (item.get("permissions") or {}).get("role"),
                }
            )
    st.emit(rows, columns=["skill", "cost_usd", "p50_ms", "p95_ms", "role"], id_field="skill")


def _simulate(ctx: typer.Context, body: dict[str, Any]) -> None:
    st = state(ctx)
    result = st.client.post("/api/v1/runtime/simulate", body)
    st.emit(result)
    if not result.get("feasible"):
        raise CLIError("not feasible: " + "; ".join(p["message"] for p in result.get("problems", [])), EXIT_FAILED)


@runtime_app.command("simulate")
def simulate(
    ctx: typer.Context,
    workflow: str = typer.Option(None, "--workflow", "-w", help="a stored workflow"),
    file: str = typer.Option(None, "--file", "-f", help="an inline definition: JSON/YAML, @file or -"),
    steps: str = typer.Option(None, "--steps", help="a list of skill steps [{skill, count}]: JSON/YAML, @file or -"),
    input: str = typer.Option("null", "--input", "-i", help="JSON/YAML, @file or -"),
    version: int = typer.Option(None, "--version"),
    budget: float = typer.Option(None, "--budget-usd"),
) -> None:
    """Estimate cost, duration p50/p95, feasibility and risks without running anything."""
    body: dict[str, Any] = {
        "input": read_document(input),
        "budget_usd": budget,
        "version": version,
        "workflow": workflow,
    }
    if file is not None:
        body["definition"] = read_document(file, "definition")
    if steps is not None:
        body["steps"] = read_document(steps, "steps")
    _simulate(ctx, {k: v for k, v in body.items() if v is not None or k == "input"})


@wf_app.command("simulate")
def wf_simulate(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    input: str = typer.Option("null", "--input", "-i", help="JSON/YAML, @file or -"),
    version: int = typer.Option(None, "--version"),
    budget: float = typer.Option(None, "--budget-usd"),
) -> None:
    """Simulate a run of a stored workflow: feasibility, cost, duration p50/p95, risks (runs nothing)."""
    body: dict[str, Any] = {"workflow": name, "input": read_document(input)}
    if version is not None:
        body["version"] = version
    if budget is not None:
        body["budget_usd"] = budget
    _simulate(ctx, body)


@copilot_app.command("open")
def copilot_open(ctx: typer.Context, workflow: str = typer.Argument(...)) -> None:
    """Open a session: a draft of the workflow's latest version."""
    st = state(ctx)
    st.emit(st.client.post("/api/v1/copilot/sessions", {"workflow": workflow}), id_field="session_id")


@copilot_app.command("get")
def copilot_get(ctx: typer.Context, session: str = typer.Argument(...)) -> None:
    """A session's draft, validation and operations."""
    st = state(ctx)
    st.emit(st.client.get(f"/api/v1/copilot/sessions/{session}"), id_field="session_id")


@copilot_app.command("op")
def copilot_op(
    ctx: typer.Context,
    session: str = typer.Argument(...),
    operation: str = typer.Argument(
        ...,
        help="create_node, update_node, delete_node, connect_nodes, validate_graph, "
        "simulate_execution, suggest_optimization or estimate_cost",
    ),
    args: str = typer.Option("{}", "--args", "-a", help="the operation's fields: JSON/YAML, @file or -"),
) -> None:
    """Run one operation on the draft: prints the new draft, its validation and the JSON diff."""
    st = state(ctx)
    body = read_document(args, "args")
    if not isinstance(body, dict):
        raise CLIError("--args must be an object", EXIT_USAGE)
    st.emit(st.client.post(f"/api/v1/copilot/sessions/{session}/operations", {**body, "op": operation}))


@copilot_app.command("apply")
def copilot_apply(ctx: typer.Context, session: str = typer.Argument(...)) -> None:
    """Publish the draft as a new workflow version (an operator key that did not edit the draft)."""
    st = state(ctx)
    st.emit(st.client.post(f"/api/v1/copilot/sessions/{session}/apply"), id_field="session_id")
