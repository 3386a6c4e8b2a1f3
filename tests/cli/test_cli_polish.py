"""CLI polish (issue 25 part 5): whole ids in tables, one time format (ISO 8601 UTC) in JSON and
YAML, name completion from the server, `-q` on every create/deploy command, the README's
commands are the CLI's, a 401 names where the key came from, and the packaging metadata."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import typer
import yaml

from aionix.cli.main import app, run
from aionix.cli.output import iso_time, iso_times, table
from aionix.credentials import save_profile

ROOT = Path(__file__).parents[2]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


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


def _u(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_default_tables_never_cut_ids_or_names(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    long_id = "ex-" + "0123456789abcdef" * 3
    rows = [
        {"execution_id": long_id, "workflow": "w" * 40, "status": "SUCCEEDED", "started_at": 1.8e9, "note": "n" * 50}
    ]
    out = table(rows, ["execution_id", "workflow", "status", "started_at", "note"])
    assert long_id in out
    # the other columns are what gives way
    assert "…" in out


def test_iso_times_everywhere_in_json_and_yaml():
    assert iso_time(0.25 + 1_700_000_000) == "2023-11-14T22:13:20.250Z"
    data = {"created_at": 1_700_000_000, "items": [{"ts": 1.7e9, "detail": {"due_at": 1.7e9 + 3, "seconds": 5}}]}
    out = iso_times(data)
    assert out["created_at"] == "2023-11-14T22:13:20.000Z"
    assert out["items"][0]["ts"] == "2023-11-14T22:13:20.000Z"
    assert out["items"][0]["detail"] == {"due_at": "2023-11-14T22:13:23.000Z", "seconds": 5}
    # not a time: left alone
    assert iso_times({"timeout_at": None, "max_at": True, "name_at": "x"}) == {
        "timeout_at": None,
        "max_at": True,
        "name_at": "x",
    }


def test_history_due_at_and_execution_times_are_iso(cli, tmp_path):
    wf = _u("wait")
    definition = tmp_path / "w.json"
    definition.write_text(
        json.dumps(
            {"entry": "W", "states": {"W": {"type": "wait", "seconds": 0.2, "next": "D"}, "D": {"type": "succeed"}}}
        )
    )
    assert cli("wf", "create", wf, str(definition))[0] == 0
    code, out, _ = cli("wf", "start", wf, "--sync", "-o", "json")
    assert code == 0, out
    env = json.loads(out)
    assert ISO.match(env["started_at"]) and ISO.match(env["stopped_at"]), env
    code, out, _ = cli("wf", "exec", "history", env["execution_id"], "-o", "yaml")
    events = yaml.safe_load(out)["items"]
    assert all(ISO.match(e["ts"]) for e in events)
    due = [e["detail"]["due_at"] for e in events if isinstance(e.get("detail"), dict) and "due_at" in e["detail"]]
    assert due and all(ISO.match(d) for d in due), events
    # tables show the same instants as ISO 8601 UTC too
    code, out, _ = cli("wf", "exec", "list", "--workflow", wf, "-o", "wide")
    assert code == 0 and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out) and env["execution_id"] in out
    code, out, _ = cli("wf", "exec", "list", "--workflow", wf)
    assert code == 0 and env["execution_id"] in out and wf in out  # the default table: id and name whole


def test_quiet_prints_what_every_create_and_deploy_made(cli, tmp_path):
    wf = _u("q-wf")
    definition = tmp_path / "w.json"
    definition.write_text(json.dumps({"entry": "A", "states": {"A": {"type": "succeed"}}}))
    assert cli("wf", "create", wf, str(definition), "-q")[1].strip() == wf
    assert cli("wf", "update", wf, str(definition), "-q")[1].strip() == wf
    out = cli("wf", "start", wf, "-q")[1].strip()
    assert re.fullmatch(r"\S+", out) and out != wf

    fn = _u("q-fn")
    src = tmp_path / "hello.py"
    src.write_text("def handler(event, context):\n    return 1\n")
    code, out, err = cli("fn", "create", fn, "--runtime", "python", "--file", str(src), "-q")
    assert code == 0 and out.strip() == fn, err
    assert cli("fn", "publish", fn, "-q")[1].strip() == "1"
    folder = tmp_path / "deployme"
    folder.mkdir()
    (folder / "main.py").write_text("def handler(event, context):\n    return 2\n")
    (folder / "function.json").write_text(json.dumps({"runtime": "python", "handler": "main.handler"}))
    dep = _u("q-dep")
    code, out, err = cli("fn", "deploy", str(folder), "--name", dep, "-q")
    assert code == 0 and out.strip() == dep, err
    code, out, err = cli("fn", "deploy", str(folder), "--name", dep, "-q")  # a new version of it
    assert code == 0 and out.strip() == dep, err

    sec = _u("q-sec")
    assert cli("sec", "create", sec, "--value", "s3cret-value", "-q")[1].strip() == sec
    trig = _u("q-tr")
    code, out, err = cli(
        "tr", "create", trig, "--target", f"trn:stepflow:default:template/{wf}", "--schedule", "rate(1 day)", "-q"
    )
    assert code == 0 and out.strip() == trig, err
    assert cli("param", "set", f"/q/{trig}", "v", "-q")[1].strip() == f"/q/{trig}"
    code, out, _ = cli("events", "put", "--source", "q.test", "--type", "Ping", "-q")
    assert code == 0 and out.strip(), "events put -q printed nothing"
    code, out, _ = cli("keys", "create", _u("q-key"), "-q")
    assert code == 0 and out.strip().startswith("aio_")


def _complete(words: str, env_extra: dict[str, str]) -> list[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIONIX_", "_AIO"))},
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "_AIO_COMPLETE": "complete_bash",
        **env_extra,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "aionix.cli.main"], env=env, capture_output=True, text=True, timeout=60
    )
    return proc.stdout.split()


def test_completion_completes_names_from_the_server_and_output_formats(cli, server, tmp_path):
    wf, fn, trig, sec = _u("cmp-wf"), _u("cmp-fn"), _u("cmp-tr"), _u("cmp-sec")
    definition = tmp_path / "w.json"
    definition.write_text(json.dumps({"entry": "A", "states": {"A": {"type": "succeed"}}}))
    assert cli("wf", "create", wf, str(definition))[0] == 0
    execution = cli("wf", "start", wf, "-q")[1].strip()
    src = tmp_path / "f.py"
    src.write_text("def handler(event, context):\n    return 1\n")
    assert cli("fn", "create", fn, "--runtime", "python", "--file", str(src))[0] == 0
    target = f"trn:stepflow:default:template/{wf}"
    assert cli("tr", "create", trig, "--target", target, "--schedule", "rate(1 day)")[0] == 0
    assert cli("sec", "create", sec, "--value", "v4lue-1")[0] == 0
    env = {
        "AIONIX_URL": server.url,
        "AIONIX_API_KEY": server.admin_key,
        "AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp_path / "c"),
    }
    assert wf in _complete("aio wf get cmp-wf", env)
    assert wf in _complete("aio wf run ", env)
    assert execution in _complete("aio wf exec history ", env)
    assert fn in _complete("aio fn invoke cmp-", env)
    assert trig in _complete("aio tr get cmp-tr", env)
    assert sec in _complete("aio sec get cmp-s", env)
    assert _complete("aio -o ", env) == ["table", "wide", "json", "yaml"]
    assert _complete("aio -o y", env) == ["yaml"]
    # the names come from the server the command line names: none from an unreachable one
    assert _complete("aio wf get ", {**env, "AIONIX_URL": "http://127.0.0.1:9"}) == []


def test_a_401_names_the_key_source(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("AIONIX_API_KEY", "aio_wrong_from_env")
    code, _, err = cli("wf", "list")
    assert code == 3 and "AIONIX_API_KEY environment variable" in err, err
    code, _, err = cli("wf", "list", "--api-key", "aio_wrong_from_flag")
    assert code == 3 and "--api-key flag" in err, err
    monkeypatch.delenv("AIONIX_API_KEY")
    save_profile(tmp_path / "creds", "staging", url=os.environ["AIONIX_URL"], api_key="aio_wrong_in_profile")
    code, _, err = cli("--profile", "staging", "wf", "list")
    assert code == 3 and "profile 'staging'" in err, err


def _commands(words: list[str]) -> tuple[list[str], str | None]:
    """The visible command path the words name, and the first word that is no visible command."""
    cmd = typer.main.get_command(app)
    path: list[str] = []
    for w in words:
        if w.startswith("-") or not hasattr(cmd, "commands"):
            break
        sub = cmd.commands.get(w)
        if sub is None or sub.hidden:
            return path, w
        cmd, path = sub, [*path, w]
    return path, None


def test_readme_and_help_use_the_cli_command_names():
    readme = (ROOT / "README.md").read_text()
    wrong = []
    for line in readme.splitlines():
        m = re.search(r"(?:^|[\s`$(])aio ((?:[a-z][\w-]*\s*)+)", line)
        if m:
            path, bad = _commands(m.group(1).split())
            if bad is not None and path:  # `aio wf exec watch` names a hidden or missing command
                wrong.append(f"{' '.join(path)} {bad}: {line.strip()}")
    assert not wrong, "\n".join(wrong)
    # each group's help lists only its real (visible) commands
    cmd = typer.main.get_command(app)
    for group_path in (["wf", "exec"],):
        group = cmd
        for w in group_path:
            group = group.commands[w]
        listed = re.search(r":\s*(.*)\.$", group.help or "")
        visible = {n for n, c in group.commands.items() if not c.hidden}
        names = {n.strip() for n in listed.group(1).split(",")} if listed else set()
        assert names <= visible, f"{group_path}: help names {names - visible}"


def test_packaging_license_is_an_spdx_string():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77 for r in requires), requires
