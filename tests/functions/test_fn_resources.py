"""Function resources: create, deploy-time validation, versions, aliases, weighted routing."""

from __future__ import annotations

import base64
import io
import random
import tarfile
import zipfile

from conftest import create, invoke, unique

from aionix.functions.service import FunctionsService

HELLO = "def handler(event, context):\n    return {'v': 1, 'event': event}\n"


def test_create_get_list_delete(fn) -> None:
    made = create(fn, "python", HELLO, description="says hello", env={"A": "1"})
    name = made["name"]
    assert made["trn"] == f"trn:aionixfn:default:function/{name}"
    assert made["latest_version"] == "1" and made["versions"] == ["1"]
    assert made["config"]["env"] == {"A": "1"} and made["handler"] == "main.handler"
    assert len(made["code_sha256"]) == 64
    got = fn.get(f"/api/v1/functions/{name}").json()
    assert got["description"] == "says hello"
    names = []
    cursor = None
    while True:
        page = fn.get("/api/v1/functions", params={"limit": 50, "cursor": cursor}).json()
        names += [f["name"] for f in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert name in names
    resolved = fn.get("/api/v1/resolve", params={"trn": made["trn"] + ":1"}).json()
    assert resolved["exists"] is True
    assert fn.delete(f"/api/v1/functions/{name}").status_code == 200
    assert fn.get(f"/api/v1/functions/{name}").status_code == 404
    assert fn.post(f"/api/v1/functions/{name}/invoke", json={}).status_code == 404


def test_duplicate_name_is_409(fn) -> None:
    made = create(fn, "python", HELLO)
    create(fn, "python", HELLO, name=made["name"], expect=409)


def test_syntax_error_is_422_naming_file_and_line(fn) -> None:
    r = fn.post(
        "/api/v1/functions",
        json={
            "name": unique("bad"),
            "runtime": "python",
            "code": {"source": "x = 1\ndef handler(:\n", "filename": "app.py"},
            "handler": "app.handler",
        },
    )
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert detail["file"] == "app.py" and detail["line"] == 2 and "SyntaxError" in detail["message"]


def test_missing_handler_is_422(fn) -> None:
    r = fn.post(
        "/api/v1/functions",
        json={"name": unique("bad"), "runtime": "python", "code": {"source": "def other(e, c):\n    return 1\n"}},
    )
    assert r.status_code == 422
    assert "handler function 'handler' is not defined" in r.json()["error"]["message"]
    r = fn.post(
        "/api/v1/functions",
        json={"name": unique("bad"), "runtime": "python", "handler": "nomodule.handler", "code": {"source": HELLO}},
    )
    assert r.status_code == 422 and "nomodule" in r.json()["error"]["message"]


def test_bad_input_is_4xx_naming_the_field(fn) -> None:
    cases = [
        ({"name": "x y", "runtime": "python", "code": {"source": HELLO}}, "name"),
        ({"name": unique("f"), "runtime": "cobol", "code": {"source": HELLO}}, "runtime"),
        ({"name": unique("f"), "runtime": "python", "code": {}}, "code"),
        ({"name": unique("f"), "runtime": "python", "code": {"zip_base64": "!!!"}}, "code.zip_base64"),
        (
            {"name": unique("f"), "runtime": "python", "code": {"zip_base64": base64.b64encode(b"not a zip").decode()}},
            "code.zip_base64",
        ),
        (
            {"name": unique("f"), "runtime": "python", "code": {"source": HELLO}, "limits": {"memory_mb": 1}},
            "limits.memory_mb",
        ),
        ({"name": unique("f"), "runtime": "python", "code": {"source": HELLO}, "env": {"1BAD": "x"}}, "env.1BAD"),
        ({"name": unique("f"), "runtime": "wasm", "code": {"source": "(module"}}, "code"),
        (
            {
                "name": unique("f"),
                "runtime": "wasm",
                "code": {"wasm_base64": base64.b64encode(b"\0asm garbage").decode()},
            },
            "code",
        ),
        ({"name": unique("f"), "runtime": "deno", "code": {"source": "export function notDefault() {}"}}, "code"),
    ]
    for body, field in cases:
        r = fn.post("/api/v1/functions", json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
        assert field in r.text, (field, r.text)


def test_zip_slip_is_refused(fn) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("main.py", HELLO)
        z.writestr("../evil.py", "x = 1")
    r = fn.post(
        "/api/v1/functions",
        json={
            "name": unique("zs"),
            "runtime": "python",
            "code": {"zip_base64": base64.b64encode(buffer.getvalue()).decode()},
        },
    )
    assert r.status_code == 422 and "unsafe file name" in r.text


def test_zip_and_tar_packages_with_modules(fn) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/util.py": "def double(x):\n    return 2 * x\n",
        "main.py": "from pkg.util import double\n\ndef handler(event, context):\n    return double(event['n'])\n",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    made = fn.post(
        "/api/v1/functions",
        json={
            "name": unique("zip"),
            "runtime": "python",
            "code": {"zip_base64": base64.b64encode(buffer.getvalue()).decode()},
        },
    ).json()
    assert invoke(fn, made["name"], {"n": 21})["result"] == 42
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        for k, v in files.items():
            data = v.encode()
            info = tarfile.TarInfo(k)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    made2 = fn.post(
        "/api/v1/functions",
        json={
            "name": unique("tar"),
            "runtime": "python",
            "code": {"tar_base64": base64.b64encode(tar.getvalue()).decode()},
        },
    ).json()
    assert made2["code_sha256"] == made["code_sha256"], "equal code has an equal sha256 whatever the archive"
    assert invoke(fn, made2["name"], {"n": 5})["result"] == 10


def test_versions_are_immutable(fn) -> None:
    made = create(fn, "python", HELLO)
    name = made["name"]
    v1 = fn.get(f"/api/v1/functions/{name}/versions/1").json()
    again = fn.post(f"/api/v1/functions/{name}/versions", json={})
    assert again.status_code == 201 and again.json()["version"] == "1", "republishing identical content creates nothing"
    v2 = fn.post(
        f"/api/v1/functions/{name}/versions",
        json={"code": {"source": HELLO.replace("'v': 1", "'v': 2")}, "description": "second"},
    ).json()
    assert v2["version"] == "2" and v2["sha256"] != v1["sha256"]
    # a config-only change is a new version too
    v3 = fn.post(f"/api/v1/functions/{name}/versions", json={"config": {"env": {"X": "y"}}}).json()
    assert v3["version"] == "3" and v3["code_sha256"] == v2["code_sha256"] and v3["config"]["env"] == {"X": "y"}
    assert fn.get(f"/api/v1/functions/{name}/versions/1").json() == v1
    assert invoke(fn, name, {}, "1")["result"]["v"] == 1
    assert invoke(fn, name, {}, "2")["result"]["v"] == 2
    assert invoke(fn, name, {})["result"]["v"] == 2
    assert [v["version"] for v in fn.get(f"/api/v1/functions/{name}/versions").json()] == ["1", "2", "3"]
    assert fn.post(f"/api/v1/functions/{name}/versions", json={"code": {"source": "def handler(:"}}).status_code == 422
    assert fn.get(f"/api/v1/functions/{name}/versions/1").json() == v1
    assert fn.get(f"/api/v1/functions/{name}/versions/9").status_code == 404


def test_alias_routing_rollback_and_records(fn) -> None:
    made = create(fn, "python", HELLO)
    name = made["name"]
    fn.post(f"/api/v1/functions/{name}/versions", json={"code": {"source": HELLO.replace("'v': 1", "'v': 2")}})
    live = fn.put(f"/api/v1/functions/{name}/aliases/live", json={"version": "2"})
    assert live.status_code == 200 and live.json()["trn"].endswith(f"{name}:live")
    assert invoke(fn, name, {}, "live")["result"]["v"] == 2
    # rollback is instant
    fn.put(f"/api/v1/functions/{name}/aliases/live", json={"version": "1"})
    record = invoke(fn, name, {}, "live")
    assert record["result"]["v"] == 1 and record["version"] == "1" and record["qualifier"] == "live"
    # canary: half of the traffic to version 2, and the record says which ran
    routed = fn.post(f"/api/v1/functions/{name}/aliases/live/traffic", json={"version": "2", "weight": 0.5}).json()
    assert routed["routing"] == {"version": "2", "weight": 0.5}
    seen = {invoke(fn, name, {}, "live")["version"] for _ in range(40)}
    assert seen == {"1", "2"}
    off = fn.post(f"/api/v1/functions/{name}/aliases/live/traffic", json={"version": None, "weight": 0}).json()
    assert off["routing"] is None
    assert fn.put(f"/api/v1/functions/{name}/aliases/live", json={"version": "7"}).status_code == 422
    assert fn.put(f"/api/v1/functions/{name}/aliases/42", json={"version": "1"}).status_code == 422
    assert (
        fn.put(
            f"/api/v1/functions/{name}/aliases/x", json={"version": "1", "routing": {"version": "1", "weight": 0.2}}
        ).status_code
        == 422
    )
    assert fn.post(f"/api/v1/functions/{name}/invoke", params={"qualifier": "nosuch"}, json={}).status_code == 404
    info = fn.get(f"/api/v1/functions/{name}").json()
    assert [a["alias"] for a in info["aliases"]] == ["live"]


def test_weighted_alias_split_within_two_percent() -> None:
    for weight in (0.1, 0.25, 0.5, 0.9):
        rng = random.Random(int(weight * 1000))
        picks = [FunctionsService.pick_version("1", "2", weight, rng) for _ in range(10_000)]
        share = picks.count("2") / len(picks)
        assert abs(share - weight) <= 0.02, (weight, share)
    assert {FunctionsService.pick_version("1", None, None) for _ in range(100)} == {"1"}
    assert {FunctionsService.pick_version("1", "2", 1.0) for _ in range(100)} == {"2"}


def test_update_latest_then_publish(fn) -> None:
    made = create(fn, "python", HELLO, publish=False)
    name = made["name"]
    assert made["latest_version"] is None and made["versions"] == []
    assert invoke(fn, name, {})["result"]["v"] == 1, "$LATEST runs without a published version"
    updated = fn.put(
        f"/api/v1/functions/{name}",
        json={
            "code": {"source": HELLO.replace("'v': 1", "'v': 5")},
            "config": {"env": {"E": "1"}, "description": "five"},
        },
    )
    assert updated.status_code == 200 and updated.json()["description"] == "five" and updated.json()["versions"] == []
    assert invoke(fn, name, {})["result"]["v"] == 5
    assert fn.put(f"/api/v1/functions/{name}", json={"code": {"source": "def handler(:"}}).status_code == 422
    assert invoke(fn, name, {})["result"]["v"] == 5, "a rejected update changes nothing"
    v1 = fn.post(f"/api/v1/functions/{name}/versions", json={}).json()
    assert v1["version"] == "1" and v1["config"]["env"] == {"E": "1"}
    assert fn.put(f"/api/v1/functions/{name}", json={"config": {"env": {}}}).status_code == 200
    assert fn.get(f"/api/v1/functions/{name}/versions/1").json()["config"]["env"] == {"E": "1"}, "versions are frozen"


def test_delete_alias(fn) -> None:
    name = create(fn, "python", HELLO)["name"]
    assert fn.put(f"/api/v1/functions/{name}/aliases/prod", json={"version": "1"}).status_code == 200
    gone = fn.delete(f"/api/v1/functions/{name}/aliases/prod")
    assert gone.status_code == 200 and gone.json()["alias"] == "prod"
    assert fn.get(f"/api/v1/functions/{name}/aliases/prod").status_code == 404
    assert fn.delete(f"/api/v1/functions/{name}/aliases/prod").status_code == 404
    assert invoke(fn, name, {}, "1")["result"]["v"] == 1
