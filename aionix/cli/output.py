"""Printing results: `table` (shortened towards 80 columns, but ids and names are never cut),
`wide`, `json` (the API's objects, stable), `yaml` (times as ISO 8601 UTC in both); `--quiet`
prints only ids. Colour only on a TTY and never with `NO_COLOR`."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

import yaml

FORMATS = ("table", "wide", "json", "yaml")


def use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def is_time_key(key: str) -> bool:
    """A field that holds a point in time as Unix seconds (`created_at`, `due_at`, `ts`…)."""
    return key.endswith("_at") or key == "ts"


def iso_time(value: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds: `2026-05-01T09:30:00.250Z`."""
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_epoch(key: str, value: Any) -> bool:
    return is_time_key(key) and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1e8


def iso_times(data: Any) -> Any:
    """`data` with every time field (at any depth: history event details' `due_at` too) written
    as ISO 8601 UTC, the one format of the CLI's JSON and YAML output. Other values unchanged."""
    if isinstance(data, dict):
        return {k: iso_time(v) if _is_epoch(k, v) else iso_times(v) for k, v in data.items()}
    if isinstance(data, list):
        return [iso_times(v) for v in data]
    return data


#: columns a default table never shortens: they are what users copy into the next command
_WHOLE = ("id", "name", "trn", "token", "path", "seq", "workflow", "function", "trigger")


def _keep_whole(column: str) -> bool:
    return column in _WHOLE or column.endswith("_id")


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_epoch(column, value):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str], *, wide: bool = False) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    if not wide:
        budget = max(40, min(shutil.get_terminal_size((80, 24)).columns, 80))
        # shorten the widest column that may be shortened; ids and names stay whole (a table
        # wider than the terminal is better than an id that cannot be copied)
        free = [i for i, c in enumerate(columns) if not _keep_whole(c)]
        while free and sum(widths) + 2 * (len(widths) - 1) > budget:
            i = max(free, key=lambda j: widths[j])
            if widths[i] <= 8:
                break
            widths[i] -= 1

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: max(1, width - 1)] + "…"

    head = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    if use_colour():
        head = f"\033[1m{head}\033[0m"
    lines = [head]
    for row in cells:
        lines.append("  ".join(fit(v, w).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


#: what `--quiet` prints when a result has no `id_field`: the first of these it has
_QUIET_FALLBACK = ("id", "name", "execution_id", "invocation_id", "function", "path", "trn", "key_id")


def quiet_key(row: Any, id_field: str) -> str | None:
    """The field `--quiet` prints for one result: its id, else its name (every create and
    deploy command prints something that names what it made)."""
    if not isinstance(row, dict):
        return None
    for key in (id_field, *_QUIET_FALLBACK):
        if row.get(key) is not None:
            return key
    return next((k for k, v in row.items() if k.endswith("_id") and v is not None), None)


def emit(
    data: Any,
    fmt: str,
    *,
    columns: list[str] | None = None,
    wide_columns: list[str] | None = None,
    id_field: str = "id",
    quiet: bool = False,
) -> None:
    """Print one object or a list (a page's `items`) in the chosen format."""
    items = data.get("items") if isinstance(data, dict) and "items" in data else None
    if quiet:
        for row in items if items is not None else [data]:
            key = quiet_key(row, id_field)
            if key is not None:
                print(row[key])
        return
    if fmt == "json":
        print(json.dumps(iso_times(data), indent=2, ensure_ascii=False))
    elif fmt == "yaml":
        print(yaml.safe_dump(iso_times(data), sort_keys=False, allow_unicode=True).rstrip())
    elif items is not None or isinstance(data, list):
        rows = items if items is not None else data
        cols = (wide_columns if fmt == "wide" and wide_columns else columns) or (list(rows[0]) if rows else [])
        print(table(rows, cols, wide=fmt == "wide"))
        if isinstance(data, dict) and data.get("next_cursor"):
            print(f"(more: --cursor {data['next_cursor']})")
    elif isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for k, v in data.items():
            print(f"{k.ljust(width)}  {_cell(v, k)}")
    else:
        print(data)
