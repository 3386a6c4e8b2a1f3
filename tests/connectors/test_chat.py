"""slack and discord webhooks, through the http machinery, against the loopback recorder."""

from __future__ import annotations

import json

from connectors.support import error_name, make_connection, make_secret, run_action, unique


def test_slack_webhook_message(api, http_target):
    path = f"/slack/{unique('hook')}"
    conn = make_connection(
        api, "slack", {"webhook_url_secret": make_secret(api, http_target.url + path, type="api_key")}
    )
    r = run_action(
        api,
        "slack",
        {"text": "{% 'Order ' & $string(input.id) & ' shipped' %}", "channel": "#ops"},
        connection=conn,
        input={"id": 42},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["status"] == 200
    sent = [q for q in http_target.requests if q["path"] == path]
    assert len(sent) == 1
    assert json.loads(sent[0]["body"]) == {"text": "Order 42 shipped", "channel": "#ops"}


def test_discord_webhook_message_waits_for_the_message(api, http_target):
    path = f"/discord/{unique('hook')}"
    conn = make_connection(
        api, "discord", {"webhook_url_secret": make_secret(api, http_target.url + path, type="api_key")}
    )
    r = run_action(api, "discord", {"content": "Deploy finished", "embeds": [{"title": "v2"}]}, connection=conn)
    assert r.status_code == 200, r.text
    sent = next(q for q in http_target.requests if q["path"] == path)
    assert sent["query"] == {"wait": "true"}
    assert json.loads(sent["body"]) == {"content": "Deploy finished", "embeds": [{"title": "v2"}]}


def test_webhook_failures_and_bad_parameters(api, http_target):
    conn = make_connection(
        api, "slack", {"webhook_url_secret": make_secret(api, http_target.url + "/status/404", type="api_key")}
    )
    assert error_name(run_action(api, "slack", {"text": "x"}, connection=conn)) == "Http.Status.404"
    r = api.post("/api/v1/actions", json={"name": unique("s"), "kind": "slack", "connection": conn, "parameters": {}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters"
    metadata = make_connection(
        api, "discord", {"webhook_url_secret": make_secret(api, "http://169.254.169.254/hook", type="api_key")}
    )
    assert error_name(run_action(api, "discord", {"content": "x"}, connection=metadata)) == "Http.Refused"


def test_webhook_timeout_and_server_down(api, http_target):
    from serverproc import free_port

    slow = make_connection(
        api, "slack", {"webhook_url_secret": make_secret(api, http_target.url + "/slow?s=3", type="api_key")}
    )
    assert error_name(run_action(api, "slack", {"text": "x", "timeout": 0.5}, connection=slow)) == "Http.Timeout"
    down = make_connection(
        api, "discord", {"webhook_url_secret": make_secret(api, f"http://127.0.0.1:{free_port()}/hook", type="api_key")}
    )
    assert error_name(run_action(api, "discord", {"content": "x"}, connection=down)) == "Http.ConnectionError"


def test_webhook_url_never_reaches_the_server_log(api, conn_server, http_target):
    token = unique("T0KEN")
    conn = make_connection(
        api, "slack", {"webhook_url_secret": make_secret(api, f"{http_target.url}/services/{token}", type="api_key")}
    )
    assert run_action(api, "slack", {"text": "x"}, connection=conn).status_code == 200
    assert any(token in q["path"] for q in http_target.requests)
    assert token not in conn_server.log()
