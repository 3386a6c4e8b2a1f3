"""The single executable (PyInstaller onefile): where its bundled files are, what it was built
from, and how it re-invokes itself as a function worker.

The binary is the server, the CLI and the Python function interpreter at once. A worker is
`[sys.executable, "--worker", SPEC]`; it gets the `_PYI_*` variables of the server's
environment, so the bootloader reuses the bundle the server already unpacked (one process, no
second extraction) and the worker's parent is the server. Only the standard library is
imported here: `aionix --worker` and `aionix --version` must not pay for the server's imports.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BUILD_INFO = "aionix_build_info.json"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path | None:
    """The directory the bootloader unpacked the bundle into (None when run from source)."""
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if meipass else None


class _SkipModules:
    """A meta path finder that makes the named modules unimportable."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name in self.names:
            raise ImportError(f"{name} is not used by the aionix server")
        return None


def skip_unused_imports() -> None:
    """For the server process only: `import httpx` also imports its command-line client
    (`httpx._main`: click, rich, pygments; ~0.1–0.3 s) unless that import fails, which httpx
    handles; `import uvicorn` imports its `--reload` watcher (watchfiles, when installed) unless
    that fails, which uvicorn handles too. The CLI (`aio`), which uses rich, does not call this."""
    if not any(isinstance(finder, _SkipModules) for finder in sys.meta_path):
        skipped = frozenset({"httpx._main", "uvicorn.supervisors.watchfilesreload"})
        sys.meta_path.insert(0, _SkipModules(skipped))


def worker_env() -> dict[str, str]:
    """What a worker's (otherwise scrubbed) environment needs from ours: in the binary, the
    bootloader's `_PYI_*` variables, which make it reuse the unpacked bundle."""
    if not is_frozen():
        return {}
    return {k: v for k, v in os.environ.items() if k.startswith("_PYI_")}


def share_bundle() -> None:
    """Let function workers, which drop to an unprivileged uid, read the unpacked bundle (our own
    code and the standard library: nothing secret; the bootloader creates it with mode 0700)."""
    bundle = bundle_dir()
    if bundle is None or os.geteuid() != 0:
        return
    for dirpath, _dirnames, filenames in os.walk(bundle):
        try:
            os.chmod(dirpath, 0o755)
            for name in filenames:
                path = os.path.join(dirpath, name)
                mode = os.lstat(path).st_mode
                os.chmod(path, 0o755 if mode & 0o100 else 0o644, follow_symlinks=False)
        except (OSError, NotImplementedError):
            continue


def keep_archive_open() -> None:
    """Before a worker drops its privileges: read the bundle's module archive through a file
    descriptor, because the executable may sit in a directory the worker's uid cannot enter."""
    if not is_frozen():
        return
    try:
        import pyimod02_importers  # the bootloader's importer module

        archive = pyimod02_importers.pyz_archive
        fd = os.open(archive._filename, os.O_RDONLY)
    except (ImportError, AttributeError, OSError):
        return
    archive._filename = f"/proc/self/fd/{fd}"


def bundle_moved(new_path: str) -> None:
    """A confining worker now reaches the unpacked bundle through `new_path` (a
    `/proc/self/fd/N` kept open before /tmp was hidden): tell the bundle's importer, which only
    serves modules under its own directory."""
    try:
        import pyimod02_importers
    except ImportError:
        return
    pyimod02_importers._TOP_LEVEL_DIRECTORY_PATHS.append(new_path)
    sys._MEIPASS = new_path
    sys.path_importer_cache.clear()


def default_config_text() -> str | None:
    """The documented default `config.toml`: bundled in the binary, the checkout's from source."""
    bundle = bundle_dir()
    path = (bundle if bundle is not None else Path(__file__).resolve().parent.parent) / "config.toml"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def build_info() -> dict[str, object]:
    """Version, commit and build time: embedded in the binary at build time; from git when run
    from a checkout."""
    from aionix import __version__

    info: dict[str, object] = {"version": __version__, "frozen": is_frozen()}
    bundle = bundle_dir()
    if bundle is not None:
        try:
            info.update(json.loads((bundle / BUILD_INFO).read_text()))
        except (OSError, ValueError):
            info["commit"] = "unknown"
        return info
    info["commit"] = _git_commit(Path(__file__).resolve().parent.parent) or "unknown"
    return info


def _git_commit(root: Path) -> str | None:
    """The checkout's HEAD, read from .git without running git."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        ref_file = git / ref
        if ref_file.is_file():
            return ref_file.read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        return None
    return None


def _deno_path() -> str | None:
    import shutil

    configured = os.environ.get("AIONIX_FUNCTIONS_DENO_PATH", "")
    if configured:
        return configured if os.path.isfile(configured) else None
    return shutil.which("deno")


def _wasm_library() -> str | None:
    """wasmtime's native library, located without loading it (loading costs ~0.1 s)."""
    import importlib.util
    import platform

    try:
        spec = importlib.util.find_spec("wasmtime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    machine = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(platform.machine(), platform.machine())
    for location in spec.submodule_search_locations:
        lib = Path(location) / f"linux-{machine}" / "_libwasmtime.so"
        if lib.is_file():
            return str(lib)
    bundle = bundle_dir()
    if bundle is not None:
        lib = bundle / "wasmtime" / f"linux-{machine}" / "_libwasmtime.so"
        if lib.is_file():
            return str(lib)
    return None


def _cgroups() -> str:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").is_file():
        controllers = (root / "cgroup.controllers").read_text().split()
        return "v2 (" + " ".join(c for c in controllers if c in ("memory", "pids", "cpu")) + ")"
    found = [c for c in ("memory", "pids", "cpu") if (root / c / "cgroup.procs").is_file()]
    return "v1 (" + " ".join(found) + ")" if found else "none"


def capabilities() -> dict[str, str]:
    """The function runtimes and confinement this host offers, as far as can be told without
    starting anything (the server's `/healthz` reports what it actually set up)."""
    root = os.geteuid() == 0
    python = "yes (the binary re-invoked as `--worker`)" if is_frozen() else f"yes ({sys.executable})"
    deno = _deno_path()
    wasm = _wasm_library()
    cgroups = _cgroups()
    return {
        "python functions": python,
        "deno": f"yes ({deno})" if deno else "no (not on PATH; set [functions] deno_path)",
        "wasm": "yes (wasmtime, in-process)" if wasm else "no (wasmtime missing)",
        "cgroups": (cgroups if root else f"{cgroups}, unusable: not root") if cgroups != "none" else "none",
        "uid drop": "yes" if root else "no (not root)",
        "network namespace": "yes" if root else "no (not root)",
        "rlimits": "yes",
    }


def version_text() -> str:
    info = build_info()
    commit = str(info.get("commit", "unknown")) + ("-dirty" if info.get("dirty") else "")
    kind = "single executable" if info.get("frozen") else "from source"
    lines = [f"aionix {info['version']} (commit {commit}, {kind}, Python {sys.version.split()[0]})"]
    lines += [f"  {name}: {value}" for name, value in capabilities().items()]
    return "\n".join(lines)


def netns_probe() -> int:
    """Exit status 0 when this process can enter a new network namespace (the sandbox's probe,
    for the binary, which has no `-c`)."""
    import ctypes

    return 0 if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0 else 1
