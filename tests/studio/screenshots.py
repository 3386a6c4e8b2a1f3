"""Regenerate docs/screenshots/: start a real server, run the browser e2e with screenshots on,
keep the main screens (`make screenshots`)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_seed import ai_env, seed_modules
from serverproc import ServerProcess
from studio_node import ROOT, ensure_node_modules, run_node

KEEP = [
    "signin",
    "page-workflows",
    "editor",
    "editor-validation",
    "editor-code",
    "versions",
    "execution",
    "execution-state",
    "editor-nested",
    "editor-asl",
    "editor-test-state",
    "execution-timeline",
    "page-executions",
    "page-functions",
    "page-triggers",
    "page-connections",
    "page-secrets",
    "page-params",
    "editor-copilot",
    "page-tasks",
    "page-modules",
    "page-keys",
    "page-audit",
]


def main(target: Path) -> int:
    ensure_node_modules()
    with tempfile.TemporaryDirectory(prefix="aionix-shots-") as tmp, ai_env(Path(tmp)) as (server_env, e2e_env):
        files = Path(tmp) / "files"
        files.mkdir()
        env = {"AIONIX_CONNECTORS_FS_ROOTS": str(files), **server_env}
        server = ServerProcess(Path(tmp) / "server", env=env).start()
        try:
            seed_modules(server, Path(tmp))
            shots = Path(tmp) / "shots"
            proc = run_node(
                ["e2e/run.mjs", server.url, server.admin_key or "", "--screenshots", str(shots)],
                timeout=600,
                env={"AIONIX_E2E_FS_ROOT": str(files), **e2e_env},
            )
            print(proc.stdout[-4000:], proc.stderr[-2000:])
            if proc.returncode != 0:
                return proc.returncode
            target.mkdir(parents=True, exist_ok=True)
            for name in KEEP:
                shutil.copyfile(shots / f"{name}.png", target / f"{name}.png")
            print(f"wrote {len(KEEP)} screenshots to {target}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(ROOT / (sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
