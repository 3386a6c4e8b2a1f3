"""`aio init DIR`: a new project folder with a working example function, workflow and trigger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import state

FUNCTION_CODE = '''"""An Aionix Python function: handler(event, context) -> JSON."""


def handler(event, context):
    name = (event or {}).get("name", "world")
    return {"greeting": f"Hello, {name}!", "length": len(name)}
'''


def _files(tenant: str) -> dict[str, str]:
    function = {
        "name": "greet",
        "runtime": "python",
        "handler": "main.handler",
        "description": "Greets someone (made by aio init)",
        "limits": {"timeout_seconds": 5, "memory_mb": 128},
    }
    workflow = {
        "entry": "Greet",
        "timeout_seconds": 60,
        "states": {
            "Greet": {
                "type": "task",
                "action": f"trn:aionixfn:{tenant}:function/greet",
                "parameters": {"name": "{% input.name ? input.name : 'world' %}"},
                "retry": [{"errors": ["States.ALL"], "max_attempts": 2, "interval_seconds": 1}],
                "next": "Decide",
            },
            "Decide": {
                "type": "router",
                "routes": [{"condition": "{% input.length > 10 %}", "next": "Long"}],
                "default": "Done",
            },
            "Long": {
                "type": "set",
                "value": {"message": "{% input.greeting & ' (that is a long name)' %}"},
                "end": True,
            },
            "Done": {"type": "succeed", "output": {"expression": {"message": "{% input.greeting %}"}}},
        },
    }
    trigger = {
        "target": f"trn:stepflow:{tenant}:template/hello",
        "schedule": {"expression": "rate(1 hour)", "misfire": "fire_once"},
        "input": '{"name": "scheduler"}',
        "description": "Runs the hello workflow every hour (made by aio init)",
    }
    readme = f"""# An Aionix project

Made by `aio init`. With the server running (`aionix` or `make run`) and the CLI configured:

```sh
aio fn deploy functions/greet
aio wf create hello workflows/hello.json
aio wf run hello --input '{{"name": "Ada"}}' --wait
aio tr create hourly-hello --file triggers/hourly-hello.json
```

- `functions/greet/` — a Python function (`function.json` + `main.py`).
- `workflows/hello.json` — calls the function, routes on its result, succeeds.
- `triggers/hourly-hello.json` — runs the workflow every hour.

Resources live in tenant `{tenant}`.
"""
    return {
        "README.md": readme,
        "functions/greet/function.json": json.dumps(function, indent=2) + "\n",
        "functions/greet/main.py": FUNCTION_CODE,
        "workflows/hello.json": json.dumps(workflow, indent=2) + "\n",
        "triggers/hourly-hello.json": json.dumps(trigger, indent=2) + "\n",
    }


def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="a new or empty folder"),
    tenant: str = typer.Option("default", "--tenant", help="tenant the example TRNs name"),
) -> None:
    """Create a folder with a working example function, workflow and trigger."""
    if directory.exists() and any(directory.iterdir()):
        raise CLIError(f"{directory} is not empty", EXIT_USAGE)
    for rel, text in _files(tenant).items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not state(ctx).quiet:
        print(f"created {directory}: see {directory / 'README.md'}")
