"""The examples end to end: `aio fn deploy` for each runtime, the CLI's invoke/alias/logs, and a
workflow that calls all three functions through the executor bus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import create, unique

from aionix.cli.main import run

EXAMPLES = Path(__file__).parents[2] / "examples" / "functions"


@pytest.fixture
def cli(fn_server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", fn_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", fn_server.admin_key)

    def call(*args: str) -> tuple[int, str, str]:
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_deploy_examples_and_run_the_workflow(cli, fn) -> None:
    for example in ("python-hello", "deno-hello", "wasm-echo"):
        code, out, err = cli("fn", "deploy", str(EXAMPLES / example), "-o", "json")
        assert code == 0, err
        assert json.loads(out)["name" if "name" in json.loads(out) else "function"] == example
    code, out, err = cli("fn", "invoke", "python-hello", '{"name": "Ada", "message": "one two three"}')
    assert code == 0, err
    assert json.loads(out)["greeting"] == "Hello, Ada!" and json.loads(out)["words"] == 3
    definition = json.loads((EXAMPLES / "workflow.json").read_text())
    r = fn.post("/api/v1/workflows", json={"name": unique("all-three"), "definition": definition})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    r = fn.post(
        f"/api/v1/workflows/{name}/executions",
        json={"input": {"name": "Ada", "message": "hi"}, "mode": "sync", "wait_seconds": 120},
    )
    assert r.status_code in (200, 201), r.text
    envelope = r.json()
    assert envelope["status"] == "SUCCEEDED", envelope
    assert envelope["output"] == {"echo": {"shout": "HELLO, ADA!", "greeting": "Hello, Ada!"}}
    # the workflow's idempotency key reached the function as context.idempotency_key
    records = fn.get("/api/v1/functions/python-hello/invocations", params={"limit": 5}).json()["items"]
    keys = [r["idempotency_key"] for r in records if r["idempotency_key"]]
    assert keys and keys[0].startswith(envelope["execution_id"])


def test_workflow_catches_function_errors_by_name(fn) -> None:
    failing = create(fn, "python", "def handler(event, context):\n    raise KeyError('missing')\n")["name"]
    definition = {
        "entry": "Call",
        "states": {
            "Call": {
                "type": "task",
                "action": f"trn:aionixfn:default:function/{failing}",
                "catch": [{"errors": ["Function.Error.KeyError"], "next": "Caught"}],
                "end": True,
            },
            "Caught": {"type": "set", "value": {"caught": "{% input.error %}"}, "end": True},
        },
    }
    wf = fn.post("/api/v1/workflows", json={"name": unique("catch"), "definition": definition}).json()
    envelope = fn.post(
        f"/api/v1/workflows/{wf['name']}/executions", json={"input": {}, "mode": "sync", "wait_seconds": 120}
    ).json()
    assert envelope["status"] == "SUCCEEDED", envelope
    assert envelope["output"] == {"caught": "Function.Error.KeyError"}


def test_cli_versions_aliases_invoke_and_logs(cli, tmp_path) -> None:
    name = unique("cli")
    src = tmp_path / "main.py"
    src.write_text("def handler(event, context):\n    print('event', event)\n    return {'v': 1}\n")
    assert cli("fn", "create", name, "--runtime", "python", "--file", str(src))[0] == 0
    src.write_text("def handler(event, context):\n    print('event', event)\n    return {'v': 2}\n")
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "main.py").write_text(src.read_text())
    (folder / "function.json").write_text(json.dumps({"runtime": "python"}))
    code, out, err = cli("fn", "deploy", str(folder), "--name", name, "-o", "json")
    assert code == 0 and json.loads(out)["version"] == "2", err
    code, out, _ = cli("fn", "versions", name, "-o", "json")
    assert [v["version"] for v in json.loads(out)] == ["1", "2"]
    assert cli("fn", "alias", name, "live", "1", "--canary", "2", "--weight", "0.5")[0] == 0
    code, out, _ = cli("fn", "traffic", name, "live", "--version", "2", "--weight", "0.25", "-o", "json")
    assert code == 0 and json.loads(out)["routing"] == {"version": "2", "weight": 0.25}
    code, out, _ = cli("fn", "traffic", name, "live", "-o", "json")
    assert code == 0 and json.loads(out)["routing"] is None and json.loads(out)["version"] == "1"
    code, out, _ = cli("fn", "invoke", name, '{"x": 1}', "--qualifier", "1")
    assert code == 0 and json.loads(out) == {"v": 1}
    code, out, _ = cli("fn", "logs", name, "--follow", "--max-polls", "2", "--interval", "0.1")
    assert code == 0 and "event {'x': 1}" in out
    bad = tmp_path / "bad.py"
    bad.write_text("def handler(:\n")
    code, _, err = cli("fn", "create", unique("bad"), "--runtime", "python", "--file", str(bad))
    assert code == 2 and "bad.py:1" in err
    code, _, err = cli("fn", "invoke", "no-such-function-here")
    assert code == 4
    failing = tmp_path / "fail.py"
    failing.write_text("def handler(event, context):\n    raise RuntimeError('boom')\n")
    fname = unique("fail")
    assert cli("fn", "create", fname, "--runtime", "python", "--file", str(failing))[0] == 0
    code, out, err = cli("fn", "invoke", fname)
    assert code == 1 and "Function.Error.RuntimeError" in err
    code, out, _ = cli("status", "-o", "json")
    assert code == 0 and "confinement" in json.loads(out)
