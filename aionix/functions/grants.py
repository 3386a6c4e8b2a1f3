"""Who may grant a function access beyond its sandbox, and to which paths.

`permissions.read` (every runtime) and `permissions.net` widen what user code can reach, so,
like a connection's `allow_hosts`, only an admin key may set them. A read grant must resolve
(symlinks and `..` followed) to a path under one of `[functions] read_roots` (none by default:
every read grant is refused), and never to — or above — a directory that holds the server's
own secrets or state: the data dir, the config file's directory, the credentials file's
directory, the vault key's directory, the sandbox dir, or `/proc`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aionix.errors import Forbidden, ValidationFailed, field_error

ADMIN_ONLY = ("read", "net")
#: replaced by each worker's own directories when `[functions] private_tmp` is on
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def check_role(permissions: Any, role: str | None) -> None:
    """403 naming the field when a non-admin key grants reads or network access."""
    for kind in ADMIN_ONLY:
        if getattr(permissions, kind, None) and role != "admin":
            what = "file reads outside the sandbox" if kind == "read" else "network access"
            raise Forbidden(
                f"permissions.{kind}: grants {what}: only an admin key may set it",
                details=[{"field": f"permissions.{kind}", "message": "only an admin key may grant it"}],
            )


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def protected_dirs(config: Any, sandbox_dir: Path | None) -> list[Path]:
    """Directories no grant may reach into or contain."""
    dirs = [config.data_dir, config.credentials_path.parent, Path("/proc")]
    if config.config_file is not None:
        dirs.append(config.config_file.parent)
    key_file = str((config.vault or {}).get("key_file") or "master.key")
    dirs.append((config.data_dir / key_file).parent)
    if sandbox_dir is not None:
        dirs.append(sandbox_dir)
    return [_real(d) for d in dirs]


def read_problem(path: str, roots: list[str], protected: list[Path]) -> str | None:
    """Why `path` may not be granted (None: it may); `path` is resolved first."""
    if not path.startswith("/"):
        return "must be an absolute path"
    real = _real(path)
    for guarded in protected:
        if real.is_relative_to(guarded):
            return f"{real} is inside {guarded}, which holds the server's own state: never grantable"
        if guarded.is_relative_to(real):
            return f"{real} contains {guarded}, which holds the server's own state: never grantable"
    if not roots:
        return "no read grant is allowed: [functions] read_roots is empty"
    if not any(real.is_relative_to(_real(root)) for root in roots):
        return f"{real} is not under any of [functions] read_roots ({', '.join(roots)})"
    if not real.exists():
        return f"{real} does not exist"
    return None


def check_reads(paths: list[str], roots: list[str], protected: list[Path], *, runtime: str, private_tmp: bool) -> None:
    """422 naming `permissions.read.N` for the first path that may not be granted."""
    for i, path in enumerate(paths):
        problem = read_problem(path, roots, protected)
        real = _real(path) if problem is None else None
        if real is not None and private_tmp and any(real.is_relative_to(d) for d in PRIVATE_DIRS):
            problem = f"{real}: /tmp, /var/tmp and /dev/shm are private to each function worker ([functions] private_tmp): grant a path outside them"
        if real is not None and runtime == "wasm" and not real.is_dir():
            problem = "a WASM function can be granted directories only (WASI preopens)"
        if problem is not None:
            raise field_error(f"permissions.read.{i}", problem, ValidationFailed)


def resolved_reads(paths: list[str], roots: list[str], protected: list[Path]) -> tuple[list[str], str | None]:
    """At invocation: the grants as resolved paths, or why one is no longer allowed (the
    configuration may have changed since the version was deployed)."""
    out = []
    for i, path in enumerate(paths):
        problem = read_problem(path, roots, protected)
        if problem is not None:
            return [], f"permissions.read.{i}: {problem}"
        out.append(str(_real(path)))
    return out, None
