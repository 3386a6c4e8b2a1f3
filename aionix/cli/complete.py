"""Shell completion of resource names (`aio wf get <TAB>`) and of option values (`-o <TAB>`).

Completers are attached by parameter name to every command of a group, so a command added
later completes its `name` / `execution_id` argument without being listed here. Names come
from the server the command line points at (its --url/--api-key/--profile, the environment or
the profile); a server that cannot be reached completes nothing instead of failing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from aionix.cli.output import FORMATS

#: (collection, the field that names an item)
_SOURCES = {
    "workflows": ("/api/v1/workflows", "name"),
    "executions": ("/api/v1/executions", "execution_id"),
    "functions": ("/api/v1/functions", "name"),
    "triggers": ("/api/v1/triggers", "name"),
    "secrets": ("/api/v1/secrets", "name"),
}

#: at most this many pages of 200 are read for one completion
_MAX_PAGES = 10

#: command group → parameter name → collection it names
GROUP_PARAMS = {
    "wf": {"name": "workflows", "execution_id": "executions"},
    "fn": {"name": "functions"},
    "tr": {"name": "triggers"},
    "sec": {"name": "secrets"},
}


def names(ctx: Any, collection: str, incomplete: str) -> list[str]:
    """The names of `collection` that start with `incomplete` (newest executions first)."""
    from aionix.cli.client import Client

    path, field = _SOURCES[collection]
    root = ctx.find_root() if ctx is not None else None
    opts = root.params if root is not None else {}
    out: list[str] = []
    try:
        client = Client.from_options(opts.get("url"), opts.get("api_key"), opts.get("profile"))
        client.timeout = 5.0
        cursor = None
        for _ in range(_MAX_PAGES):
            page = client.get(path, params={"limit": 200, "cursor": cursor})
            items = page.get("items", []) if isinstance(page, dict) else []
            out.extend(
                str(i[field]) for i in items if isinstance(i, dict) and str(i.get(field, "")).startswith(incomplete)
            )
            cursor = page.get("next_cursor") if isinstance(page, dict) else None
            if not cursor:
                break
    except Exception:
        return out
    return out


def _completer(collection: str) -> Callable[..., list[str]]:
    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        return names(ctx, collection, incomplete)

    return complete


def complete_output(incomplete: str) -> list[str]:
    return [f for f in FORMATS if f.startswith(incomplete)]


def _attach(group: typer.Typer, params: dict[str, str]) -> None:
    callbacks = [c.callback for c in group.registered_commands]
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _attach(sub.typer_instance, params)
    for callback in callbacks:
        if callback is None:
            continue
        for pname, p in inspect.signature(callback).parameters.items():
            info = p.default
            if pname in params and isinstance(info, typer.models.ParameterInfo) and info.autocompletion is None:
                info.autocompletion = _completer(params[pname])


def install(app: typer.Typer) -> None:
    """Attach the completers to the CLI's groups and the root's `--output`."""
    for sub in app.registered_groups:
        if sub.name in GROUP_PARAMS and sub.typer_instance is not None:
            _attach(sub.typer_instance, GROUP_PARAMS[sub.name])
    root = app.registered_callback
    if root is not None and root.callback is not None:
        info = inspect.signature(root.callback).parameters["output"].default
        if isinstance(info, typer.models.ParameterInfo):
            info.autocompletion = complete_output
