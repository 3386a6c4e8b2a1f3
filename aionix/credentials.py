"""The CLI credentials file (`~/.config/aionix/credentials`, mode 0600): TOML with one table
per profile, each with `url` and `api_key`, and an optional top-level `current` (the profile
`aio` uses when neither `--profile` nor `AIONIX_PROFILE` names one; `default` when absent)."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "default"


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def load_profiles(path: Path) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _load(path).items() if isinstance(v, dict)}


def current_profile(path: Path) -> str:
    """The profile `aio` uses by default: the file's `current`, else `default`."""
    current = _load(path).get("current")
    return current if isinstance(current, str) and current else DEFAULT_PROFILE


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write(path: Path, profiles: dict[str, dict[str, Any]], current: str | None) -> Path:
    """The whole file, replaced atomically. The new file is created with mode 0600 by
    `mkstemp` (O_EXCL, whatever the umask) and fsynced before the rename; a missing parent
    directory is created with mode 0700."""
    path = path.expanduser()
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
    lines = [f"current = {_quote(current)}", ""] if current and current != DEFAULT_PROFILE else []
    for profile, items in profiles.items():
        lines.append(f"[{_quote(profile)}]")
        lines.extend(f"{k} = {_quote(str(v))}" for k, v in items.items())
        lines.append("")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def save_profile(path: Path, name: str, **values: str) -> Path:
    """Add or replace one profile, keeping the others; written atomically with mode 0600."""
    data = _load(path)
    profiles = {k: v for k, v in data.items() if isinstance(v, dict)}
    profiles[name] = {**profiles.get(name, {}), **values}
    current = data.get("current") if isinstance(data.get("current"), str) else None
    return _write(path, profiles, current)


def set_current(path: Path, name: str) -> Path:
    """Make `name` (an existing profile) the one `aio` uses by default."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise KeyError(name)
    return _write(path, profiles, name)


def remove_profile(path: Path, name: str) -> Path:
    """Remove `name`; when it was the current profile, `default` becomes current again."""
    data = _load(path)
    profiles = {k: v for k, v in data.items() if isinstance(v, dict)}
    if name not in profiles:
        raise KeyError(name)
    del profiles[name]
    current = data.get("current") if isinstance(data.get("current"), str) else None
    return _write(path, profiles, None if current == name else current)


def first_start_profile(profiles: dict[str, dict[str, Any]], url: str, answers) -> tuple[str, str | None]:
    """Which profile a server's first admin key goes to, and a note when it is not `default`:
    `default` when absent or already pointing at this URL (this server holds the port now);
    otherwise `default-N` (the first free one, or one already for this URL), because `default`
    points at another server, whose key must not be lost. `answers(url)` says whether a server
    answers there (the note then says so)."""
    url = url.rstrip("/")

    def same(name: str) -> bool:
        return str(profiles[name].get("url", "")).rstrip("/") == url

    if DEFAULT_PROFILE not in profiles or same(DEFAULT_PROFILE):
        return DEFAULT_PROFILE, None
    n = 2
    while f"{DEFAULT_PROFILE}-{n}" in profiles and not same(f"{DEFAULT_PROFILE}-{n}"):
        n += 1
    other = str(profiles[DEFAULT_PROFILE].get("url", ""))
    state = "a live server" if answers(other) else "a server that does not answer now"
    return f"{DEFAULT_PROFILE}-{n}", f"profile '{DEFAULT_PROFILE}' points at {state} ({other}) and was left as it is"
