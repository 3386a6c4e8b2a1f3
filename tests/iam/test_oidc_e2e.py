"""The Studio's sign-in in a real browser (Debian's chromium driven by playwright-core,
studio/e2e/oidc.mjs) against a real server configured with `[auth.oidc]` and the real OIDC
provider — the certified `oidc-provider` package from npm on loopback (tests/iam/oidc-provider),
no stand-in: its own login page, authorization code + PKCE, ID token, group claim. Also a local
user's password sign-in and sign-out.

The server serves the committed studio_dist when it is built from the current sources
(studio_dist/.source-hash); otherwise this test builds the Studio into a temporary directory
(`vite build --outDir`) and the server serves that one (a `sitecustomize` on the server's
PYTHONPATH points `aionix.api.app.STUDIO_DIR` there): studio_dist is never rewritten here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parents[1] / "studio"))
from serverproc import ServerProcess
from studio_node import CHROMIUM, DIST, STUDIO, ensure_node_modules, run_node, source_hash
from test_oidc import Provider, oidc_config
from test_tokens import wait_ready

PASSWORD = "a long local password"


def studio_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the server so that it serves a Studio built from the current sources."""
    stamp = DIST / ".source-hash"
    if stamp.is_file() and stamp.read_text().strip() == source_hash():
        return {}
    out = tmp_path / "studio_dist"
    subprocess.run(
        ["npx", "vite", "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
        cwd=STUDIO,
        check=True,
        timeout=600,
    )
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        f"from pathlib import Path\nimport aionix.api.app as _app\n_app.STUDIO_DIR = Path({str(out)!r})\n"
    )
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(shim) + (os.pathsep + path if path else "")}


@pytest.mark.timeout(900)
def test_oidc_and_local_sign_in_in_the_browser(tmp_path):
    assert Path(CHROMIUM).is_file() or shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing (scripts/system-deps.sh installs chromium)"
    )
    ensure_node_modules()
    idp_root = tmp_path / "idp"
    idp_root.mkdir()
    idp = Provider(idp_root)
    server = None
    try:
        root = tmp_path / "aionix"
        root.mkdir()
        (root / "aionix.toml").write_text(oidc_config(idp.issuer))
        env = {"AIONIX_CONFIG": str(root / "aionix.toml"), **studio_env(tmp_path)}
        server = ServerProcess(root, env=env).start()
        wait_ready(server)
        with server.client() as c:
            r = c.post("/api/v1/users", json={"name": "local-op", "role": "operator", "password": PASSWORD})
            assert r.status_code == 201, r.text
        proc = run_node(["e2e/oidc.mjs", server.url, "alice", "local-op", PASSWORD], timeout=600)
        print(proc.stdout)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the OIDC user exists now, with its mapped groups
        with server.client() as c:
            user = c.get("/api/v1/users/alice").json()
        assert user["source"] == "oidc" and user["groups"] == ["admins", "engineering"]
    finally:
        if server is not None:
            server.stop()
        idp.stop()
