"""Issue 15, finding 1 (grants): `permissions.read` (every runtime) and `permissions.net`
widen what user code can reach, so only an admin key may set them (like a connection's
`allow_hosts`), and a read grant must lie under `[functions] read_roots` (none by default).

Before: any operator could deploy a function with `permissions.read: ["/"]` or
`permissions.net: [...]`, and nothing limited which paths could be granted.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverproc import ServerProcess

PY = "def handler(event, context):\n    return open(event['path']).read()\n"
DENO = "export default async function handler(event) { return await Deno.readTextFile(event.path); }\n"
WASM = '(module (memory (export "memory") 1) (func (export "_start")))'
SOURCES = {"python": PY, "deno": DENO, "wasm": WASM}


def outside_tmp_dir(tmp_path: Path) -> Path:
    """Where a granted file can be seen by a worker: with the private /tmp of a root host,
    pytest's tmp_path under /tmp is hidden from workers, so it lives under /srv."""
    if os.geteuid() == 0:
        path = Path("/srv") / f"aionix-test-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True, mode=0o755)
        os.chmod(path, 0o755)
        return path
    return tmp_path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = outside_tmp_dir(tmp_path_factory.mktemp("grants-shared"))
    (path / "data.txt").write_text("shared data")
    os.chmod(path / "data.txt", 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("grants"), env={"AIONIX_FUNCTIONS_READ_ROOTS": str(shared)}).start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(timeout=120.0) as c:
        yield c


@pytest.fixture(scope="module")
def operator(server: ServerProcess, admin: httpx.Client) -> Iterator[httpx.Client]:
    r = admin.post("/api/v1/keys", json={"name": f"op-{uuid.uuid4().hex[:8]}", "role": "operator"})
    assert r.status_code == 201, r.text
    with server.client(r.json()["key"], timeout=120.0) as c:
        yield c


def body(runtime: str, **config: Any) -> dict[str, Any]:
    return {"name": f"g-{uuid.uuid4().hex[:10]}", "runtime": runtime, "code": {"source": SOURCES[runtime]}, **config}


def _field(r: httpx.Response) -> str:
    return r.json()["error"]["details"][0]["field"]


@pytest.mark.parametrize("runtime", ["python", "deno", "wasm"])
def test_an_operator_cannot_grant_reads_or_network(operator: httpx.Client, shared: Path, runtime: str) -> None:
    for kind, grant in (("read", [str(shared)]), ("net", ["example.com"])):
        r = operator.post("/api/v1/functions", json=body(runtime, permissions={kind: grant}))
        assert r.status_code == 403, (kind, r.status_code, r.text)
        assert f"permissions.{kind}" in r.json()["error"]["message"]
        assert _field(r) == f"permissions.{kind}"
    assert operator.post("/api/v1/functions", json=body(runtime)).status_code == 201, "no grant: allowed"


def test_an_operator_cannot_change_the_code_that_runs_with_a_grant(
    admin: httpx.Client, operator: httpx.Client, shared: Path
) -> None:
    made = admin.post("/api/v1/functions", json=body("python", permissions={"read": [str(shared)]}))
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    evil = {"source": "def handler(event, context):\n    return 'replaced'\n"}
    for method, path, payload in (
        ("PUT", f"/api/v1/functions/{name}", {"code": evil}),
        ("POST", f"/api/v1/functions/{name}/versions", {"code": evil}),
        ("PUT", f"/api/v1/functions/{name}", {"config": {"permissions": {"net": ["example.com"]}}}),
    ):
        r = operator.request(method, path, json=payload)
        assert r.status_code == 403, (method, path, r.text)
    # publishing what the admin wrote, and dropping the grant, stay open to operators
    assert operator.post(f"/api/v1/functions/{name}/versions", json={}).status_code == 201
    assert operator.put(f"/api/v1/functions/{name}", json={"config": {"permissions": {}}}).status_code == 200


def test_an_admin_grant_reads_under_a_read_root(admin: httpx.Client, shared: Path) -> None:
    made = admin.post("/api/v1/functions", json=body("python", permissions={"read": [str(shared)]}))
    assert made.status_code == 201, made.text
    r = admin.post(f"/api/v1/functions/{made.json()['name']}/invoke", json={"path": str(shared / "data.txt")})
    assert r.json()["status"] == "SUCCEEDED" and r.json()["result"] == "shared data", r.json()


@pytest.mark.parametrize("runtime", ["python", "deno", "wasm"])
def test_reads_outside_the_read_roots_are_refused(
    admin: httpx.Client, server: ServerProcess, shared: Path, runtime: str
) -> None:
    link = shared / f"link-{runtime}"
    link.symlink_to(server.data_dir)
    try:
        for path in ("/", "/etc", str(server.data_dir), str(server.credentials.parent), "/proc", str(link)):
            r = admin.post("/api/v1/functions", json=body(runtime, permissions={"read": [str(shared), path]}))
            assert r.status_code == 422, (path, r.text)
            assert _field(r) == "permissions.read.1", (path, r.text)
    finally:
        link.unlink()


def test_no_read_root_means_no_read_grant(make_server: Any) -> None:
    proc = make_server().start()
    with proc.client(timeout=120.0) as admin:
        r = admin.post("/api/v1/functions", json=body("python", permissions={"read": ["/usr/share"]}))
        assert r.status_code == 422, r.text
        assert _field(r) == "permissions.read.0" and "read_roots" in r.json()["error"]["message"]
        assert (
            admin.post("/api/v1/functions", json=body("wasm", permissions={"net": ["example.com"]})).status_code == 201
        )


def test_a_grant_outside_the_current_roots_stops_working(make_server: Any, shared: Path) -> None:
    proc = make_server(env={"AIONIX_FUNCTIONS_READ_ROOTS": str(shared)}).start()
    with proc.client(timeout=120.0) as admin:
        made = admin.post("/api/v1/functions", json=body("python", permissions={"read": [str(shared)]}))
        assert made.status_code == 201, made.text
        name = made.json()["name"]
    proc.extra_env.pop("AIONIX_FUNCTIONS_READ_ROOTS")
    proc.restart()
    with proc.client(timeout=120.0) as admin:
        record = admin.post(f"/api/v1/functions/{name}/invoke", json={"path": str(shared / "data.txt")}).json()
    assert record["status"] == "FAILED", record
    assert record["error"]["error"] == "Function.PermissionDenied" and "read_roots" in record["error"]["errorMessage"]


def test_the_config_files_directory_is_never_grantable(make_server: Any, tmp_path: Path) -> None:
    config_dir = tmp_path / "etc-aionix"
    config_dir.mkdir()
    (config_dir / "config.toml").write_text(f'[functions]\nread_roots = ["{tmp_path}"]\n')
    proc = make_server(args=["--config", str(config_dir / "config.toml")]).start()
    with proc.client(timeout=120.0) as admin:
        for path in (config_dir, tmp_path):  # the directory, and a root that contains it
            r = admin.post("/api/v1/functions", json=body("python", permissions={"read": [str(path)]}))
            assert r.status_code == 422, (path, r.text)
            assert _field(r) == "permissions.read.0" and "server's own state" in r.json()["error"]["message"]
