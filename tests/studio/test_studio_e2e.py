"""The Studio in a real browser (Debian's chromium driven by playwright-core) against a real
server: sign-in, building, validating, saving and running a workflow, undo/redo, the console."""

from __future__ import annotations

import shutil
from pathlib import Path

from studio_node import CHROMIUM, ensure_node_modules, run_node


def test_studio_end_to_end_in_chromium(make_server, tmp_path):
    assert Path(CHROMIUM).is_file() or shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing (scripts/system-deps.sh installs chromium)"
    )
    ensure_node_modules()
    files = tmp_path / "files"
    files.mkdir()
    server = make_server(env={"AIONIX_CONNECTORS_FS_ROOTS": str(files)}).start()
    shots = tmp_path / "shots"
    proc = run_node(
        ["e2e/run.mjs", server.url, server.admin_key, "--screenshots", str(shots)],
        timeout=600,
        env={"AIONIX_E2E_FS_ROOT": str(files)},
    )
    report = proc.stdout[-12000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, f"{report}\nfailure screenshots: {shots}\nserver log:\n{server.log()[-3000:]}"
    assert "0 failed" in proc.stdout, report
    assert (shots / "execution.png").is_file()
