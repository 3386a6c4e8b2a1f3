"""`aio init` makes a folder whose function, workflow and trigger deploy and run as made."""

import json

from aionix.cli.main import run


def test_init_then_deploy_and_run_what_it_created(server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    project = tmp_path / "proj"
    assert run(["init", str(project)]) == 0
    assert run(["init", str(project)]) == 2  # not empty
    capsys.readouterr()
    monkeypatch.chdir(project)
    assert run(["fn", "deploy", "functions/greet"]) == 0
    assert run(["wf", "create", "hello", "workflows/hello.json"]) == 0
    capsys.readouterr()
    assert run(["-o", "json", "wf", "start", "hello", "--input", '{"name": "Ada Lovelace-Byron"}', "--sync"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["status"] == "SUCCEEDED"
    assert envelope["output"] == {"message": "Hello, Ada Lovelace-Byron! (that is a long name)"}
    assert run(["-o", "json", "tr", "create", "hourly-hello", "--file", "triggers/hourly-hello.json"]) == 0
    trigger = json.loads(capsys.readouterr().out)
    assert trigger["target"] == "trn:stepflow:default:template/hello"
