"""The Studio in a real browser (Debian's chromium driven by playwright-core) against a real
server: sign-in, building, validating, saving and running a workflow, undo/redo, the console,
the editor's Copilot panel, Modules and Tasks (seeded by e2e_seed: two agent modules, an AI
policy directory the browser run fills, a stand-in model provider — no real model runs here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from e2e_seed import ai_env, seed_modules
from studio_node import CHROMIUM, ensure_node_modules, run_node


# the browser run takes about 1.5 minutes on an idle machine; under a shared machine's load it can
# pass the suite's 300 s default, so it gets the same 600 s as the node process it waits on
@pytest.mark.timeout(660)
def test_studio_end_to_end_in_chromium(make_server, tmp_path):
    assert Path(CHROMIUM).is_file() or shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing (scripts/system-deps.sh installs chromium)"
    )
    ensure_node_modules()
    files = tmp_path / "files"
    files.mkdir()
    shots = tmp_path / "shots"
    with ai_env(tmp_path) as (server_env, e2e_env):
        server = make_server(env={"AIONIX_CONNECTORS_FS_ROOTS": str(files), **server_env}).start()
        seed_modules(server, tmp_path)
        proc = run_node(
            ["e2e/run.mjs", server.url, server.admin_key, "--screenshots", str(shots)],
            timeout=600,
            env={"AIONIX_E2E_FS_ROOT": str(files), **e2e_env},
        )
    report = proc.stdout[-12000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, f"{report}\nfailure screenshots: {shots}\nserver log:\n{server.log()[-3000:]}"
    assert "0 failed" in proc.stdout, report
    assert (shots / "execution.png").is_file()
