"""`aio param` against the real server."""

from __future__ import annotations

import json

import pytest
from paramkit import unique

from aionix.cli.main import run


@pytest.fixture
def cli(server, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "none"))

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_param_set_get_versions_rollback_list_delete(cli):
    base = "/" + unique("cli")
    assert cli("param", "set", f"{base}/db/port", "5432", "--type", "number")[0] == 0
    assert cli("param", "set", f"{base}/db/port", "6543", "--type", "number", "--label", "next")[0] == 0
    assert cli("param", "set", f"{base}/db/host", "h1")[0] == 0
    assert cli("param", "set", f"{base}/flags", '{"a": true}', "--type", "json")[0] == 0
    assert (
        cli(
            "param",
            "set",
            f"{base}/url",
            "{% $param('" + base + "/db/host') & ':' & $string($param('" + base + "/db/port')) %}",
        )[0]
        == 0
    )
    code, out, _ = cli("param", "get", f"{base}/db/port", "--raw")
    assert code == 0 and out.strip() == "6543"
    code, out, _ = cli("param", "get", f"{base}/db/port", "--version", "1", "--raw")
    assert out.strip() == "5432"
    code, out, _ = cli("param", "get", f"{base}/db/port", "--label", "next", "-o", "json")
    assert json.loads(out)["version"] == 2
    code, out, _ = cli("param", "get", f"{base}/url", "--evaluate", "--raw")
    assert out.strip() == "h1:6543"
    code, out, _ = cli("param", "versions", f"{base}/db/port", "-o", "json")
    assert [v["version"] for v in json.loads(out)["items"]] == [2, 1]
    code, out, _ = cli("param", "rollback", f"{base}/db/port", "1", "-o", "json")
    assert code == 0 and json.loads(out)["version"] == 3 and json.loads(out)["value"] == 5432
    code, out, _ = cli("param", "list", base, "-q")
    assert out.split() == [f"{base}/db/host", f"{base}/db/port", f"{base}/flags", f"{base}/url"]
    code, out, _ = cli("param", "list", base, "--recursive")
    assert json.loads(out)["db"] == {"host": "h1", "port": 5432}
    code, out, _ = cli("param", "list", base, "--recursive", "--evaluate", "-o", "json")
    assert json.loads(out)["tree"]["url"] == "h1:5432"
    assert cli("param", "delete", f"{base}/flags")[0] == 0
    code, _, err = cli("param", "get", f"{base}/flags")
    assert code == 4 and "not found" in err


def test_param_cli_usage_errors(cli):
    code, _, err = cli("param", "set", "/" + unique("e") + "/n", "abc", "--type", "number")
    assert code == 2 and "not a number" in err
    code, _, err = cli("param", "set", "/" + unique("e") + "/b", "yes", "--type", "boolean")
    assert code == 2
    code, _, err = cli("param", "set", "/" + unique("e") + "/p", "qa", "--pattern", "dev|prod")
    assert code == 2 and "pattern" in err
