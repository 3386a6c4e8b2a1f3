"""Issue 27.1: file roots are split per tenant. As an operator of a second tenant, nothing of the
first tenant's files or SQLite databases can be read, written, listed or deleted, through any
path form; a connection saved outside its tenant's part is refused and `aio admin doctor` names it."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import httpx
import pytest
from connectors.support import unique
from serverproc import ServerProcess


def _key(admin: httpx.Client, tenant: str, role: str = "operator") -> str:
    r = admin.post("/api/v1/keys", json={"name": f"{tenant}-{role}", "role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def _fs(client: httpx.Client, operation: str, connection: str | None = None, **params: object) -> httpx.Response:
    """Run the fs kind through a saved action, as the tenant of `client`."""
    body: dict[str, object] = {"name": unique("fs"), "kind": "fs", "operation": operation, "parameters": params}
    if connection:
        body["connection"] = connection
    r = client.post("/api/v1/actions", json=body)
    if r.status_code != 201:
        return r
    return client.post(f"/api/v1/actions/{body['name']}/execute", json={})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("tenant-files")
    fs_root, sql_root = base / "fs", base / "sql"
    fs_root.mkdir()
    sql_root.mkdir()
    server = ServerProcess(
        base / "server",
        env={"AIONIX_CONNECTORS_FS_ROOTS": str(fs_root), "AIONIX_CONNECTORS_SQL_ROOTS": str(sql_root)},
    ).start()
    with server.client() as admin:
        keys = {t: _key(admin, t) for t in ("alpha", "beta")}
        keys["alpha-admin"] = _key(admin, "alpha", "admin")
    clients = {name: server.client(key) for name, key in keys.items()}
    yield {"server": server, "fs": fs_root, "sql": sql_root, **clients}
    for c in clients.values():
        c.close()
    server.stop()


def test_each_tenant_gets_its_own_private_part(world):
    a, b = world["alpha"], world["beta"]
    r = _fs(a, "write", path="orders/today.csv", content="alpha-only")
    assert r.status_code == 200, r.text
    part = world["fs"] / "alpha"
    assert (part / "orders" / "today.csv").read_text() == "alpha-only"
    assert stat.S_IMODE(part.stat().st_mode) == 0o700
    listing = _fs(b, "list", path=".", recursive=True)
    assert listing.status_code == 200, listing.text
    assert listing.json()["result"]["entries"] == []
    r = _fs(b, "read", path="orders/today.csv")
    assert r.status_code in (502, 200) and "alpha-only" not in r.text


@pytest.mark.parametrize(
    "path",
    ["../alpha/orders/today.csv", "{fs}/alpha/orders/today.csv", "a/../../alpha/orders/today.csv", "{fs}/alpha"],
)
def test_other_tenants_files_unreachable_by_any_path_form(world, path):
    a, b = world["alpha"], world["beta"]
    assert _fs(a, "write", path="orders/today.csv", content="alpha-only").status_code == 200
    raw = path.format(fs=world["fs"])
    for op, extra in (("read", {}), ("stat", {}), ("list", {}), ("write", {"content": "pwned"}), ("delete", {})):
        r = _fs(b, op, path=raw, **extra)
        assert r.status_code == 422, (op, raw, r.text)
        assert r.json()["error"]["details"][0]["field"] == "parameters.path"
    assert (world["fs"] / "alpha" / "orders" / "today.csv").read_text() == "alpha-only"


def test_connections_cannot_be_rooted_in_another_tenants_part(world):
    b = world["beta"]
    for root in (str(world["fs"] / "alpha"), "../alpha", str(world["fs"]), str(world["fs"] / "alpha" / "orders")):
        r = b.post("/api/v1/connections", json={"name": "steal", "kind": "fs", "config": {"root": root}})
        assert r.status_code == 403, (root, r.text)
        assert "outside tenant beta's part" in r.json()["error"]["message"]
    r = b.post("/api/v1/connections", json={"name": "steal", "kind": "fs", "config": {"root": "/etc"}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "config.root"
    assert b.get("/api/v1/connections/steal").status_code == 404


def test_symlinks_planted_in_a_part_lead_nowhere(world):
    a = world["alpha"]
    b_part = world["fs"] / "beta"
    b_part.mkdir(exist_ok=True)
    (b_part / "theirs.txt").write_text("beta-only")
    a_part = world["fs"] / "alpha"
    a_part.mkdir(exist_ok=True)
    link = a_part / "to-beta"
    if not link.exists():
        link.symlink_to(b_part)  # as the first tenant would, could it make links
    r = _fs(a, "read", path="to-beta/theirs.txt")
    assert r.status_code == 422, r.text
    r = a.post("/api/v1/connections", json={"name": "via-link", "kind": "fs", "config": {"root": "to-beta"}})
    assert r.status_code == 403, r.text
    etc = a_part / "to-etc"
    if not etc.exists():
        etc.symlink_to("/etc")
    assert _fs(a, "read", path="to-etc/passwd").status_code == 422


def test_sqlite_databases_stay_in_their_tenant(world):
    a, b = world["alpha"], world["beta"]
    (world["sql"] / "alpha").mkdir(exist_ok=True, mode=0o700)
    db_path = world["sql"] / "alpha" / "books.db"
    db = sqlite3.connect(db_path)
    db.executescript("CREATE TABLE IF NOT EXISTS ledger (amount INT); INSERT INTO ledger VALUES (42);")
    db.close()
    r = a.post(
        "/api/v1/connections", json={"name": "books", "kind": "sql", "config": {"driver": "sqlite", "path": "books.db"}}
    )
    assert r.status_code == 201, r.text
    for path in (str(db_path), "../alpha/books.db", f"{world['sql']}/beta/../alpha/books.db"):
        r = b.post(
            "/api/v1/connections", json={"name": "books", "kind": "sql", "config": {"driver": "sqlite", "path": path}}
        )
        assert r.status_code == 403, (path, r.text)
    r = b.post(
        "/api/v1/connections", json={"name": "books", "kind": "sql", "config": {"driver": "sqlite", "path": "books.db"}}
    )
    assert r.status_code == 201, r.text  # beta's own books.db, in beta's part
    r = b.post(
        "/api/v1/actions",
        json={
            "name": "peek",
            "kind": "sql",
            "connection": "books",
            "parameters": {"sql": "SELECT name FROM sqlite_master"},
        },
    )
    assert r.status_code == 201, r.text
    out = b.post("/api/v1/actions/peek/execute", json={})
    assert out.status_code == 200, out.text
    assert out.json()["result"]["rows"] == []  # a new, empty database: not alpha's ledger


def test_shared_root_needs_a_cross_tenant_admin(world):
    shared = world["fs"] / "exchange"
    shared.mkdir(exist_ok=True)
    r = world["alpha-admin"].post(
        "/api/v1/connections",
        json={"name": "exchange", "kind": "fs", "config": {"root": str(shared), "shared_root": True}},
    )
    assert r.status_code == 403, r.text
    with world["server"].client(headers={"X-Aionix-Tenant": "alpha"}) as cross:
        r = cross.post(
            "/api/v1/connections",
            json={"name": "exchange", "kind": "fs", "config": {"root": str(shared), "shared_root": True}},
        )
        assert r.status_code == 201, r.text
    r = world["alpha"].post(
        "/api/v1/actions",
        json={
            "name": "drop",
            "kind": "fs",
            "connection": "exchange",
            "operation": "write",
            "parameters": {"path": "x.txt", "content": "hi"},
        },
    )
    assert r.status_code == 201, r.text
    assert world["alpha"].post("/api/v1/actions/drop/execute", json={}).status_code == 200
    assert (shared / "x.txt").read_text() == "hi"
    # an operator re-saving it cannot keep the grant
    r = world["alpha"].put("/api/v1/connections/exchange", json={"config": {"root": str(shared), "shared_root": True}})
    assert r.status_code == 403, r.text


def test_the_servers_own_files_are_never_a_root(tmp_path):
    """Even a cross-tenant admin's shared root cannot reach the data dir (the store itself)."""
    server = ServerProcess(tmp_path / "srv", env={"AIONIX_CONNECTORS_SQL_ROOTS": str(tmp_path / "srv")}).start()
    try:
        with server.client() as admin:
            for path in (str(server.data_dir / "aionix.db"), "../data/aionix.db"):
                r = admin.post(
                    "/api/v1/connections",
                    json={
                        "name": "store",
                        "kind": "sql",
                        "config": {"driver": "sqlite", "path": path, "shared_root": True},
                    },
                )
                assert r.status_code == 403, (path, r.text)
                assert "server's own files" in r.json()["error"]["message"]
    finally:
        server.stop()


def test_legacy_connection_outside_the_part_is_refused_and_reported(tmp_path):
    fs_root = tmp_path / "fs"
    (fs_root / "old-exports").mkdir(parents=True)
    (fs_root / "old-exports" / "report.txt").write_text("old")
    server = ServerProcess(tmp_path / "srv", env={"AIONIX_CONNECTORS_FS_ROOTS": str(fs_root)}).start()
    try:
        # a connection saved before roots were split per tenant: written as the old server did
        server.stop()
        db = sqlite3.connect(server.data_dir / "aionix.db")
        db.execute(
            "INSERT INTO connections (tenant, name, kind, config, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 0)",
            ("default", "legacy", "fs", '{"root": "%s"}' % (fs_root / "old-exports"), ""),
        )
        db.commit()
        db.close()
        server.start()
        with server.client() as admin:
            r = admin.post(
                "/api/v1/actions",
                json={
                    "name": "old",
                    "kind": "fs",
                    "connection": "legacy",
                    "operation": "read",
                    "parameters": {"path": "report.txt"},
                },
            )
            assert r.status_code == 201, r.text
            r = admin.post("/api/v1/actions/old/execute", json={})
            assert r.status_code == 403, r.text
            assert "aio admin doctor" in r.json()["error"]["message"]
            report = admin.get("/api/v1/admin/doctor").json()
            assert report["ok"] is False
            (problem,) = report["problems"]
            assert problem["resource"] == "trn:openact:default:connection/fs/legacy"
            assert problem["check"] == "connection-placement"
            # the admin moves it: then it works and the doctor is quiet
            (fs_root / "default" / "exports").mkdir(parents=True, exist_ok=True)
            Path(fs_root / "default" / "exports" / "report.txt").write_text("moved")
            r = admin.put("/api/v1/connections/legacy", json={"config": {"root": "exports"}})
            assert r.status_code == 200, r.text
            assert admin.post("/api/v1/actions/old/execute", json={}).json()["result"]["content"] == "moved"
            quiet = admin.get("/api/v1/admin/doctor").json()
            assert quiet["ok"] is True and quiet["problems"] == []
            assert [c["status"] for c in quiet["checks"] if c["check"] == "connectors"] == ["ok"]
    finally:
        server.stop()
