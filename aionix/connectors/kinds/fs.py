"""`fs`: read, write, list, stat and delete files only under the caller's tenant part of the
configured roots (`{fs_root}/{tenant}`, see `aionix.connectors.roots`), or a connection's `root`
inside that part. A path that leaves its root — `..`, an absolute path elsewhere, a symlink
pointing out — is refused with a 422."""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params
from aionix.connectors.roots import TenantRoots, protected_paths
from aionix.errors import field_error


class FsConnection(ConnectionConfig):
    root: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="a directory inside the tenant's part of [connectors] fs_roots ({root}/{tenant}); "
        "relative values are taken inside the part of the first root",
    )
    shared_root: bool = Field(
        False, description="cross-tenant admin only: root may be any directory inside [connectors] fs_roots"
    )


class PathParams(Params):
    path: str = Field(..., min_length=1, max_length=4096, description="relative to the root (or absolute inside it)")


class ReadParams(PathParams):
    encoding: Literal["utf-8", "base64"] = "utf-8"
    max_bytes: int | None = Field(None, ge=1, description="read at most this much (truncated: true)")
    offset: int = Field(0, ge=0, description="start reading at this byte (paged reads of big files)")


class WriteParams(PathParams):
    content: str = Field(..., description="text, or base64 when encoding is base64")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    append: bool = False
    make_dirs: bool = True


class ListParams(Params):
    path: str = Field(".", max_length=4096)
    pattern: str = Field("*", description="glob on the file name")
    recursive: bool = False
    max_entries: int = Field(10_000, ge=1, le=100_000)


def tenant_roots(settings: Any, tenant: str, service: Any) -> TenantRoots:
    return TenantRoots.of("fs_roots", settings.fs_roots, tenant, protected_paths(getattr(service, "rt", None)))


def roots(call: Invocation) -> list[Path]:
    """The directories this call may touch: the connection's root, else the tenant's parts."""
    if call.connection is not None:
        conn = call.connection
        mine = tenant_roots(call.settings, conn.tenant, conn.service)
        return [mine.place(conn.config.root, "config.root", shared=conn.config.shared_root)]
    if not call.settings.fs_roots:
        raise KIND.error("NotConfigured", "no fs roots: set [connectors] fs_roots or use an fs connection")
    return tenant_roots(call.settings, call.ctx.tenant, call.services).parts()


def resolve(call: Invocation, raw: str, field: str = "parameters.path") -> tuple[Path, Path]:
    """(root, absolute path inside it); 422 when the path leaves every root."""
    if "\x00" in raw:
        raise field_error(field, "contains a NUL byte")
    allowed = roots(call)
    candidate = Path(raw)
    for root in allowed:
        full = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if full == root or root in full.parents:
            return root, full
    raise field_error(field, f"{raw!r} is outside the allowed roots (path traversal refused)")


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root)) if path != root else "."


async def run_read(call: Invocation) -> dict[str, Any]:
    p: ReadParams = call.params
    root, path = resolve(call, p.path)
    limit = min(p.max_bytes or call.max_result_bytes, call.max_result_bytes)

    def read() -> tuple[bytes, int]:
        with open(path, "rb") as f:
            if p.offset:
                f.seek(p.offset)
            data = f.read(limit + 1)
            return data, os.fstat(f.fileno()).st_size

    try:
        data, size = await asyncio.to_thread(read)
    except FileNotFoundError:
        raise KIND.error("NotFound", f"{_rel(root, path)} does not exist") from None
    except IsADirectoryError:
        raise field_error("parameters.path", "is a directory") from None
    truncated = len(data) > limit
    data = data[:limit]
    if p.encoding == "base64":
        content = base64.b64encode(data).decode("ascii")
    else:
        content = data.decode("utf-8", errors="ignore" if truncated else "replace")
    return {"path": _rel(root, path), "content": content, "encoding": p.encoding, "size": size, "truncated": truncated}


async def run_write(call: Invocation) -> dict[str, Any]:
    p: WriteParams = call.params
    root, path = resolve(call, p.path)
    if path == root:
        raise field_error("parameters.path", "names the root directory, not a file")
    if p.encoding == "base64":
        try:
            data = base64.b64decode(p.content, validate=True)
        except ValueError:
            raise field_error("parameters.content", "is not valid base64") from None
    else:
        data = p.content.encode("utf-8")

    def write() -> int:
        if p.make_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if p.append else "wb") as f:
            f.write(data)
            return f.tell()

    try:
        size = await asyncio.to_thread(write)
    except FileNotFoundError:
        raise KIND.error("NotFound", f"directory of {_rel(root, path)} does not exist") from None
    except IsADirectoryError:
        raise field_error("parameters.path", "is a directory") from None
    return {"path": _rel(root, path), "bytes_written": len(data), "size": size}


async def run_list(call: Invocation) -> dict[str, Any]:
    p: ListParams = call.params
    root, path = resolve(call, p.path)

    def walk() -> tuple[list[dict[str, Any]], bool]:
        entries: list[dict[str, Any]] = []
        iterator = path.rglob("*") if p.recursive else path.iterdir()
        for item in sorted(iterator):
            if not fnmatch.fnmatch(item.name, p.pattern):
                continue
            try:
                st = item.lstat()
            except OSError:
                continue
            entries.append(
                {
                    "path": _rel(root, item),
                    "name": item.name,
                    "type": "dir" if item.is_dir() else "file",
                    "size": st.st_size,
                    "modified": st.st_mtime,
                }
            )
            if len(entries) > p.max_entries:
                return entries[: p.max_entries], True
        return entries, False

    try:
        entries, truncated = await asyncio.to_thread(walk)
    except FileNotFoundError:
        raise KIND.error("NotFound", f"{_rel(root, path)} does not exist") from None
    except NotADirectoryError:
        raise field_error("parameters.path", "is not a directory") from None
    return {"path": _rel(root, path), "entries": entries, "truncated": truncated}


async def run_stat(call: Invocation) -> dict[str, Any]:
    root, path = resolve(call, call.params.path)
    try:
        st = await asyncio.to_thread(path.stat)
    except FileNotFoundError:
        return {"path": _rel(root, path), "exists": False}
    return {
        "path": _rel(root, path),
        "exists": True,
        "type": "dir" if path.is_dir() else "file",
        "size": st.st_size,
        "modified": st.st_mtime,
    }


async def run_delete(call: Invocation) -> dict[str, Any]:
    root, path = resolve(call, call.params.path)
    if path == root:
        raise field_error("parameters.path", "the root itself cannot be deleted")
    try:
        await asyncio.to_thread(path.unlink)
    except FileNotFoundError:
        raise KIND.error("NotFound", f"{_rel(root, path)} does not exist") from None
    except (IsADirectoryError, PermissionError):
        raise field_error("parameters.path", "is a directory (only files are deleted)") from None
    return {"path": _rel(root, path), "deleted": True}


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    from aionix.bus import CallContext

    call = Invocation(None, CallContext(tenant=conn.tenant), settings, conn, 5.0, 4096, conn.service)
    (root,) = roots(call)
    if not root.is_dir():
        return {"ok": False, "error": "Fs.NotFound", "detail": f"{root} is not a directory"}
    return {"ok": True, "detail": f"{root} is inside the allowed roots"}


_FILE = {"type": "object", "properties": {"path": {"type": "string"}}}

KIND = ConnectorKind(
    name="fs",
    title="Files under allowed roots",
    error_prefix="Fs",
    connection_model=FsConnection,
    default_operation=None,
    operations={
        "read": Operation(
            "read",
            "Read a file (text or base64)",
            ReadParams,
            {**_FILE, "required": ["path", "content", "truncated"]},
            run_read,
        ),
        "write": Operation("write", "Write or append to a file", WriteParams, _FILE, run_write),
        "list": Operation(
            "list", "List a directory", ListParams, {**_FILE, "required": ["entries", "truncated"]}, run_list
        ),
        "stat": Operation(
            "stat", "Does a path exist; its type, size and modification time", PathParams, _FILE, run_stat
        ),
        "delete": Operation("delete", "Delete a file", PathParams, _FILE, run_delete),
    },
    test=test_connection,
    examples=[{"operation": "read", "path": "reports/today.csv"}],
)
