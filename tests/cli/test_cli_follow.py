"""`aio wf run --wait` and `aio wf exec follow`: live progress from the SSE stream, then the
result; exit 1 when the execution did not succeed."""

import json
import uuid

import pytest

from aionix.cli.main import run


@pytest.fixture
def cli(server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)

    def invoke(*args):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def workflow(admin, definition):
    name = "follow-" + uuid.uuid4().hex[:8]
    assert admin.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code == 201
    return name


WAITS = {
    "entry": "Pause",
    "states": {
        "Pause": {"type": "wait", "seconds": 1, "next": "Done"},
        "Done": {"type": "set", "value": {"greeting": "{% 'hi ' & input.who %}"}, "end": True},
    },
}
FAILS = {"entry": "Boom", "states": {"Boom": {"type": "fail", "error": "Nope", "cause": "on purpose"}}}


def test_run_wait_shows_states_live_and_ends_with_the_output(cli, admin):
    name = workflow(admin, WAITS)
    code, out, _ = cli("wf", "run", name, "--input", '{"who": "ada"}', "--wait")
    assert code == 0
    lines = out.splitlines()
    assert any("Pause" in line for line in lines[:-1]) and any("Done" in line for line in lines[:-1])
    assert lines[-1] == 'SUCCEEDED  {"greeting": "hi ada"}'


def test_run_wait_exits_1_when_the_execution_fails(cli, admin):
    name = workflow(admin, FAILS)
    code, out, err = cli("wf", "run", name, "--wait")
    assert code == 1 and out.splitlines()[-1].startswith("FAILED")
    assert "ended FAILED" in err


def test_run_without_wait_returns_the_id_and_follow_picks_it_up(cli, admin):
    name = workflow(admin, WAITS)
    code, out, _ = cli("-o", "json", "wf", "run", name, "--input", '{"who": "bo"}')
    assert code == 0
    execution_id = json.loads(out)["execution_id"]
    code, out, _ = cli("-o", "json", "wf", "exec", "follow", execution_id)
    assert code == 0
    events = [json.loads(line) for line in out.splitlines() if line.startswith('{"seq"')]
    assert events and all("type" in e for e in events)
    assert '"status": "SUCCEEDED"' in out
