"""`aio act`: kinds, connections, actions and execute through the CLI against the real server."""

from __future__ import annotations

import json

import pytest

from aionix.cli.main import run
from connectors.support import unique


@pytest.fixture
def cli(conn_server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", conn_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", conn_server.admin_key)

    def call(*args: str) -> tuple[int, str, str]:
        code = run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_cli_connection_action_execute_roundtrip(cli, http_target):
    conn, action = unique("cli-conn"), unique("cli-act")
    code, out, _ = cli(
        "act", "conn", "create", conn, "--kind", "http", "--config", json.dumps({"base_url": http_target.url})
    )
    assert code == 0, out
    code, out, _ = cli("-o", "json", "act", "conn", "test", conn)
    assert code == 0
    assert json.loads(out)["ok"] is True
    code, out, _ = cli(
        "act",
        "create",
        action,
        "--kind",
        "http",
        "--connection",
        conn,
        "--parameters",
        '{"url": "{% \'/echo?n=\' & input.n %}"}',
    )
    assert code == 0, out
    code, out, _ = cli("-o", "json", "act", "execute", action, "--input", '{"n": 7}')
    assert code == 0, out
    assert json.loads(out)["body"]["query"] == {"n": "7"}
    code, out, _ = cli("act", "list", "--kind", "http")
    assert code == 0 and action in out
    code, out, _ = cli("act", "connectors")
    assert code == 0 and "graphql" in out and "transform" in out
    code, _, err = cli("act", "conn", "delete", conn)
    assert code != 0 and "used by" in err
    assert cli("act", "delete", action)[0] == 0
    assert cli("act", "conn", "delete", conn)[0] == 0
    code, _, err = cli("act", "get", action)
    assert code == 4


def test_cli_execute_failure_and_bad_input(cli, http_target):
    action = unique("cli-404")
    assert (
        cli(
            "act",
            "create",
            action,
            "--kind",
            "http",
            "--parameters",
            json.dumps({"url": f"{http_target.url}/status/404"}),
        )[0]
        == 0
    )
    code, _, err = cli("act", "execute", action)
    assert code == 1
    assert "Http.Status.404" in err
    code, _, err = cli("act", "create", unique("x"), "--kind", "nope")
    assert code == 2 or code == 1
    assert "kind" in err
