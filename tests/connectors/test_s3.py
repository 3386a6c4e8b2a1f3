"""The s3 kind: our SigV4 signer checked against botocore's, and every operation against moto's
S3 server on loopback with signature checking on."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
import pytest
from serverproc import free_port

from aionix.connectors.kinds.s3 import presign_url, sign
from connectors.services import start_s3
from connectors.support import error_name, make_connection, make_secret, run_action, unique


def test_signature_matches_botocore():
    import hashlib

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"hello"
    req = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:9000/bucket/a%20dir/k%C3%A9%20y.txt?tagging=&x-id=a%20b",
        data=body,
        headers={"content-type": "text/plain"},
    )
    S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "eu-west-1").add_auth(req)
    now = dt.datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    ours = sign(
        "PUT",
        httpx.URL("http://127.0.0.1:9000/bucket/a%20dir/ké y.txt"),
        {"tagging": "", "x-id": "a b"},
        {"content-type": "text/plain"},
        hashlib.sha256(body).hexdigest(),
        access_key="AKID",
        secret_key="SECRET",
        region="eu-west-1",
        now=now,
    )
    assert ours["Authorization"] == req.headers["Authorization"]


@pytest.fixture(scope="module")
def s3(api):
    server = start_s3()
    secret = make_secret(api, server.secret_key)
    bucket = unique("bkt")
    conn = make_connection(
        api,
        "s3",
        {
            "endpoint_url": server.url,
            "access_key_id": server.access_key,
            "secret_access_key_secret": secret,
            "bucket": bucket,
        },
    )
    signed = sign(
        "PUT",
        httpx.URL(f"{server.url}/{bucket}"),
        {},
        {},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        access_key=server.access_key,
        secret_key=server.secret_key,
        region="us-east-1",
        now=dt.datetime.now(dt.UTC),
    )
    assert httpx.put(f"{server.url}/{bucket}", headers=signed).status_code == 200
    yield server, conn, bucket
    server.stop()


def op(api, conn, operation, **params):
    r = run_action(api, "s3", params, connection=conn, operation=operation)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_put_get_list_delete(api, s3):
    _, conn, _ = s3
    key = f"reports/{unique('r')} é.json"
    put = op(api, conn, "put", key=key, content='{"a": 1}', content_type="application/json", metadata={"Owner": "ops"})
    assert put["size"] == 8 and put["etag"]
    got = op(api, conn, "get", key=key)
    assert got["content"] == '{"a": 1}'
    assert got["content_type"] == "application/json"
    assert got["metadata"] == {"owner": "ops"}
    raw = bytes(range(256))
    op(api, conn, "put", key="bin/x", content=base64.b64encode(raw).decode(), encoding="base64")
    assert base64.b64decode(op(api, conn, "get", key="bin/x", encoding="base64")["content"]) == raw
    listed = op(api, conn, "list", prefix="reports/")
    assert [i["key"] for i in listed["items"]] == [key]
    assert op(api, conn, "delete", key=key)["deleted"] is True
    assert error_name(run_action(api, "s3", {"key": key}, connection=conn, operation="get")) == "S3.NoSuchKey"
    assert api.post(f"/api/v1/connections/{conn}/test").json()["ok"] is True


def test_presigned_urls_match_boto3(api, s3):
    """moto's server cannot check presigned URLs with authentication on (it answers 500 to
    boto3's own), so ours are compared with boto3's, signature for signature."""
    from urllib.parse import parse_qs, urlsplit

    import boto3
    from botocore.config import Config

    server, conn, bucket = s3
    for method, client_method in (("GET", "get_object"), ("PUT", "put_object")):
        ours = op(api, conn, "presign", key="pre/x y.txt", method=method, expires_seconds=600)["url"]
        date = parse_qs(urlsplit(ours).query)["X-Amz-Date"][0]
        client = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            config=Config(signature_version="s3v4"),
        )
        import unittest.mock

        fixed = dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
        with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
            theirs = client.generate_presigned_url(
                client_method, Params={"Bucket": bucket, "Key": "pre/x y.txt"}, ExpiresIn=600
            )
        assert parse_qs(urlsplit(theirs).query)["X-Amz-Date"][0] == date
        assert parse_qs(urlsplit(ours).query)["X-Amz-Signature"] == parse_qs(urlsplit(theirs).query)["X-Amz-Signature"]


def test_large_object_truncated(api, s3):
    _, conn, _ = s3
    op(api, conn, "put", key="big.txt", content="b" * 100_000)
    got = op(api, conn, "get", key="big.txt")
    assert got["truncated"] is True
    assert len(got["content"]) == 65536


def test_bad_credentials_server_down_and_bad_parameters(api, s3):
    server, conn, bucket = s3
    wrong = make_connection(
        api,
        "s3",
        {
            "endpoint_url": server.url,
            "access_key_id": server.access_key,
            "secret_access_key_secret": make_secret(api, "wrong"),
            "bucket": bucket,
        },
    )
    assert (
        error_name(run_action(api, "s3", {"key": "x"}, connection=wrong, operation="get")) == "S3.SignatureDoesNotMatch"
    )
    down = make_connection(
        api,
        "s3",
        {
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "access_key_id": "a",
            "secret_access_key_secret": make_secret(api, "x"),
            "bucket": bucket,
        },
    )
    assert error_name(run_action(api, "s3", {"key": "x"}, connection=down, operation="get")) == "S3.ConnectionError"
    r = api.post(
        "/api/v1/actions",
        json={
            "name": unique("s3"),
            "kind": "s3",
            "connection": conn,
            "operation": "presign",
            "parameters": {"key": "x", "expires_seconds": 0},
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.expires_seconds"


def test_presign_is_deterministic_for_a_given_time():
    now = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
    url = presign_url(
        "GET",
        httpx.URL("https://examplebucket.s3.amazonaws.com/test.txt"),
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        expires=86400,
        now=now,
    )
    # the example from AWS's "Authenticating Requests: Using Query Parameters" documentation
    assert url.endswith("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")


def test_timeout_against_a_silent_server(api):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        conn = make_connection(
            api,
            "s3",
            {
                "endpoint_url": f"http://127.0.0.1:{listener.getsockname()[1]}",
                "access_key_id": "a",
                "secret_access_key_secret": make_secret(api, "x"),
                "bucket": "bkt-silent",
            },
        )
        assert (
            error_name(run_action(api, "s3", {"key": "x", "timeout": 0.5}, connection=conn, operation="get"))
            == "S3.Timeout"
        )
    finally:
        listener.close()
