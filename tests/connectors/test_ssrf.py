"""The SSRF guard (RELIABILITY.md S6): refused by default after resolution and on every
redirect, DNS rebinding defeated, allow-listed hosts reached."""

from __future__ import annotations

import asyncio

import pytest

from aionix.bus import BusError
from aionix.connectors.httpcall import HttpRequest, guarded_client, send
from aionix.errors import ValidationFailed
from aionix.ssrf import AllowList, Guard, Refused
from connectors.support import error_name, make_connection, run_action

#: host spellings that all land somewhere internal; the guard must refuse every one.
REFUSED_HOSTS = [
    "127.0.0.1",
    "127.0.0.2",
    "127.255.255.254",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0177.0.0.01",
    "017700000001",
    "127.000.000.001",
    "localhost",
    "LOCALHOST",
    "LocalHost",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "0.0.0.0",
    "0",
    "::",
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "::ffff:169.254.169.254",
    "fd00:ec2::254",
    "[fd00:ec2::254]",
    "100.100.100.200",
    "169.254.170.2",
    "169.254.1.1",
    "fe80::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "100.64.0.1",
    "fc00::1",
    "fd12:3456:789a::1",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "255.255.255.255",
    "192.0.2.10",
    "198.51.100.7",
    "203.0.113.9",
    "240.0.0.1",
    "198.18.0.1",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_guard_refuses_internal_addresses_by_default(host):
    with pytest.raises(Refused):
        asyncio.run(Guard().vet(host, 80))


def test_public_address_passes_and_allow_list_opens_exceptions():
    assert asyncio.run(Guard().vet("8.8.8.8", 443)) == "8.8.8.8"
    assert asyncio.run(Guard().vet("2001:4860:4860::8888", 443)) == "2001:4860:4860::8888"
    allow = AllowList.parse(["127.0.0.1", "10.0.0.0/8", "*.corp.example", "[::1]"])
    assert asyncio.run(Guard(allow).vet("127.0.0.1", 80)) == "127.0.0.1"
    assert asyncio.run(Guard(allow).vet("::ffff:127.0.0.1", 80)) == "::ffff:7f00:1"
    assert asyncio.run(Guard(allow).vet("10.2.3.4", 80)) == "10.2.3.4"
    assert asyncio.run(Guard(allow).vet("::1", 80)) == "::1"
    with pytest.raises(Refused):
        asyncio.run(Guard(allow).vet("127.0.0.2", 80))
    with pytest.raises(Refused):
        asyncio.run(Guard(allow).vet("169.254.169.254", 80))

    async def corp(host: str, port: int) -> list[str]:
        return ["10.9.9.9"] if host.endswith("corp.example") else ["192.168.1.1"]

    assert asyncio.run(Guard(AllowList.parse(["*.corp.example"]), corp).vet("db.corp.example", 80)) == "10.9.9.9"
    with pytest.raises(Refused):
        asyncio.run(Guard(AllowList.parse(["*.corp.example"]), corp).vet("corp.example.evil", 80))


def test_a_name_with_any_internal_answer_is_refused():
    async def mixed(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "127.0.0.1"]

    with pytest.raises(Refused, match=r"resolves to 127\.0\.0\.1"):
        asyncio.run(Guard(resolver=mixed).vet("mixed.test", 80))


async def _get(url: str, allow: list[str] | None = None, resolver=None) -> dict:
    kwargs = {"resolver": resolver} if resolver else {}
    client = guarded_client(AllowList.parse(allow or []), **kwargs)
    try:
        return await send(client, HttpRequest("GET", url, {}, {}, timeout=5))
    finally:
        await client.aclose()


def _error(url: str, **kw) -> str:
    with pytest.raises(BusError) as info:
        asyncio.run(_get(url, **kw))
    return info.value.error


def test_requests_to_the_loopback_target_refused_without_reaching_it(http_target):
    port = http_target.server_address[1]
    before = http_target.count("/probe")
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]"):
        assert _error(f"http://{host}:{port}/probe") == "Http.Refused", host
    # httpx already rejects some spellings as URLs: a 422 naming the field, never a request
    with pytest.raises(ValidationFailed) as info:
        asyncio.run(_get(f"http://0177.0.0.1:{port}/probe"))
    assert info.value.details[0]["field"] == "parameters.url"
    assert http_target.count("/probe") == before


def test_allow_listed_loopback_server_reached(http_target):
    result = asyncio.run(_get(f"{http_target.url}/json", allow=["127.0.0.1"]))
    assert result["status"] == 200


def test_redirect_to_loopback_from_an_allow_listed_server_refused(http_target):
    port = http_target.server_address[1]
    for target in (
        "http://10.0.0.1/probe2",
        f"http://127.0.0.2:{port}/probe2",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/probe2",
    ):
        url = f"{http_target.url}/redirect?to={target}"
        assert _error(url, allow=["127.0.0.1"]) == "Http.Refused", target
    assert http_target.count("/probe2") == 0


def test_redirects_within_the_allow_list_are_followed_and_limited(http_target):
    inner = f"{http_target.url}/echo"
    result = asyncio.run(_get(f"{http_target.url}/redirect?to={inner}&code=307", allow=["127.0.0.1"]))
    assert result["body"]["path"] == "/echo"
    loop = f"{http_target.url}/redirect"
    assert _error(loop, allow=["127.0.0.1"]) == "Http.TooManyRedirects"


def test_dns_rebinding_refused(http_target):
    """The name answers a public address first and loopback on the next lookup: the guard
    connects only to what it vetted on the lookup it connects with."""
    port = http_target.server_address[1]
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    before = http_target.count("/rebind")
    assert _error(f"http://rebind.test:{port}/rebind", resolver=rebinding) == "Http.Refused"
    assert http_target.count("/rebind") == before


def test_default_server_refuses_loopback_and_metadata(admin, http_target):
    """The shared server has no allow-list: loopback and metadata are refused end to end."""
    for url in (
        f"{http_target.url}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
    ):
        r = run_action(admin, "http", {"url": url})
        assert error_name(r) == "Http.Refused", url


def test_connection_allow_list_needs_an_admin(admin, server, http_target):
    r = admin.post("/api/v1/keys", json={"name": "op-ssrf", "role": "operator"})
    op_key = r.json()["key"]
    with server.client(op_key) as op:
        r = op.post(
            "/api/v1/connections", json={"name": "op-open", "kind": "http", "config": {"allow_hosts": ["127.0.0.1"]}}
        )
        assert r.status_code == 403
    conn = make_connection(admin, "http", {"base_url": http_target.url, "allow_hosts": ["127.0.0.1"]})
    r = run_action(admin, "http", {"url": "/json"}, connection=conn)
    assert r.status_code == 200, r.text
