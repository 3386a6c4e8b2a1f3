"""`aio sec` against the real server."""

from __future__ import annotations

import json

import pytest
from vaultkit import role_client, unique

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


def test_sec_lifecycle(cli, tmp_path):
    name = unique("cli")
    value_file = tmp_path / "value.txt"
    value_file.write_text("from-a-file-123\n")
    code, out, _ = cli(
        "sec", "create", name, "--type", "api_key", "--value", f"@{value_file}", "--label", "env=dev", "-o", "json"
    )
    assert code == 0 and json.loads(out)["labels"] == {"env": "dev"} and "from-a-file-123" not in out
    code, out, _ = cli("sec", "reveal", name, "--raw")
    assert code == 0 and out.strip() == "from-a-file-123"
    code, out, _ = cli("sec", "put", name, "--value", "second-value")
    assert code == 0 and "second-value" not in out
    code, out, _ = cli("sec", "rotate", name, "--value", "third-value", "--no-promote", "-o", "json")
    assert code == 0 and json.loads(out)["stages"]["pending"] == 3
    code, out, _ = cli("sec", "rotate", name, "-o", "json")
    assert json.loads(out)["stages"] == {"current": 3, "previous": 2, "pending": None}
    code, out, _ = cli("sec", "versions", name, "-o", "json")
    assert [v["version"] for v in json.loads(out)["items"]] == [3, 2, 1]
    code, out, _ = cli("sec", "reveal", name, "--stage", "previous", "-o", "json")
    assert json.loads(out)["value"] == "second-value"
    code, out, _ = cli("sec", "list", "-q")
    assert code == 0 and name in out.split()
    code, out, _ = cli("sec", "get", name)
    assert code == 0 and "third-value" not in out
    code, out, _ = cli("sec", "delete", name)
    assert code == 0
    code, _, err = cli("sec", "reveal", name)
    assert code == 4 and "deleted" in err
    assert cli("sec", "restore", name)[0] == 0
    assert cli("sec", "delete", name, "--force")[0] == 0
    code, _, err = cli("sec", "get", name)
    assert code == 4


def test_sec_json_value_and_errors(cli):
    name = unique("clijson")
    code, _, _ = cli("sec", "create", name, "--type", "json", "--value", '{"user": "u", "pw": "p-1234"}')
    assert code == 0
    code, out, _ = cli("sec", "reveal", name, "--raw")
    assert json.loads(out) == {"user": "u", "pw": "p-1234"}
    code, _, err = cli("sec", "create", unique("x"), "--type", "json", "--value", "{not json")
    assert code == 2 and "--value" in err
    code, _, err = cli("sec", "create", unique("x"), "--type", "certificate", "--value", "plain")
    assert code == 2 and "value" in err


def test_sec_reveal_refused_for_operator(cli, server, admin, monkeypatch):
    operator = role_client(server, admin, "default", "operator")
    name = unique("op")
    cli("sec", "create", name, "--value", "operator-cannot-see")
    monkeypatch.setenv("AIONIX_API_KEY", operator.headers["Authorization"].split()[1])
    code, out, err = cli("sec", "reveal", name)
    assert code == 3 and "operator-cannot-see" not in out + err


def test_sec_master_key_commands(cli):
    code, out, _ = cli("sec", "master-key", "-o", "json")
    assert code == 0 and json.loads(out)["source"] == "file"


def test_sec_rotate_master_key_on_a_private_server(make_server, monkeypatch, tmp_path, capsys):
    proc = make_server(env={"AIONIX_MASTER_PASSPHRASE": "first passphrase"}).start()
    monkeypatch.setenv("AIONIX_URL", proc.url)
    monkeypatch.setenv("AIONIX_API_KEY", proc.admin_key)
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert run(["sec", "create", "kept", "--value", "kept-value-9"]) == 0
    assert run(["sec", "rotate-master-key"]) == 2
    assert "new_passphrase" in capsys.readouterr().err
    phrase = tmp_path / "phrase"
    phrase.write_text("second passphrase\n")
    capsys.readouterr()
    assert run(["sec", "rotate-master-key", "--new-passphrase-file", str(phrase), "-o", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (
        status["source"] == "passphrase"
        and status["rewrapped"] == 1
        and "AIONIX_MASTER_PASSPHRASE" in status["next_step"]
    )
    proc.stop()
    proc.extra_env = {"AIONIX_MASTER_PASSPHRASE": "second passphrase"}
    proc.start()
    monkeypatch.setenv("AIONIX_URL", proc.url)
    capsys.readouterr()
    assert run(["sec", "reveal", "kept", "--raw"]) == 0
    assert capsys.readouterr().out.strip() == "kept-value-9"


def test_sec_readers(cli):
    name = unique("cli-readers")
    reader = "trn:stepflow:default:template/deploy"
    code, out, _ = cli("sec", "create", name, "--value", "v-123456", "--reader", reader, "-o", "json")
    assert code == 0 and json.loads(out)["readers"] == [reader]
    code, out, _ = cli(
        "sec", "policy", name, "--reader", reader, "--reader", "trn:aionixfn:default:function/db-*", "-o", "json"
    )
    assert code == 0 and json.loads(out)["readers"] == [reader, "trn:aionixfn:default:function/db-*"]
    code, out, _ = cli("sec", "policy", name, "--none", "-o", "json")
    assert code == 0 and json.loads(out)["readers"] == []
    code, out, _ = cli("sec", "put", name, "--reader", "trn:*:default:*", "-o", "json")
    assert code == 0 and json.loads(out)["readers"] == ["trn:*:default:*"]
    code, _, err = cli("sec", "policy", name)
    assert code == 2 and "--reader" in err
    code, _, err = cli("sec", "policy", name, "--reader", "nope")
    assert code != 0 and "readers[0]" in err
