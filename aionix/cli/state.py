"""Global CLI options, shared by every command group through typer's context object."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from aionix.cli.client import EXIT_USAGE, Client, CLIError
from aionix.cli.output import emit


@dataclass
class State:
    url: str | None = None
    api_key: str | None = None
    profile: str | None = None
    output: str = "table"
    quiet: bool = False
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client.from_options(self.url, self.api_key, self.profile)
        return self._client

    def emit(self, data: Any, **kw: Any) -> None:
        emit(data, self.output, quiet=self.quiet, **kw)


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = State()
    return root.obj


def read_document(value: str, what: str = "input") -> Any:
    """A JSON/YAML argument: inline text, `@file`, a file path, or `-` for stdin."""
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        text = _read(Path(value[1:]), what)
    elif not value.lstrip().startswith(("{", "[", '"')) and Path(value).is_file():
        text = _read(Path(value), what)
    else:
        text = value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise CLIError(
                f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", EXIT_USAGE
            ) from None


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"{what}: cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
