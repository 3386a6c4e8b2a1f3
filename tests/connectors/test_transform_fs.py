"""The transform (pure JSONata) and fs (files under roots) kinds."""

from __future__ import annotations

import base64

from connectors.support import error_name, make_action, make_connection, run_action, unique


def test_transform_evaluates_over_data_and_input(api):
    r = run_action(
        api,
        "transform",
        {"expression": "$sum(items.price) * rate", "data": "{% input %}", "bindings": {}},
        input={"items": [{"price": 2}, {"price": 3}], "rate": 10},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == 50
    r = run_action(api, "transform", {"expression": "missing.field", "data": {"a": 1}})
    assert r.json()["result"] is None


def test_transform_syntax_error_names_the_field_and_runtime_error_is_named(api):
    r = api.post("/api/v1/actions", json={"name": "tx-bad", "kind": "transform", "parameters": {"expression": "(1 +"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.expression"
    r = run_action(api, "transform", {"expression": "$number('abc') + $error('nope')"})
    assert error_name(r) == "Transform.Error"


def test_fs_write_read_list_stat_delete(api, roots):
    conn = make_connection(api, "fs", {"root": str(roots["fs_part"])})
    r = run_action(api, "fs", {"path": "out/a.txt", "content": "héllo"}, connection=conn, operation="write")
    assert r.status_code == 200, r.text
    assert (roots["fs_part"] / "out" / "a.txt").read_text() == "héllo"
    r = run_action(api, "fs", {"path": "out/a.txt", "content": "!", "append": True}, connection=conn, operation="write")
    r = run_action(api, "fs", {"path": "out/a.txt"}, connection=conn, operation="read")
    assert r.json()["result"]["content"] == "héllo!"
    assert r.json()["result"]["truncated"] is False
    raw = base64.b64encode(b"\x00\x01\xff").decode()
    run_action(
        api, "fs", {"path": "out/b.bin", "content": raw, "encoding": "base64"}, connection=conn, operation="write"
    )
    r = run_action(api, "fs", {"path": "out/b.bin", "encoding": "base64"}, connection=conn, operation="read")
    assert r.json()["result"]["content"] == raw
    r = run_action(api, "fs", {"path": "out", "pattern": "*.txt"}, connection=conn, operation="list")
    assert [e["name"] for e in r.json()["result"]["entries"]] == ["a.txt"]
    r = run_action(api, "fs", {"path": "out/b.bin"}, connection=conn, operation="stat")
    assert r.json()["result"]["size"] == 3
    r = run_action(api, "fs", {"path": "out/b.bin"}, connection=conn, operation="delete")
    assert not (roots["fs_part"] / "out" / "b.bin").exists()
    r = run_action(api, "fs", {"path": "out/b.bin"}, connection=conn, operation="read")
    assert error_name(r) == "Fs.NotFound"


def test_fs_without_connection_uses_the_tenants_part_of_the_roots(api, roots):
    (roots["fs_part"] / "plain.txt").write_text("from root")
    r = run_action(api, "fs", {"path": "plain.txt"}, operation="read")
    assert r.json()["result"]["content"] == "from root"
    r = run_action(api, "fs", {"path": str(roots["fs_part"] / "plain.txt")}, operation="read")
    assert r.json()["result"]["content"] == "from root"
    # the root itself (shared by every tenant) is not the tenant's
    (roots["fs"] / "shared.txt").write_text("server-wide")
    r = run_action(api, "fs", {"path": str(roots["fs"] / "shared.txt")}, operation="read")
    assert r.status_code == 422, r.text


def test_fs_path_traversal_refused(api, roots, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("nope")
    (roots["fs_part"] / "link").symlink_to(tmp_path)
    for path in ("../secret.txt", "a/../../x", str(secret), "/etc/passwd", "link/secret.txt"):
        for op, extra in (("read", {}), ("write", {"content": "x"}), ("delete", {})):
            r = run_action(api, "fs", {"path": path, **extra}, operation=op)
            assert r.status_code == 422, (path, op, r.text)
            assert r.json()["error"]["details"][0]["field"] == "parameters.path"
    assert secret.read_text() == "nope"


def test_fs_connection_root_outside_the_roots_refused(api, tmp_path):
    r = api.post("/api/v1/connections", json={"name": unique("fs"), "kind": "fs", "config": {"root": str(tmp_path)}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.root"


def test_fs_large_file_truncated(api, roots):
    (roots["fs_part"] / "big.txt").write_text("y" * 100_000)
    r = run_action(api, "fs", {"path": "big.txt"}, operation="read")
    result = r.json()["result"]
    assert result["truncated"] is True
    assert len(result["content"]) == 65536
    assert result["size"] == 100_000


def test_fs_bad_parameters_name_the_field(api):
    name = make_action(api, "fs", {"path": "x.txt", "encoding": "base64", "content": "!!notbase64"}, operation="write")
    r = api.post(f"/api/v1/actions/{name}/execute", json={})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "parameters.content"
    r = api.post("/api/v1/actions", json={"name": "fs-noop", "kind": "fs", "parameters": {"path": "x"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "operation"


def test_transform_of_a_large_input(api):
    items = [{"price": i % 7, "name": f"item-{i}"} for i in range(20_000)]
    r = api.post(
        "/api/v1/actions",
        json={
            "name": unique("tx-big"),
            "kind": "transform",
            "parameters": {"expression": "$sum(items.price)", "data": "{% input %}"},
        },
    )
    assert r.status_code == 201, r.text
    r = api.post(f"/api/v1/actions/{r.json()['name']}/execute", json={"input": {"items": items}})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == sum(i % 7 for i in range(20_000))


def test_fs_connection_test_and_kinds_without_connections(api, roots, tmp_path):
    good = make_connection(api, "fs", {"root": str(roots["fs_part"])})
    assert api.post(f"/api/v1/connections/{good}/test").json()["ok"] is True
    relative = make_connection(api, "fs", {"root": "reports"})  # taken inside the tenant's part
    test = api.post(f"/api/v1/connections/{relative}/test").json()
    assert test["ok"] is False and str(roots["fs_part"] / "reports") in test["detail"]
    (roots["fs_part"] / "reports").mkdir()
    assert api.post(f"/api/v1/connections/{relative}/test").json()["ok"] is True
    r = api.post("/api/v1/connections", json={"name": unique("tx"), "kind": "transform", "config": {}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "kind"
