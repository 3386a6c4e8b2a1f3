"""`aio task`, `aio router` and `aio usage` against the AI test server (stand-in providers)."""

from __future__ import annotations

import json

import pytest

from aionix.cli.main import run


@pytest.fixture
def cli(ai, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AIONIX_URL", ai.server.url)
    monkeypatch.setenv("AIONIX_API_KEY", ai.server.admin_key)
    monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(tmp_path / "none"))

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_task_submit_follow_get_list_cancel(cli):
    code, out, err = cli("task", "submit", "api-ok", "--params", '{"text": "cli"}', "--follow")
    assert code == 0, err
    assert "Hello from stand-in" in out
    code, out, err = cli("-o", "json", "task", "submit", "local-ok", "--params", '{"text": "cli"}')
    assert code == 0, err
    env = json.loads(out)
    assert env["status"] == "OK" and env["engine"]["provider"] == "ollama"
    code, out, _ = cli("-o", "json", "task", "get", env["task_id"])
    assert json.loads(out)["task_id"] == env["task_id"]
    code, out, _ = cli("-o", "json", "task", "list", "--limit", "5")
    assert code == 0 and env["task_id"] in [i["task_id"] for i in json.loads(out)["items"]]
    code, out, _ = cli("task", "list", "--limit", "5")
    assert code == 0 and env["task_id"] in out
    code, out, _ = cli("-o", "json", "task", "cancel", env["task_id"])
    assert code == 0 and json.loads(out)["status"] == "OK"
    code, _, err = cli("task", "submit", "nope")
    assert code != 0 and "intent" in err


def test_router_and_usage_commands(cli):
    code, out, err = cli("-o", "json", "router", "versions")
    assert code == 0, err
    active = next(v for v in json.loads(out)["items"] if v["active"])["version"]
    code, out, err = cli("-o", "json", "router", "reload")
    assert code == 0, err
    assert json.loads(out)["version"] == active
    code, out, err = cli("-o", "json", "router", "rollback", str(active))
    assert code == 0, err
    code, out, err = cli("router", "decisions", "--limit", "3")
    assert code == 0, err
    cli("task", "submit", "api-ok", "--params", '{"text": "usage"}')
    code, out, err = cli("-o", "json", "usage", "--group-by", "provider")
    assert code == 0, err
    assert any(i["provider"] == "cloud" for i in json.loads(out)["items"])
    code, out, err = cli("usage", "show", "--group-by", "day")
    assert code == 0, err
    code, out, err = cli("-o", "json", "usage", "budget")
    assert code == 0 and "daily_usd" in json.loads(out)
