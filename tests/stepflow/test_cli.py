"""`aio wf` against the real server."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from aionix.cli.main import run


@pytest.fixture
def cli(server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_validate_yaml_file_lists_problems(cli, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"entry": "S", "states": {"S": {"type": "succeed"}}}))
    code, out, _ = cli("wf", "validate", str(good))
    assert code == 0 and "valid" in out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entry": "S", "states": {"S": {"type": "set", "next": "Gone"}}}))
    code, out, _ = cli("wf", "validate", str(bad))
    assert code == 1 and "/states/S/next" in out and "unknown state 'Gone'" in out


def test_create_start_history_and_exec_commands(cli, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    f = tmp_path / "wf.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "entry": "Hello",
                "states": {"Hello": {"type": "set", "value": {"greeting": "{% 'hello ' & input.who %}"}, "end": True}},
            }
        )
    )
    assert cli("wf", "create", name, str(f))[0] == 0
    code, out, _ = cli("wf", "start", name, "--input", '{"who": "ada"}', "--sync", "-o", "json")
    assert code == 0
    env = json.loads(out)
    assert env["output"] == {"greeting": "hello ada"}
    code, out, _ = cli("wf", "exec", "history", env["execution_id"], "-o", "json")
    assert code == 0 and json.loads(out)["items"][0]["type"] == "ExecutionStarted"
    code, out, _ = cli("wf", "exec", "list", "--workflow", name)
    assert code == 0 and env["execution_id"][:8] in out
    code, out, _ = cli("wf", "exec", "watch", env["execution_id"])
    assert code == 0 and "SUCCEEDED" in out
    assert cli("wf", "update", name, str(f))[0] == 0
    code, out, _ = cli("wf", "versions", name, "-o", "json")
    assert [v["version"] for v in json.loads(out)["items"]] == [2, 1]
    code, out, _ = cli("wf", "schema")
    assert code == 0 and json.loads(out)["title"].startswith("StepFlow")
    code, _, err = cli("wf", "exec", "redrive", env["execution_id"])
    assert code == 1 and "409" in err
    assert cli("wf", "get", "no-such-workflow-x")[0] == 4
