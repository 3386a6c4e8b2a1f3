"""`aio` against the real server: global options, output formats, exit codes, profiles,
completion and the generated reference."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aionix.cli.main import hoist_global_options, run
from aionix.credentials import save_profile

ROOT = Path(__file__).parents[2]


@pytest.fixture
def cli(server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "creds"))
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    monkeypatch.delenv("AIONIX_PROFILE", raising=False)

    def invoke(*args):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_status_shows_health_and_identity(cli):
    code, out, _ = cli("status", "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "ok" and data["role"] == "admin" and data["tenant"] == "default"
    # the cluster's live nodes: on its own database this server is the one node, and it is the one answering
    assert [(n["id"], n["self"], n["live"]) for n in data["nodes"]] == [(data["node"]["id"], True, True)]


def test_output_formats_are_the_api_objects(cli):
    code, out, _ = cli("keys", "create", "fmt-test", "--role", "viewer", "-o", "json")
    created = json.loads(out)
    assert code == 0 and created["key"].startswith("aio_")
    code, out, _ = cli("keys", "list", "-o", "yaml")
    assert code == 0 and any(k["id"] == created["id"] for k in yaml.safe_load(out)["items"])
    code, out, _ = cli("keys", "list")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "NAME", "ROLE"]
    # the default table is shortened towards 80 columns, but never by cutting an id (issue 25)
    assert created["id"] in out.split()
    code, out, _ = cli("keys", "list", "--quiet")
    assert created["id"] in out.split()


def test_global_options_may_come_anywhere():
    assert hoist_global_options(["keys", "list", "-o", "json", "--quiet"]) == ["-o", "json", "--quiet", "keys", "list"]
    assert hoist_global_options(["wf", "run", "x", "--url=http://h", "--", "-o"]) == [
        "--url=http://h",
        "wf",
        "run",
        "x",
        "--",
        "-o",
    ]


def test_exit_codes(cli, monkeypatch):
    assert cli("keys", "revoke", "key_doesnotexist")[0] == 4
    code, _, err = cli("keys", "create", "x", "--role", "emperor")
    assert code == 2 and err.startswith("aio: error 422")
    assert cli("no-such-command")[0] == 2
    assert cli("keys", "list", "-o", "xml")[0] == 2
    monkeypatch.setenv("AIONIX_API_KEY", "aio_wrong")
    code, _, err = cli("status")
    assert code == 3 and "invalid or revoked API key" in err and "Traceback" not in err
    monkeypatch.setenv("AIONIX_URL", "http://127.0.0.1:9")
    code, _, err = cli("status")
    assert code == 5 and "http://127.0.0.1:9" in err and "start it" in err


def test_profiles_and_env_override(cli, server, monkeypatch, tmp_path):
    creds = tmp_path / "profiles"
    save_profile(creds, "default", url="http://127.0.0.1:9", api_key="aio_wrong")
    save_profile(creds, "lab", url=server.url, api_key=server.admin_key)
    assert (creds.stat().st_mode & 0o777) == 0o600
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AIONIX_URL")
    monkeypatch.delenv("AIONIX_API_KEY")
    assert cli("status")[0] == 5
    assert cli("--profile", "lab", "status")[0] == 0
    assert cli("--profile", "nope", "status")[0] == 2
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    assert cli("status")[0] == 0


def test_no_colour_without_a_tty(cli):
    _, out, _ = cli("keys", "list")
    assert "\033[" not in out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(cli, shell):
    code, out, _ = cli("completion", shell)
    assert code == 0 and "_AIO_COMPLETE" in out


def test_completion_completes_commands():
    env = {"COMP_WORDS": "aio ke", "COMP_CWORD": "1", "_AIO_COMPLETE": "complete_bash", "PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "aionix.cli.main"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "keys" in proc.stdout.split()


def test_docs_cli_md_is_fresh(cli):
    code, out, _ = cli("docs", "--format", "markdown")
    assert code == 0
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert out == committed, "docs/cli.md is stale: run `.venv/bin/aio docs > docs/cli.md`"


def test_backup_and_offline_restore(cli, make_server, tmp_path, monkeypatch):
    srv = make_server().start()
    monkeypatch.setenv("AIONIX_URL", srv.url)
    monkeypatch.setenv("AIONIX_API_KEY", srv.admin_key)
    code, out, _ = cli("keys", "create", "before-backup", "-o", "json")
    kept = json.loads(out)["id"]
    backup = tmp_path / "b.db"
    assert cli("admin", "backup", str(backup))[0] == 0
    cli("keys", "create", "after-backup")
    code, _, err = cli("admin", "restore", str(backup), "--data-dir", str(srv.data_dir))
    assert code == 1 and "stop it first" in err
    srv.stop()
    assert cli("admin", "restore", str(backup), "--data-dir", str(srv.data_dir))[0] == 0
    srv.start()
    code, out, _ = cli("keys", "list", "-o", "json")
    names = [k["name"] for k in json.loads(out)["items"]]
    assert "before-backup" in names and "after-backup" not in names and kept
    bad = tmp_path / "bad.db"
    bad.write_text("not a database")
    assert cli("admin", "restore", str(bad), "--data-dir", str(tmp_path / "x"))[0] == 2


def test_a_command_that_exits_non_zero_keeps_its_code(cli):
    # `act conn test` ends with typer.Exit(1) when the server is not reachable; click in
    # standalone_mode=False returns that code instead of raising it, and run() must keep it.
    code, _, _ = cli(
        "act", "conn", "create", "exit-probe", "--kind", "http", "--config", '{"base_url": "http://10.255.255.1:9"}'
    )
    assert code == 0
    code, out, _ = cli("act", "conn", "test", "exit-probe", "-o", "json")
    assert json.loads(out)["ok"] is False
    assert code == 1
