"""`aio`: one CLI for every service.

Global options: `--url`, `--api-key`, `--profile`, `--output table|wide|json|yaml`, `--quiet`.
Exit codes: 0 success, 1 the remote operation failed, 2 usage error, 3 auth error, 4 not
found, 5 cannot reach the server. Errors are one line; `AIONIX_DEBUG=1` shows tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

try:  # typer >= 0.26 vendors click as typer._click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from aionix.cli.client import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE, CLIError
from aionix.cli.output import FORMATS, table
from aionix.cli.state import state

app = typer.Typer(
    name="aio",
    help="Aionix CLI: workflows, functions, triggers, connectors, secrets, params.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: (module under aionix.cli, command name); a module that is absent is skipped.
GROUPS = (
    ("keys", "keys"),
    ("admin", "admin"),
    ("wf", "wf"),
    ("fn", "fn"),
    ("tr", "tr"),
    ("events", "events"),
    ("act", "act"),
    ("sec", "sec"),
    ("param", "param"),
    ("profile", "profile"),
    ("modules", "module"),
    ("tenant", "tenant"),
    ("policy", "policy"),
)


@app.callback()
def main(
    ctx: typer.Context,
    url: str = typer.Option(None, "--url", help="server URL (env AIONIX_URL; default from the profile)"),
    api_key: str = typer.Option(None, "--api-key", help="API key (env AIONIX_API_KEY; default from the profile)"),
    profile: str = typer.Option(None, "--profile", help="profile in ~/.config/aionix/credentials"),
    output: str = typer.Option(
        "table", "--output", "-o", help="table, wide, json or yaml (json/yaml: times as ISO 8601 UTC)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only the id (or name) of each result"),
) -> None:
    if output not in FORMATS:
        raise CLIError(f"--output must be one of {', '.join(FORMATS)}", EXIT_USAGE)
    st = state(ctx)
    st.url, st.api_key, st.profile, st.output, st.quiet = url, api_key, profile, output, quiet


#: the nodes table of `aio status` (`this`: `*` marks the node that answered)
NODE_COLUMNS = ("id", "this", "version", "host", "executions", "loadavg", "heartbeat_age_s")


@app.command("status")
def status(
    ctx: typer.Context,
    all_nodes: bool = typer.Option(False, "--all", help="list stopped and lost nodes too, not only the live ones"),
) -> None:
    """Show the server's health, who the key is, and the cluster's live nodes (the answering
    node marked `*`): id, version, host, executions running, load and heartbeat age."""
    st = state(ctx)
    health = st.client.get("/healthz")
    me = st.client.get("/api/v1/whoami")
    data = {"url": st.client.url, **health, "tenant": me["tenant"], "role": me["role"], "key_id": me["key_id"]}
    if me.get("user_id"):  # signed in with an access token: who, and how
        data.update(user_id=me["user_id"], groups=me.get("groups") or [], source=me.get("source"))
    try:
        nodes = st.client.get("/api/v1/cluster/nodes")["items"]
    except CLIError as exc:  # a server without the route, or a policy that denies it: the rest still shows
        if exc.exit_code not in (EXIT_AUTH, EXIT_NOT_FOUND):
            raise
        nodes, data["nodes_error"] = None, exc.message
    if nodes is not None:
        data["nodes"] = nodes if all_nodes else [n for n in nodes if n["live"]]
    if st.quiet or st.output in ("json", "yaml"):
        st.emit(data)
        return
    st.emit({k: v for k, v in data.items() if k != "nodes"})
    if nodes is None:
        return
    rows = [
        {
            "id": n["id"],
            "this": "*" if n["self"] else "",
            "live": n["live"],
            "version": n["version"],
            "host": n.get("host") or "",
            "executions": (n.get("load") or {}).get("executions", 0),
            "loadavg": (n.get("load") or {}).get("loadavg", 0.0),
            "heartbeat_age_s": n.get("heartbeat_age_seconds"),
        }
        for n in data["nodes"]
    ]
    columns = list(NODE_COLUMNS[:2]) + (["live"] if all_nodes else []) + list(NODE_COLUMNS[2:])
    print(f"\nnodes ({sum(1 for n in nodes if n['live'])} live):")
    print(table(rows, columns, wide=st.output == "wide"))


@app.command("resolve")
def resolve(ctx: typer.Context, trn: str = typer.Argument(..., help="a full TRN")) -> None:
    """Parse a TRN and show the resource it names (if it exists in your tenant)."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/resolve", params={"trn": trn}), id_field="trn")


@app.command("whoami")
def whoami(ctx: typer.Context) -> None:
    """Show the calling key's identity."""
    st = state(ctx)
    st.emit(st.client.get("/api/v1/whoami"), id_field="key_id")


SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_AIO_COMPLETE"


@app.command("completion")
def completion(shell: str = typer.Argument(..., help="bash, zsh or fish")) -> None:
    """Print the shell completion script: `source <(aio completion bash)`."""
    if shell not in SHELLS:
        raise CLIError(f"shell must be one of {', '.join(SHELLS)}", EXIT_USAGE)
    from typer.completion import get_completion_script

    print(get_completion_script(prog_name="aio", complete_var=COMPLETE_VAR, shell=shell))


@app.command("docs")
def docs(format: str = typer.Option("markdown", "--format", help="markdown")) -> None:
    """Print the whole command reference (docs/cli.md is this output)."""
    if format != "markdown":
        raise CLIError("--format must be markdown", EXIT_USAGE)
    from aionix.cli.reference import markdown

    sys.stdout.write(markdown(typer.main.get_command(app)))


from aionix.cli.init import init as _init  # noqa: E402

app.command("init")(_init)

from aionix.cli.profile import login as _login  # noqa: E402

app.command("login")(_login)

from aionix.cli.lsp import lsp as _lsp  # noqa: E402

app.command("lsp")(_lsp)

for module_name, command in GROUPS:
    try:
        module = importlib.import_module(f"aionix.cli.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"aionix.cli.{module_name}":
            continue
        raise
    app.add_typer(module.app, name=command)

from aionix.cli import ai as _ai  # noqa: E402

app.add_typer(_ai.task_app, name="task")
app.add_typer(_ai.router_app, name="router")
app.add_typer(_ai.usage_app, name="usage")

from aionix.cli import agents as _agents  # noqa: E402

app.add_typer(_agents.runtime_app, name="runtime")
app.add_typer(_agents.copilot_app, name="copilot")

from aionix.cli import users as _users  # noqa: E402

app.add_typer(_users.app, name="user")
app.add_typer(_users.group_app, name="group")
app.add_typer(_users.auth_app, name="auth")
app.command("mcp")(_agents.mcp)

from aionix.cli.complete import install as _install_completion  # noqa: E402

_install_completion(app)


_GLOBAL_WITH_VALUE = {"--url", "--api-key", "--profile", "--output", "-o"}
_GLOBAL_FLAGS = {"--quiet", "-q"}


def hoist_global_options(args: list[str]) -> list[str]:
    """Global options may be written anywhere (`aio keys list -o json`, like kubectl):
    move them in front of the command."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_WITH_VALUE:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(args[i : i + 2])
                i += 1
        elif arg in _GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def run(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to one line and an exit code."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    if COMPLETE_VAR in os.environ:
        from typer.completion import completion_init

        completion_init()
        try:
            app(prog_name="aio")
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0
    try:
        # With standalone_mode=False click returns a typer.Exit's code instead of raising it.
        code = app(args=args, prog_name="aio", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except CLIError as exc:
        if os.environ.get("AIONIX_DEBUG") == "1":
            raise
        print(f"aio: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("aio: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return EXIT_USAGE
    except click_exceptions.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run())
