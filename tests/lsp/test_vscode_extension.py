"""The VS Code extension (vscode/), outside the editor: no VS Code binary can be fetched from the
package registries here, so its logic (settings and profile resolution, how `aio lsp` is started,
the tree and the execution panel, template files) has Node unit tests, its API client is tested
against the real server, its new-template text is checked by the real validator, and `make vsix`'s
packaging (@vscode/vsce) is checked to produce an installable .vsix."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from aionix.stepflow.validate import validate

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "vscode"


def _node(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is not installed: the extension's tests need Node 20+ (scripts/system-deps.sh)"
    return subprocess.run(
        [node, *args], cwd=VSCODE, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def compiled() -> Path:
    """`npm ci` when node_modules is missing or older than the lock (make test does it first), then tsc."""
    marker = VSCODE / "node_modules" / ".package-lock.json"
    if not marker.is_file() or marker.stat().st_mtime < (VSCODE / "package-lock.json").stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VSCODE, check=True, timeout=600)
    shutil.rmtree(VSCODE / "out", ignore_errors=True)
    proc = _node(["node_modules/typescript/bin/tsc", "-p", "."])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return VSCODE / "out"


def test_extension_unit_tests_and_api_client_against_the_real_server(compiled, server):
    env = {"AIONIX_TEST_URL": server.url, "AIONIX_TEST_KEY": server.admin_key, "NO_COLOR": "1"}
    proc = _node(["--test", "--test-reporter=tap", "out/test/unit/", "out/test/server/"], env=env)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 13" in proc.stdout, proc.stdout[-2000:]


def test_new_template_is_a_valid_workflow(compiled):
    proc = _node(["-e", "process.stdout.write(require('./out/src/templates').newTemplateText('hello'))"])
    assert proc.returncode == 0, proc.stderr
    report = validate(yaml.safe_load(proc.stdout))
    assert report.valid, report.errors


def test_make_vsix_packages_the_extension(compiled, tmp_path):
    out = tmp_path / "aionix.vsix"
    proc = _node(
        ["node_modules/@vscode/vsce/vsce", "package", "--allow-missing-repository", "-o", str(out)], timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = set(zipfile.ZipFile(out).namelist())
    assert {"extension/package.json", "extension/out/src/extension.js", "extension.vsixmanifest"} <= names
    assert "extension/node_modules/vscode-languageclient/package.json" in names  # the runtime dependency
    assert not any(n.startswith(("extension/out/test/", "extension/src/")) for n in names)
    make = (ROOT / "Makefile").read_text()
    assert "vsix: vscode/node_modules" in make and "npm run package" in make
