"""The CLI credentials file (`~/.config/aionix/credentials`, mode 0600): TOML with one table
per profile, each with `url` and `api_key`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any


def load_profiles(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def save_profile(path: Path, name: str, **values: str) -> Path:
    """Add or replace one profile, keeping the others; written atomically with mode 0600."""
    path = path.expanduser()
    profiles = load_profiles(path)
    profiles[name] = {**profiles.get(name, {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for profile, items in profiles.items():
        lines.append(f"[{_quote(profile)}]")
        lines.extend(f"{k} = {_quote(str(v))}" for k, v in items.items())
        lines.append("")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
