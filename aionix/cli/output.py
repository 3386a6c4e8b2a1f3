"""Printing results: `table` (fits 80 columns), `wide`, `json` (the API's objects, stable),
`yaml`; `--quiet` prints only ids. Colour only on a TTY and never with `NO_COLOR`."""

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


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and column.endswith(("_at", "ts")) and value > 1e9:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
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
        while sum(widths) + 2 * (len(widths) - 1) > budget and max(widths) > 8:
            i = widths.index(max(widths))
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
            if isinstance(row, dict) and id_field in row:
                print(row[id_field])
        return
    if fmt == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif fmt == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
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
