"""Install from a real OCI registry on loopback (Debian's docker-registry, the CNCF distribution
server) through the ORAS client: `aio module push` then `aio module install oci://…`; the
cosign signature travels under its `sha256-<hex>.sig` tag and is verified by the server; an
unsigned push installs quarantined."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import modpkg as pkg
import pytest
from conftest import unique

from aionix.cli.main import run

sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "modules"))

import build as example_build

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen(
        [REGISTRY, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "registry exited"
            assert time.monotonic() < deadline, "the registry did not start"
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def cli(mod_server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", mod_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", mod_server.admin_key)

    def call(*args: str):
        code = run(["-o", "json", *args])
        out = capsys.readouterr()
        try:
            return code, json.loads(out.out), out.err
        except ValueError:
            return code, out.out, out.err

    return call


def test_push_and_install_from_registry(cli, mc, example_key, trusted, registry, tmp_path):
    tar = example_build.build("text_extract", tmp_path)
    ref = f"oci://{registry}/aionix/text_extract:1.0.0"
    code, out, err = cli("module", "push", str(tar), ref, "--insecure")
    assert code == 0, err
    assert out["signatures"] == 1
    digest = out["digest"]
    # the registry holds the manifest and the cosign signature tag
    tags = json.loads(
        __import__("urllib.request").request.urlopen(f"http://{registry}/v2/aionix/text_extract/tags/list").read()
    )
    assert set(tags["tags"]) == {"1.0.0", digest.replace(":", "-") + ".sig"}
    mc.delete("/api/v1/modules/text_extract")
    code, out, err = cli("module", "install", ref, "--insecure")
    assert code == 0, err
    assert out["state"] == "verified" and out["digest"] == digest and out["signer"] == example_key, out
    r = mc.post(
        "/api/v1/modules/text_extract/run", json={"content": "# Title\n\nSome *bold* text.", "format": "markdown"}
    )
    assert r.status_code == 200 and r.json()["result"]["text"] == "Title\nSome bold text.", r.text
    # an unsigned package from the registry is quarantined with the reason
    name = unique("unsigned")
    unsigned, _ = pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)))
    (tmp_path / "u.tar").write_bytes(unsigned)
    ref = f"oci://{registry}/aionix/{name}:1.0.0"
    assert cli("module", "push", str(tmp_path / "u.tar"), ref, "--insecure")[0] == 0
    code, out, err = cli("module", "install", ref, "--insecure")
    assert code == 0 and out["state"] == "quarantined" and any("not signed" in r for r in out["reasons"]), out
    # a Sigstore bundle (an OCI referrer, tag sha256-<hex>.sigstore) travels too
    from aionix.modules import oci

    name = unique("bundled")
    layout = oci.pack_dir(pkg.write_dir(tmp_path / "b", pkg.manifest(name)))
    oci.sign_bundle(layout, trusted)
    (tmp_path / "b.tar").write_bytes(oci.layout_tar(layout))
    ref = f"oci://{registry}/aionix/{name}:1.0.0"
    assert cli("module", "push", str(tmp_path / "b.tar"), ref, "--insecure")[0] == 0
    code, out, err = cli("module", "install", ref, "--insecure")
    assert code == 0 and out["state"] == "verified" and out["signer"] == "test-ecdsa", out
    # a reference that is not there is a clear error
    code, out, err = cli("module", "install", f"oci://{registry}/aionix/none:9.9.9", "--insecure")
    assert code != 0 and "no such manifest" in err
