"""Per-tenant parts of the file roots (`[connectors] fs_roots` and `sql_roots`).

A root is server-wide; what a tenant may touch is its own part of it, `{root}/{tenant}`, created
on first use with mode 0700. A connection's `root` (fs) or `path` (SQLite) resolves inside the
caller's part only — after following symlinks, so a link that one tenant plants in its part can
never lead another tenant (or itself) outside it. A cross-tenant admin may mark a connection
`shared_root: true`, which lets it name any directory inside the configured roots (a deployment's
explicit shared folder). The server's own data directory and the credentials file's directory are
never reachable, whatever the roots say.

Connections saved before roots were split per tenant may name a directory outside their tenant's
part: they are refused at call time with the way out, and `aio admin doctor` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aionix.errors import Forbidden, field_error


@dataclass(frozen=True)
class TenantRoots:
    """The roots of one kind of file access (`fs_roots` or `sql_roots`) as one tenant sees them."""

    setting: str  # "fs_roots" | "sql_roots", for messages
    configured: tuple[Path, ...]
    protected: tuple[Path, ...]
    tenant: str

    @classmethod
    def of(cls, setting: str, roots: Iterable[str], tenant: str, protected: Iterable[Path]) -> TenantRoots:
        return cls(
            setting,
            tuple(Path(r).expanduser().resolve() for r in roots),
            tuple(Path(p).expanduser().resolve() for p in protected),
            tenant,
        )

    def parts(self) -> list[Path]:
        """The tenant's part of every root, created (0700) when missing."""
        return [tenant_part(root, self.tenant) for root in self.configured]

    def check_not_protected(self, path: Path, field: str) -> None:
        for p in self.protected:
            if path == p or p in path.parents or path in p.parents:
                raise Forbidden(
                    f"{field}: {path} overlaps the server's own files ({p}); it is never reachable from a connection"
                )

    def place(self, raw: str, field: str, *, shared: bool = False) -> Path:
        """Where a connection's `root`/`path` lies: inside the tenant's part (relative values are
        taken relative to the part of the first root), or inside any configured root when the
        connection is `shared` (set by a cross-tenant admin)."""
        if "\x00" in raw:
            raise field_error(field, "contains a NUL byte")
        if not self.configured:
            raise field_error(field, f"no [connectors] {self.setting} are configured on this server")
        parts = self.parts()
        candidate = Path(raw).expanduser()
        full = (candidate if candidate.is_absolute() else parts[0] / candidate).resolve()
        self.check_not_protected(full, field)
        allowed = self.configured if shared else parts
        if any(full == a or a in full.parents for a in allowed):
            return full
        if any(full == c or c in full.parents for c in self.configured):
            raise Forbidden(
                f"{field}: {raw!r} is outside tenant {self.tenant}'s part of [connectors] {self.setting} "
                f"({', '.join(str(p) for p in parts)}); an admin must move it there "
                "(or a cross-tenant admin mark the connection shared_root) — see `aio admin doctor`"
            )
        raise field_error(field, f"{raw!r} is not inside any of [connectors] {self.setting}")


def tenant_part(root: Path, tenant: str) -> Path:
    part = root / tenant
    try:
        part.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise Forbidden(f"cannot create {part}: {exc.strerror}") from None
    return part.resolve()


def protected_paths(rt: object) -> list[Path]:
    """The server's own files: the data dir and the directory of the credentials file."""
    config = getattr(rt, "config", None)
    if config is None:
        return []
    out = [config.data_dir]
    cred = config.credentials_path
    if cred.parent != Path(os.path.expanduser("~")):
        out.append(cred.parent)
    else:
        out.append(cred)
    return out
