"""`aio tr` and `aio events put` against the real server."""

from __future__ import annotations

import json

import pytest

from aionix.cli.main import run
from triggers.support import history, unique, wait_for


@pytest.fixture
def cli(server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_tr_lifecycle(cli, admin) -> None:
    name = unique("cli")
    code, out, _ = cli(
        "tr",
        "create",
        name,
        "--target",
        "transform",
        "--schedule",
        "0 9 * * 1-5",
        "--timezone",
        "Europe/Berlin",
        "--misfire",
        "skip",
        "-o",
        "json",
    )
    assert code == 0, out
    created = json.loads(out)
    assert created["schedule"] == {
        "expression": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "jitter_seconds": 0.0,
        "misfire": "skip",
        "max_catchup": 100,
    }

    code, out, _ = cli("tr", "list", "--kind", "schedule", "--limit", "500")
    assert code == 0 and name in out and "NEXT_FIRE_AT" in out
    code, out, _ = cli("tr", "get", name, "-o", "json")
    assert code == 0 and json.loads(out)["name"] == name
    code, out, _ = cli("tr", "disable", name, "-o", "json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, out, _ = cli("tr", "enable", name, "-o", "json")
    assert code == 0 and json.loads(out)["enabled"] is True
    code, out, _ = cli("tr", "history", name)
    assert code == 0
    code, out, _ = cli("tr", "delete", name)
    assert code == 0 and f"trn:igniter:default:trigger/{name}" in out
    code, _, err = cli("tr", "get", name)
    assert code == 4 and "not found" in err


def test_tr_create_errors_are_one_line_with_the_field(cli) -> None:
    code, _, err = cli("tr", "create", unique("cli"), "--target", "transform", "--schedule", "61 * * * *")
    assert code == 2 and "schedule.expression" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("tr", "create", unique("cli"), "--schedule", "rate(1 minute)")
    assert code == 2 and "--target" in err
    code, _, err = cli(
        "tr", "create", unique("cli"), "--target", "transform", "--webhook", "--schedule", "rate(1 minute)"
    )
    assert code == 2


def test_webhook_secret_printed_once_and_rotated(cli) -> None:
    name = unique("clihook")
    code, out, _ = cli("tr", "create", name, "--target", "transform", "--webhook", "-o", "json")
    assert code == 0
    secret = json.loads(out)["secret"]
    assert secret.startswith("whsec_")
    code, out, _ = cli("tr", "rotate-secret", name, "--grace", "0", "-q")
    assert code == 0 and out.strip().startswith("whsec_") and out.strip() != secret


def test_events_put_fires_a_matching_trigger(cli, admin) -> None:
    source = unique("cli-src")
    name = unique("cliev")
    code, _, _ = cli(
        "tr",
        "create",
        name,
        "--target",
        "transform",
        "--pattern",
        json.dumps({"source": [source]}),
        "--input",
        "{'expression': 'detail.n * 2', 'data': $}",
    )
    assert code == 0
    code, out, _ = cli("events", "put", "--source", source, "--type", "Tick", "--detail", '{"n": 21}', "-o", "json")
    assert code == 0, out
    assert json.loads(out)["matched"] == 1
    [fire] = wait_for(lambda: [f for f in history(admin, name) if f["status"] == "delivered"], 30, what="delivery")
    assert fire["fire_key"] == json.loads(out)["id"]
