"""Running the Studio's Node tooling (npm ci, vitest, the Playwright e2e) from pytest."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUDIO = ROOT / "studio"
DIST = ROOT / "studio_dist"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
HASH_INPUTS = ["src", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json"]


def source_hash() -> str:
    """The same fingerprint as studio/scripts/source-hash.mjs (written by the build)."""
    files: list[str] = []
    for name in HASH_INPUTS:
        path = STUDIO / name
        if path.is_dir():
            files.extend(p.relative_to(STUDIO).as_posix() for p in path.rglob("*") if p.is_file())
        else:
            files.append(name)
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0")
        digest.update((STUDIO / rel).read_bytes().decode("utf-8").replace("\r\n", "\n").encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not installed: the Studio's tests need Node 20+ (see scripts/system-deps.sh)")
    return found


def ensure_node_modules() -> None:
    """`npm ci` once when node_modules is missing or older than the lock file (make test does it first)."""
    marker = STUDIO / "node_modules" / ".package-lock.json"
    lock = STUDIO / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=STUDIO, check=True, timeout=600)


def run_node(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([node(), *args], cwd=STUDIO, capture_output=True, text=True, timeout=timeout, env=full_env)
