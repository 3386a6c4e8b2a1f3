"""The email kind against real aiosmtpd servers on loopback (STARTTLS, TLS, plain)."""

from __future__ import annotations

import base64
import time

import pytest
from serverproc import free_port

from connectors.support import error_name, make_connection, make_secret, run_action, unique


def _conn(api, box, security: str, password: str | None = None) -> str:
    secret = make_secret(api, password or box.password)
    return make_connection(
        api,
        "email",
        {
            "host": "127.0.0.1",
            "port": box.ports[security],
            "security": security,
            "username": box.user,
            "password_secret": secret,
            "from_address": "aionix@example.com",
            "ca_file": str(box.cert),
        },
    )


def _received(box, subject: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in box.messages:
            if m["message"]["Subject"] == subject:
                return m
        time.sleep(0.05)
    raise AssertionError(f"no message {subject!r} arrived")


@pytest.mark.parametrize("security", ["starttls", "tls", "plain"])
def test_send_text_html_and_attachment(api, mailbox, security):
    conn = _conn(api, mailbox, security)
    subject = unique("report")
    params = {
        "to": ["ops@example.com"],
        "cc": "boss@example.com",
        "bcc": ["audit@example.com"],
        "subject": subject,
        "text": "All good.",
        "html": "<p>All <b>good</b>.</p>",
        "attachments": [
            {"filename": "data.csv", "content": "a,b\n1,2\n", "content_type": "text/csv"},
            {"filename": "x.bin", "content": base64.b64encode(b"\x00\xff").decode(), "encoding": "base64"},
        ],
    }
    r = run_action(api, "email", params, connection=conn)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert sorted(result["accepted"]) == ["audit@example.com", "boss@example.com", "ops@example.com"]
    got = _received(mailbox, subject)
    assert sorted(got["to"]) == ["audit@example.com", "boss@example.com", "ops@example.com"]
    msg = got["message"]
    assert msg["From"] == "aionix@example.com"
    assert "Bcc" not in msg
    assert msg.get_body(("plain",)).get_content().strip() == "All good."
    assert "<b>good</b>" in msg.get_body(("html",)).get_content()
    atts = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
    assert atts["data.csv"].replace("\r\n", "\n") == "a,b\n1,2\n"
    assert atts["x.bin"] == b"\x00\xff"
    assert api.post(f"/api/v1/connections/{conn}/test").json()["ok"] is True


def test_bad_credentials_server_down_and_rejected_recipient(api, mailbox):
    bad = _conn(api, mailbox, "starttls", password="wrong")
    r = run_action(api, "email", {"to": "a@example.com", "text": "x"}, connection=bad)
    assert error_name(r) == "Email.AuthError"
    assert api.post(f"/api/v1/connections/{bad}/test").json()["error"] == "Email.AuthError"
    down = make_connection(
        api, "email", {"host": "127.0.0.1", "port": free_port(), "security": "plain", "from_address": "a@example.com"}
    )
    assert (
        error_name(run_action(api, "email", {"to": "a@example.com", "text": "x"}, connection=down))
        == "Email.ConnectionError"
    )
    good = _conn(api, mailbox, "plain")
    assert (
        error_name(run_action(api, "email", {"to": "reject@example.com", "text": "x"}, connection=good))
        == "Email.Rejected"
    )


def test_untrusted_certificate_refused(api, mailbox):
    secret = make_secret(api, mailbox.password)
    conn = make_connection(
        api,
        "email",
        {
            "host": "127.0.0.1",
            "port": mailbox.ports["tls"],
            "security": "tls",
            "username": mailbox.user,
            "password_secret": secret,
            "from_address": "a@example.com",
        },
    )
    r = run_action(api, "email", {"to": "a@example.com", "text": "x"}, connection=conn)
    assert error_name(r) in ("Email.ConnectionError", "Email.Error")


def test_timeout_against_a_silent_server(api):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    conn = make_connection(
        api,
        "email",
        {"host": "127.0.0.1", "port": listener.getsockname()[1], "security": "plain", "from_address": "a@example.com"},
    )
    r = run_action(api, "email", {"to": "a@example.com", "text": "x", "timeout": 0.5}, connection=conn)
    assert error_name(r) == "Email.Timeout"
    listener.close()


def test_bad_parameters_name_the_field(api, mailbox):
    conn = _conn(api, mailbox, "plain")
    for params, field in (
        ({"to": "not-an-address", "text": "x"}, "parameters.to"),
        ({"to": "a@example.com"}, "parameters"),
        (
            {
                "to": "a@example.com",
                "text": "x",
                "attachments": [{"filename": "a", "content": "!!", "encoding": "base64"}],
            },
            "parameters.attachments.0.content",
        ),
    ):
        r = api.post(
            "/api/v1/actions", json={"name": unique("mail"), "kind": "email", "connection": conn, "parameters": params}
        )
        if r.status_code == 201:
            r = api.post(f"/api/v1/actions/{r.json()['name']}/execute", json={})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["field"] == field
