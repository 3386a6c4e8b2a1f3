"""`aio module …` end to end with the example modules (built from source by examples/modules/build.py,
as `make modules` does): trust the test key, install the tarballs, run both, the SBOM, verify,
quarantine/approve/remove; pack and sign a folder; keygen; validate a manifest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aionix.cli.main import run

EXAMPLES = Path(__file__).parents[2] / "examples" / "modules"
sys.path.insert(0, str(EXAMPLES))

import build as example_build  # noqa: E402


@pytest.fixture
def cli(mod_server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", mod_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", mod_server.admin_key)

    def call(*args: str) -> tuple[int, dict | list | str, str]:
        code = run(["-o", "json", *args])
        out = capsys.readouterr()
        try:
            return code, json.loads(out.out), out.err
        except ValueError:
            return code, out.out, out.err

    return call


def test_examples_through_the_cli(cli, example_key, tmp_path):
    code, out, err = cli("module", "trust", "list")
    assert code == 0, err
    trusted = {k["name"]: k for k in out["items"]}
    assert trusted[example_key]["algorithm"] == "ecdsa-p256" and trusted[example_key]["fingerprint"].startswith(
        "sha256:"
    )
    cli("module", "remove", "summarize_text")
    summarize = example_build.build("summarize_text", tmp_path)
    extract = example_build.build("text_extract", tmp_path)
    for tar in (summarize, extract):
        code, out, err = cli("module", "install", str(tar))
        assert code == 0, err
        assert out["state"] == "verified" and out["signer"] == "examples-test", out
    code, out, err = cli("module", "list")
    assert code == 0 and {"summarize_text", "text_extract"} <= {i["name"] for i in out["items"]}
    text = (
        "Aionix runs workflows and functions on one machine. The weather was mild. "
        "Workflows call functions, and functions run confined on the machine. "
        "Lunch was a sandwich."
    )
    code, out, err = cli("module", "run", "summarize_text", json.dumps({"text": text, "max_sentences": 2}))
    assert code == 0, err
    result = out["result"]
    assert result["count"] == 4 and result["sentences"] == [0, 2], result
    assert result["summary"].startswith("Aionix runs workflows") and "sandwich" not in result["summary"]
    code, out, err = cli(
        "module",
        "run",
        "text_extract",
        json.dumps({"content": "<h1>Title</h1><script>evil()</script><p>Body text.</p>"}),
    )
    assert code == 0, err
    assert out["result"]["text"] == "Title\nBody text." and out["result"]["words"] == 3
    code, out, err = cli("module", "run", "summarize_text", json.dumps({"txt": "wrong field"}))
    assert (code != 0 and "Module.InvalidInput" in err) or "text" in err
    code, out, err = cli("module", "sbom", "text_extract")
    assert code == 0 and out["format"] == "spdx" and out["sbom"]["packages"][0]["name"] == "text_extract"
    code, out, err = cli("module", "verify", "summarize_text")
    assert code == 0 and out["verified_now"] is True
    code, out, err = cli("module", "quarantine", "text_extract", "--reason", "review")
    assert code == 0 and out["state"] == "quarantined"
    code, out, err = cli("module", "run", "text_extract", '{"content": "x"}')
    assert code != 0 and "quarantined" in err
    code, out, err = cli("module", "approve", "text_extract")
    assert code == 0 and out["state"] == "approved"
    code, out, err = cli("module", "get", "text_extract")
    assert code == 0 and out["invocations"]["total"] >= 1 and out["permissions"]["network"] == "deny"
    code, out, err = cli("module", "remove", "text_extract")
    assert code == 0 and out["versions"] == ["1.0.0"]


def test_pack_sign_keygen_validate(cli, example_key, tmp_path):
    code, out, err = cli("module", "keygen", "team", "--algorithm", "ed25519", "--dir", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "team.key").stat().st_mode & 0o777 == 0o600
    code, out, err = cli("module", "trust", "add", str(tmp_path / "team.pub"))
    assert code == 0 and out["name"] == "team"
    src = example_build.stage(EXAMPLES / "summarize_text", tmp_path)
    code, out, err = cli("module", "pack", str(src), "--out", str(tmp_path / "unsigned.tar"))
    assert code == 0 and out["signed"] is False
    code, out, err = cli("module", "sign", str(tmp_path / "unsigned.tar"), "--key", str(tmp_path / "team.key"))
    assert code == 0 and out["signatures"] == 1
    code, out, err = cli("module", "install", str(tmp_path / "unsigned.tar"))
    assert code == 0 and out["state"] == "verified" and out["signer"] in ("team", "examples-test"), out
    code, out, err = cli("module", "validate", str(EXAMPLES / "text_extract" / "manifest.yaml"))
    assert code == 0 and out["valid"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "text_extract" / "manifest.yaml").read_text().replace("network: deny", "network: maybe"))
    code, out, err = cli("module", "validate", str(bad))
    assert code != 0 and "permissions.network" in err
    code, out, err = cli("module", "schema")
    assert code == 0 and out["properties"]["kind"]["const"] == "AgentPackage"
    code, out, err = cli("module", "trust", "list")
    assert code == 0 and "team" in {k["name"] for k in out["items"]}
    code, out, err = cli("module", "trust", "remove", "team")
    assert code == 0
    code, out, err = cli("module", "install", str(src))
    assert code != 0 and "aio module pack" in err
