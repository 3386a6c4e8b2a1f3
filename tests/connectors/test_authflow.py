"""AuthFlow against a real OAuth2 authorization server on loopback: client credentials,
authorization code with PKCE (S256), refresh before expiry and on 401, state and PKCE
mismatches refused, tokens stored in CredVault by `aio act auth`."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from aionix.cli.main import run
from connectors.oauth_server import start_oauth
from connectors.support import error_name, make_action, make_connection, make_secret, unique


@pytest.fixture(scope="module")
def oauth():
    server = start_oauth()
    yield server
    server.shutdown()


def _cc_conn(api, oauth, secret_value: str | None = None) -> str:
    secret = make_secret(api, secret_value or oauth.client_secret)
    auth = {
        "type": "oauth2",
        "grant": "client_credentials",
        "token_url": f"{oauth.url}/token",
        "client_id": oauth.client_id,
        "client_secret_secret": secret,
    }
    return make_connection(api, "http", {"base_url": oauth.url, "auth": auth})


def _code_conn(api, oauth) -> tuple[str, str]:
    token_secret = unique("tokens")
    auth = {
        "type": "oauth2",
        "grant": "authorization_code",
        "token_url": f"{oauth.url}/token",
        "authorize_url": f"{oauth.url}/authorize",
        "client_id": oauth.client_id,
        "client_secret_secret": make_secret(api, oauth.client_secret),
        "token_secret": token_secret,
        "scopes": ["read"],
    }
    return make_connection(api, "http", {"base_url": oauth.url, "auth": auth}), token_secret


def _me(api, action: str) -> httpx.Response:
    return api.post(f"/api/v1/actions/{action}/execute", json={})


def test_client_credentials_cached_refreshed_on_401_and_before_expiry(api, oauth):
    conn = _cc_conn(api, oauth)
    action = make_action(api, "http", {"url": "/api/me"}, connection=conn)
    before = len(oauth.grants)
    assert _me(api, action).json()["result"]["body"] == {"sub": "ann"}
    assert _me(api, action).status_code == 200
    assert oauth.grants[before:] == ["client_credentials"]
    oauth.revoke_access_tokens()
    unauthorized = oauth.unauthorized
    assert _me(api, action).status_code == 200
    assert oauth.unauthorized == unauthorized + 1
    assert oauth.grants[before:] == ["client_credentials", "client_credentials"]
    oauth.expires_in = 2
    try:
        conn2 = _cc_conn(api, oauth)
        action2 = make_action(api, "http", {"url": "/api/me"}, connection=conn2)
        assert _me(api, action2).status_code == 200
        n = len(oauth.grants)
        time.sleep(1.7)
        unauthorized = oauth.unauthorized
        assert _me(api, action2).status_code == 200
        assert len(oauth.grants) == n + 1
        assert oauth.unauthorized == unauthorized  # refreshed before it expired, not after a 401
    finally:
        oauth.expires_in = 3600


def test_client_credentials_bad_secret(api, oauth):
    conn = _cc_conn(api, oauth, secret_value="wrong")
    action = make_action(api, "http", {"url": "/api/me"}, connection=conn)
    assert error_name(_me(api, action)) == "AuthFlow.TokenError"


def test_authorization_code_with_pkce_stores_and_uses_tokens(api, oauth, conn_server):
    conn, token_secret = _code_conn(api, oauth)
    started = api.post(f"/api/v1/connections/{conn}/authorize").json()
    query = parse_qs(urlsplit(started["authorization_url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [started["state"]]
    assert query["scope"] == ["read"]
    page = httpx.get(started["authorization_url"], follow_redirects=True)
    assert page.status_code == 200 and "authorized" in page.text
    status = api.get(f"/api/v1/authflow/{started['state']}").json()
    assert status["completed"] and status["error"] is None and status["token_secret"] == token_secret
    tokens = status["tokens"]
    assert tokens["access_token"] and tokens["refresh_token"]
    assert api.get(f"/api/v1/authflow/{started['state']}").json()["tokens"] is None
    r = api.post("/api/v1/secrets", json={"name": token_secret, "type": "oauth_token", "value": tokens})
    assert r.status_code == 201, r.text
    action = make_action(api, "http", {"url": "/api/me"}, connection=conn)
    assert _me(api, action).status_code == 200
    # forget the in-memory tokens: the next call reads them from CredVault, and refreshes on 401
    config = api.get(f"/api/v1/connections/{conn}").json()["config"]
    assert api.put(f"/api/v1/connections/{conn}", json={"config": config}).status_code == 200
    oauth.revoke_access_tokens()
    before = len(oauth.grants)
    assert _me(api, action).status_code == 200
    assert oauth.grants[before:] == ["refresh_token"]
    # the refreshed tokens were kept in CredVault as a new version (a restart uses them)
    versions = api.get(f"/api/v1/secrets/{token_secret}/versions").json()["items"]
    assert len(versions) == 2
    kept = api.post(f"/api/v1/secrets/{token_secret}/reveal").json()["value"]
    assert kept["access_token"] != tokens["access_token"] and kept["refresh_token"]
    # the callback refuses a state it already used
    again = httpx.get(f"{conn_server.url}/api/v1/authflow/callback", params={"state": started["state"], "code": "x"})
    assert again.status_code == 400


def test_unknown_state_and_pkce_mismatch_refused(api, oauth, conn_server):
    r = httpx.get(f"{conn_server.url}/api/v1/authflow/callback", params={"state": "forged", "code": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["field"] == "query.state"
    conn, _ = _code_conn(api, oauth)
    a = api.post(f"/api/v1/connections/{conn}/authorize").json()
    b = api.post(f"/api/v1/connections/{conn}/authorize").json()
    to_provider = httpx.get(a["authorization_url"], follow_redirects=False)
    code_a = parse_qs(urlsplit(to_provider.headers["location"]).query)["code"][0]
    # a code obtained for flow A, replayed into flow B: B's verifier does not match A's challenge
    r = httpx.get(f"{conn_server.url}/api/v1/authflow/callback", params={"state": b["state"], "code": code_a})
    assert r.status_code == 400
    assert "PKCE" in r.json()["error"]["message"]
    status = api.get(f"/api/v1/authflow/{b['state']}").json()
    assert status["completed"] and "PKCE" in status["error"] and status["tokens"] is None
    r = httpx.get(f"{conn_server.url}/api/v1/authflow/callback", params={"state": a["state"], "error": "access_denied"})
    assert r.status_code == 400


def test_cli_auth_stores_the_tokens_in_credvault(api, oauth, conn_server, monkeypatch, capsys):
    conn, token_secret = _code_conn(api, oauth)
    monkeypatch.setenv("AIONIX_URL", conn_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", conn_server.admin_key)
    opened: list[int] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(httpx.get(url, follow_redirects=True).status_code))
    code = run(["act", "auth", conn, "--open", "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert opened == [200]
    assert "Open this URL" in out
    info = api.get(f"/api/v1/secrets/{token_secret}").json()
    assert info["type"] == "oauth_token"
    action = make_action(api, "http", {"url": "/api/me"}, connection=conn)
    assert _me(api, action).status_code == 200
