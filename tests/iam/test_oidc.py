"""OIDC sign-in against a real OpenID Connect provider: the certified `oidc-provider` package from
npm (tests/iam/oidc-provider, `npm ci` there; `make test` installs it), running on loopback with
node. No stand-in: discovery, JWKS, the authorization endpoint with PKCE, the token endpoint and
the ID token are the provider's own. Its development login page (any login name) is driven here
with an HTTP client; tests/iam/test_oidc_e2e.py does the same in a real browser.

Covered: authorization code + PKCE (the provider requires it), state bound to the browser,
nonce, group claim mapped to Aionix groups and a role, the one-time handoff code, refusals."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from serverproc import ServerProcess
from test_tokens import wait_ready

PROVIDER_DIR = Path(__file__).parent / "oidc-provider"
CLIENT_ID = "aionix-studio"
CLIENT_SECRET = "test-only-client-secret-not-a-real-one"
GROUPS = {"alice": ["eng-team", "aionix-admins", "unmapped-group"], "bob": ["eng-team"]}


def need_provider() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is needed for the OIDC tests (the real oidc-provider runs on it)")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("run `npm ci` in tests/iam/oidc-provider (make test does) for the real OIDC provider")


class Provider:
    def __init__(self, root: Path) -> None:
        need_provider()
        self.port_file = root / "oidc-port"
        config = {
            "port_file": str(self.port_file),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": ["http://127.0.0.1/api/v1/auth/oidc/callback"],
            "groups": GROUPS,
        }
        (root / "oidc.json").write_text(json.dumps(config))
        self.log = open(root / "oidc.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["node", "provider.mjs", str(root / "oidc.json")],
            cwd=PROVIDER_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not start:\n{(root / 'oidc.log').read_text()}")
            time.sleep(0.05)
        self.issuer = f"http://127.0.0.1:{int(self.port_file.read_text())}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def oidc_config(issuer: str) -> str:
    return f"""
[auth.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
display_name = "Test IdP"
tenant = "default"
default_role = "viewer"
scopes = ["openid", "email", "profile", "groups"]
groups_claim = "groups"
group_roles = {{ admins = "admin" }}

[auth.oidc.group_map]
eng-team = "engineering"
aionix-admins = "admins"
"""


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    provider = Provider(tmp_path_factory.mktemp("idp"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, idp):
    root = tmp_path_factory.mktemp("oidc-aionix")
    (root / "aionix.toml").write_text(oidc_config(idp.issuer))
    proc = ServerProcess(
        root,
        env={"AIONIX_CONFIG": str(root / "aionix.toml"), "AIONIX_SECURITY_AUTH_FAILURES_PER_MINUTE": "100000"},
    ).start()
    wait_ready(proc)
    yield proc
    proc.stop()


def provider_login(start_url: str, login: str) -> str:
    """Drive the provider from the authorization URL to the redirect back to Aionix: its login
    form (the development interaction: any login name) and nothing else (consent is granted)."""
    with httpx.Client(timeout=30) as browser:
        url = start_url
        for _ in range(10):
            r = browser.get(url)
            if r.status_code in (302, 303):
                url = urljoin(url, r.headers["location"])
                if urlsplit(url).path == "/api/v1/auth/oidc/callback":
                    return url
                continue
            assert r.status_code == 200, r.text
            action = unescape(re.search(r'<form[^>]*action="([^"]+)"', r.text).group(1))
            fields = {"prompt": "login", "login": login, "password": "any"}
            if 'value="consent"' in r.text:
                fields = {"prompt": "consent"}
            r = browser.post(urljoin(url, action), data=fields)
            assert r.status_code in (302, 303), r.text
            url = urljoin(url, r.headers["location"])
            if urlsplit(url).path == "/api/v1/auth/oidc/callback":
                return url
    raise AssertionError("the provider never redirected back")


def sign_in(srv, login: str, return_to: str = "/") -> tuple[httpx.Response, httpx.Client]:
    """The whole flow as a browser does it; returns Aionix's answer to the callback."""
    studio = httpx.Client(base_url=srv.url, timeout=30)
    r = studio.get("/api/v1/auth/oidc/authorize", params={"return_to": return_to})
    assert r.status_code == 302, r.text
    assert r.cookies.get("aionix_oidc_state") or studio.cookies.get("aionix_oidc_state")
    callback = provider_login(r.headers["location"], login)
    parts = urlsplit(callback)
    return studio.get(parts.path + "?" + parts.query), studio


def test_discovery_and_the_authorization_request(srv, idp):
    info = httpx.get(srv.url + "/api/v1/auth/config").json()
    assert info["oidc"] == {"display_name": "Test IdP", "authorize_url": "/api/v1/auth/oidc/authorize"}
    r = httpx.get(srv.url + "/api/v1/auth/oidc/authorize")
    assert r.status_code == 302
    target = urlsplit(r.headers["location"])
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}" == idp.issuer
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert q["state"] and q["nonce"] and q["state"] != q["nonce"]
    assert q["redirect_uri"] == srv.url + "/api/v1/auth/oidc/callback"
    assert "groups" in q["scope"].split()
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/api/v1/auth/oidc" in cookie
    # the sign-in in progress is in the store (any node can finish it): the state only as a hash,
    # the PKCE verifier sealed under a system key
    import hashlib

    import pgstore

    rows = pgstore.query(srv.data_dir, "SELECT state_hash, verifier_sealed FROM iam_oidc_flows")
    hashed = hashlib.sha256(q["state"].encode()).hexdigest()
    assert next(sealed for h, sealed in rows if h == hashed).startswith("m1:")
    assert all(q["state"] not in h for h, _ in rows)


def test_code_pkce_sign_in_maps_groups_and_role(srv):
    r, studio = sign_in(srv, "alice", return_to="/workflows")
    assert r.status_code == 302, r.text
    back = urlsplit(r.headers["location"])
    assert back.path == "/workflows"
    handoff = parse_qs(back.query)["aionix_signin"][0]
    r = studio.post("/api/v1/auth/oidc/exchange", json={"handoff": handoff})
    assert r.status_code == 200, r.text
    s = r.json()
    # eng-team -> engineering, aionix-admins -> admins (role admin); unmapped-group is dropped
    assert s["user"]["groups"] == ["admins", "engineering"]
    assert s["user"]["role"] == "admin" and s["user"]["name"] == "alice"
    with srv.client(s["access_token"]) as c:
        me = c.get("/api/v1/whoami").json()
        assert me["role"] == "admin" and me["key_id"] == s["user"]["id"]
        user = c.get("/api/v1/users/alice").json()
    assert user["source"] == "oidc" and user["email"] == "alice@example.test"
    assert user["groups"] == ["admins", "engineering"]
    # the handoff code works once
    assert studio.post("/api/v1/auth/oidc/exchange", json={"handoff": handoff}).status_code == 401
    # the session refreshes like a local one
    r = httpx.post(srv.url + "/api/v1/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 200


def test_groups_follow_the_claim_at_each_sign_in(srv):
    r, studio = sign_in(srv, "bob")
    handoff = parse_qs(urlsplit(r.headers["location"]).query)["aionix_signin"][0]
    s = studio.post("/api/v1/auth/oidc/exchange", json={"handoff": handoff}).json()
    assert s["user"]["groups"] == ["engineering"] and s["user"]["role"] == "viewer"
    with srv.client() as c:
        group = c.get("/api/v1/groups/engineering").json()
    assert {m["name"]: m["source"] for m in group["members"]}.items() >= {"alice": "oidc", "bob": "oidc"}.items()
    # signing in again is the same user (found by the issuer's subject), not a new one
    r, studio = sign_in(srv, "bob")
    handoff = parse_qs(urlsplit(r.headers["location"]).query)["aionix_signin"][0]
    again = studio.post("/api/v1/auth/oidc/exchange", json={"handoff": handoff}).json()
    assert again["user"]["id"] == s["user"]["id"]


def test_state_must_match_the_browser_and_be_used_once(srv):
    # the callback in another browser (no state cookie): login CSRF refused
    studio = httpx.Client(base_url=srv.url, timeout=30)
    r = studio.get("/api/v1/auth/oidc/authorize")
    callback = provider_login(r.headers["location"], "alice")
    parts = urlsplit(callback)
    other = httpx.get(srv.url + parts.path + "?" + parts.query)
    assert other.status_code == 302 and "aionix_signin_error" in other.headers["location"]
    assert "another browser" in parse_qs(urlsplit(other.headers["location"]).query)["aionix_signin_error"][0]
    # the state is spent: the right browser cannot use it afterwards either
    r = studio.get(parts.path + "?" + parts.query)
    assert "aionix_signin_error" in r.headers["location"]
    # a made-up state and the issuer's error are refused the same way
    r = studio.get("/api/v1/auth/oidc/callback", params={"code": "x", "state": "made-up"})
    assert "aionix_signin_error" in r.headers["location"]
    r = studio.get("/api/v1/auth/oidc/callback", params={"error": "access_denied", "state": "s"})
    assert "access_denied" in r.headers["location"]


def test_return_to_stays_on_this_site(srv):
    r, _studio = sign_in(srv, "bob", return_to="//evil.example/x")
    assert r.headers["location"].startswith("/?aionix_signin=")


def test_id_token_checks(srv, idp):
    """The ID token check itself: a token from the real provider with a wrong nonce, for another
    client, or with a forged signature is refused."""
    import asyncio

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from aionix.errors import Unauthorized
    from aionix.iam.oidc import OidcFlow
    from aionix.iam.tokens import OidcConfig

    cfg = OidcConfig(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    flow = OidcFlow(None, cfg, None, None)  # type: ignore[arg-type]

    async def check() -> None:
        doc = await flow.discovery()
        assert doc["issuer"] == idp.issuer
        keys = await flow._keys()
        assert keys.keys
        forged_key = ec.generate_private_key(ec.SECP256R1())
        now = int(time.time())
        claims = {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "x", "iat": now, "exp": now + 60, "nonce": "n"}
        forged = jwt.encode(claims, forged_key, algorithm="ES256", headers={"kid": keys.keys[0].key_id})
        with pytest.raises(Unauthorized):
            await flow.verify_id_token(forged, "n", doc)
        none_alg = jwt.encode(claims, None, algorithm="none")
        with pytest.raises(Unauthorized):
            await flow.verify_id_token(none_alg, "n", doc)

    asyncio.run(check())


def test_unreachable_issuer_is_a_502_not_a_500(tmp_path):
    root = tmp_path / "down"
    root.mkdir()
    (root / "aionix.toml").write_text(oidc_config("http://127.0.0.1:9"))
    proc = ServerProcess(root, env={"AIONIX_CONFIG": str(root / "aionix.toml")}).start()
    try:
        wait_ready(proc)
        r = httpx.get(proc.url + "/api/v1/auth/oidc/authorize")
        assert r.status_code == 502 and r.json()["error"]["code"] == "oidc_issuer_error"
    finally:
        proc.stop()
