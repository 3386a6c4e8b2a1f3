"""Function code packages: from the API's forms (source, zip, tar, wasm) to a canonical zip
(sorted names, fixed timestamps — so equal code has an equal sha256), and back to a directory
the workers can read."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from aionix.errors import ValidationFailed
from aionix.functions.models import Code

DEFAULT_FILENAME = {"python": "main.py", "deno": "main.ts", "wasm": "main.wasm"}
MAX_FILES = 2000


def _bad(reason: str, field: str = "code") -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", details=[{"field": field, "message": reason}])


def _clean_path(name: str, field: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or not path.parts:
        raise _bad(f"unsafe file name {name!r} in the package", field)
    return str(path)


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("not valid base64", field) from None


def unpack(code: Code, runtime: str, max_bytes: int) -> dict[str, bytes]:
    """The files of a code package, validated for size and safe names."""
    files: dict[str, bytes] = {}
    if code.source is not None:
        name = code.filename or ("main.wat" if runtime == "wasm" else DEFAULT_FILENAME[runtime])
        files[_clean_path(name, "code.filename")] = code.source.encode("utf-8")
    elif code.wasm_base64 is not None:
        files[code.filename or "main.wasm"] = _b64(code.wasm_base64, "code.wasm_base64")
    elif code.zip_base64 is not None:
        raw = _b64(code.zip_base64, "code.zip_base64")
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                total = 0
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    total += info.file_size
                    if total > max_bytes or len(files) >= MAX_FILES:
                        raise _bad(
                            f"the package is larger than {max_bytes} bytes or {MAX_FILES} files", "code.zip_base64"
                        )
                    files[_clean_path(info.filename, "code.zip_base64")] = archive.read(info)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise _bad(f"not a zip archive: {exc}", "code.zip_base64") from None
    else:
        assert code.tar_base64 is not None
        raw = _b64(code.tar_base64, "code.tar_base64")
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
                total = 0
                for member in archive.getmembers():
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise _bad(f"{member.name!r}: links and devices are not allowed", "code.tar_base64")
                    total += member.size
                    if total > max_bytes or len(files) >= MAX_FILES:
                        raise _bad(
                            f"the package is larger than {max_bytes} bytes or {MAX_FILES} files", "code.tar_base64"
                        )
                    handle = archive.extractfile(member)
                    assert handle is not None
                    files[_clean_path(member.name, "code.tar_base64")] = handle.read()
        except tarfile.TarError as exc:
            raise _bad(f"not a tar archive: {exc}", "code.tar_base64") from None
    if not files:
        raise _bad("the package has no files")
    if sum(len(v) for v in files.values()) > max_bytes:
        raise _bad(f"the package is larger than {max_bytes} bytes")
    return files


def canonical_zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return out.getvalue()


def read_zip(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def materialize(root: Path, code_sha256: str, blob: bytes, extra: dict[str, bytes] | None = None) -> Path:
    """Extract a package once into `root/<sha>` (world-readable, owned by the server, so the
    sandbox uids can read but never change it)."""
    target = root / code_sha256
    if (target / ".complete").exists():
        return target
    staging = root / f".{code_sha256}.{os.getpid()}.{id(blob)}"
    files = read_zip(blob)
    files.update(extra or {})
    for name, data in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(data)
        path.chmod(0o644)
    staging.mkdir(exist_ok=True, mode=0o755)
    for dirpath, dirnames, _ in os.walk(staging):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    staging.chmod(0o755)
    (staging / ".complete").write_bytes(b"")
    try:
        staging.rename(target)
    except OSError:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target
