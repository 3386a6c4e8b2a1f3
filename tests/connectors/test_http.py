"""The http kind against a real loopback HTTP server, through the real Aionix server."""

from __future__ import annotations

from connectors.support import error_name, make_action, make_connection, run_action


def test_get_parses_json_and_sends_query_and_headers(api, http_target):
    r = run_action(
        api, "http", {"url": f"{http_target.url}/echo", "query": {"a": "1", "b": [2, 3]}, "headers": {"X-Test": "yes"}}
    )
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["status"] == 200
    assert result["truncated"] is False
    assert result["headers"]["content-type"] == "application/json"
    body = result["body"]
    assert body["method"] == "GET"
    assert body["query"] == {"a": "1", "b": ["2", "3"]}
    assert body["headers"]["x-test"] == "yes"


def test_post_json_form_and_raw_bodies(api, http_target):
    r = run_action(api, "http", {"method": "POST", "url": f"{http_target.url}/echo", "json": {"x": [1, 2]}})
    echoed = r.json()["result"]["body"]
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["body"] == '{"x":[1,2]}'
    r = run_action(api, "http", {"method": "PUT", "url": f"{http_target.url}/echo", "form": {"a": "b c", "n": 3}})
    echoed = r.json()["result"]["body"]
    assert echoed["method"] == "PUT"
    assert echoed["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert echoed["body"] == "a=b+c&n=3"
    r = run_action(
        api,
        "http",
        {
            "method": "PATCH",
            "url": f"{http_target.url}/echo",
            "body": "raw text",
            "headers": {"Content-Type": "text/csv"},
        },
    )
    echoed = r.json()["result"]["body"]
    assert echoed["body"] == "raw text"
    assert echoed["headers"]["content-type"] == "text/csv"


def test_text_response_is_text(api, http_target):
    r = run_action(api, "http", {"url": f"{http_target.url}/text"})
    assert r.json()["result"]["body"] == "hello text"


def test_parameters_are_expressions_over_the_input(api, http_target):
    name = make_action(
        api, "http", {"url": "{% 'URL/echo?id=' & input.id %}".replace("URL", http_target.url), "method": "DELETE"}
    )
    r = api.post(f"/api/v1/actions/{name}/execute", json={"input": {"id": 42}})
    assert r.status_code == 200, r.text
    body = r.json()["result"]["body"]
    assert body["method"] == "DELETE"
    assert body["query"] == {"id": "42"}


def test_non_2xx_fails_with_status_error_name(api, http_target):
    for code in (404, 500, 429):
        r = run_action(api, "http", {"url": f"{http_target.url}/status/{code}"})
        assert r.status_code == 502
        assert error_name(r) == f"Http.Status.{code}"


def test_timeout(api, http_target):
    r = run_action(api, "http", {"url": f"{http_target.url}/slow?s=3", "timeout": 0.5})
    assert error_name(r) == "Http.Timeout"


def test_server_down_is_a_connection_error(api):
    from serverproc import free_port

    r = run_action(api, "http", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert error_name(r) == "Http.ConnectionError"


def test_large_body_truncated_with_a_flag(api, http_target):
    r = run_action(api, "http", {"url": f"{http_target.url}/big?n=200000"})
    result = r.json()["result"]
    assert result["truncated"] is True
    assert len(result["body"]) == 65536  # [connectors] max_result_bytes of this server
    r = run_action(api, "http", {"url": f"{http_target.url}/big?n=100", "max_response_bytes": 10})
    assert r.json()["result"]["body"] == "x" * 10
    assert r.json()["result"]["truncated"] is True


def test_bad_parameters_name_the_field(api, http_target):
    r = api.post(
        "/api/v1/actions",
        json={"name": "bad-method", "kind": "http", "parameters": {"url": "http://x", "method": "FETCH"}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.method"
    r = api.post("/api/v1/actions", json={"name": "no-url", "kind": "http", "parameters": {"method": "GET"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.url"
    r = api.post(
        "/api/v1/actions", json={"name": "extra", "kind": "http", "parameters": {"url": "http://x", "bogus": 1}}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.bogus"
    r = run_action(api, "http", {"url": "ftp://127.0.0.1/x"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.url"
    r = api.post("/api/v1/actions", json={"name": "bad-expr", "kind": "http", "parameters": {"url": "{% (1 + %}"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.url"


def test_graphql_helper(api, http_target):
    r = run_action(
        api,
        "http",
        {"url": f"{http_target.url}/graphql", "query": "query { echo }", "variables": {"v": 1}},
        operation="graphql",
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["body"] == {"data": {"echo": {"v": 1}}}
    r = run_action(api, "http", {"url": f"{http_target.url}/graphql", "query": "query { fail }"}, operation="graphql")
    assert error_name(r) == "Http.GraphQLError"


def test_connection_base_url_headers_and_test(api, http_target):
    conn = make_connection(api, "http", {"base_url": f"{http_target.url}/", "headers": {"X-Conn": "c1"}})
    r = run_action(api, "http", {"url": "echo"}, connection=conn)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["body"]["headers"]["x-conn"] == "c1"
    test = api.post(f"/api/v1/connections/{conn}/test").json()
    assert test["ok"] is True
    assert test["latency_ms"] >= 0


def test_connection_test_reports_server_down(api):
    from serverproc import free_port

    conn = make_connection(api, "http", {"base_url": f"http://127.0.0.1:{free_port()}"})
    test = api.post(f"/api/v1/connections/{conn}/test").json()
    assert test["ok"] is False
    assert test["error"] == "Http.ConnectionError"


def test_secret_reference_without_vault_or_secret_fails_clearly(api, http_target):
    conn = make_connection(
        api, "http", {"base_url": http_target.url, "auth": {"type": "bearer", "token_secret": "no-such-token"}}
    )
    r = run_action(api, "http", {"url": "/auth"}, connection=conn)
    assert error_name(r) == "Connection.SecretError"
    assert "no-such-token" in r.json()["error"]["message"]


def test_plaintext_secrets_are_refused_in_connections(api):
    r = api.post(
        "/api/v1/connections",
        json={"name": "plain", "kind": "http", "config": {"auth": {"type": "bearer", "token": "abc"}}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.auth.token"
    r = api.post(
        "/api/v1/connections",
        json={"name": "plain2", "kind": "http", "config": {"auth": {"type": "bearer", "token_secret": "trn:bad"}}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.auth.token_secret"
    oauth = {"type": "oauth2", "token_url": "file:///etc/passwd", "client_id": "c"}
    r = api.post("/api/v1/connections", json={"name": "oauth-bad-url", "kind": "http", "config": {"auth": oauth}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.auth.token_url"


def test_bus_contract_http_kind_with_idempotency_key(http_target, tmp_path):
    """In process, as the workflow engine calls it: bus kind "http", the payload of the
    contract, the context's idempotency key sent as a header, `{status, headers, body}` back."""
    import asyncio
    from types import SimpleNamespace

    from aionix import config as configlib
    from aionix.bus import Bus, BusError, CallContext
    from aionix.connectors.plugin import create
    from aionix.store.sqlite import SQLiteStore

    async def go():
        cfg = configlib.load(
            env={"AIONIX_CONNECTORS_ALLOW_HOSTS": "127.0.0.1", "AIONIX_DATABASE_DATA_PATH": str(tmp_path)}
        )
        store = SQLiteStore(tmp_path / "t.db")
        await store.start()
        rt = SimpleNamespace(config=cfg, store=store, bus=Bus(), health={}, base_url="", services={}, resolvers={})
        plugin = create(rt)
        ctx = CallContext(tenant="t", idempotency_key="exec-1:Fetch:2")
        payload = {
            "method": "POST",
            "url": f"{http_target.url}/echo",
            "headers": {"X-A": "1"},
            "query": {"q": "v"},
            "json": {"n": 1},
            "timeout": 5,
        }
        try:
            ok = await rt.bus.invoke("http", payload, ctx)
            try:
                await rt.bus.invoke("http", {"url": f"{http_target.url}/status/503"}, ctx)
            except BusError as exc:
                failed = exc.error
            return ok, failed
        finally:
            await plugin.stop()
            await store.close()

    ok, failed = asyncio.run(go())
    assert set(ok) >= {"status", "headers", "body"}
    echoed = ok["body"]
    assert echoed["headers"]["idempotency-key"] == "exec-1:Fetch:2"
    assert echoed["headers"]["x-a"] == "1" and echoed["query"] == {"q": "v"} and echoed["body"] == '{"n":1}'
    assert failed == "Http.Status.503"


def test_connectors_lists_kinds_operations_and_schemas(api):
    kinds = {k["kind"]: k for k in api.get("/api/v1/connectors").json()}
    http = kinds["http"]
    ops = {o["name"]: o for o in http["operations"]}
    assert {"request", "graphql"} <= set(ops)
    assert "url" in ops["request"]["parameters"]["properties"]
    assert ops["request"]["result"]["required"] == ["status", "headers", "body", "truncated"]
    assert "base_url" in http["connection_schema"]["properties"]


def test_bearer_basic_and_api_key_auth_from_the_vault(api, http_target):
    from connectors.support import make_secret

    token = make_secret(api, "good-token", type="api_key")
    conn = make_connection(
        api, "http", {"base_url": http_target.url, "auth": {"type": "bearer", "token_secret": token}}
    )
    r = run_action(api, "http", {"url": "/auth"}, connection=conn)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["body"] == {"ok": True}
    wrong = make_connection(
        api,
        "http",
        {
            "base_url": http_target.url,
            "auth": {"type": "bearer", "token_secret": make_secret(api, "bad", type="api_key")},
        },
    )
    assert error_name(run_action(api, "http", {"url": "/auth"}, connection=wrong)) == "Http.Status.401"
    pw = make_secret(api, "s3cret")
    basic = make_connection(
        api, "http", {"base_url": http_target.url, "auth": {"type": "basic", "username": "ann", "password_secret": pw}}
    )
    echoed = run_action(api, "http", {"url": "/echo"}, connection=basic).json()["result"]["body"]
    # the request carried the credential; the answer that echoes it back has it masked
    assert http_target.requests[-1]["headers"]["authorization"] == "Basic YW5uOnMzY3JldA=="
    assert "YW5uOnMzY3JldA" not in echoed["headers"]["authorization"]
    key = make_connection(
        api,
        "http",
        {"base_url": http_target.url, "auth": {"type": "api_key", "header": "X-Key", "value_secret": token}},
    )
    echoed = run_action(api, "http", {"url": "/echo"}, connection=key).json()["result"]["body"]
    assert http_target.requests[-1]["headers"]["x-key"] == "good-token" and echoed["headers"]["x-key"] == "***"
    r = api.get(f"/api/v1/connections/{conn}")
    assert "good-token" not in r.text


def test_connection_credentials_stay_on_their_origin(api, http_target):
    from connectors.support import make_secret, start_http

    other = start_http()
    try:
        key = make_secret(api, "k-123", type="api_key")
        conn = make_connection(
            api,
            "http",
            {"base_url": http_target.url, "auth": {"type": "api_key", "header": "X-Key", "value_secret": key}},
        )
        r = run_action(api, "http", {"url": f"{other.url}/echo"}, connection=conn)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"] == "parameters.url"
        # a redirect to another origin loses the credential header
        r = run_action(api, "http", {"url": f"/redirect?to={other.url}/echo"}, connection=conn)
        assert r.status_code == 200, r.text
        assert "x-key" not in r.json()["result"]["body"]["headers"]
        assert other.count("/echo") == 1
    finally:
        other.shutdown()
