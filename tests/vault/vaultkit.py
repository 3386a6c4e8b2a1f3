"""Helpers shared by the CredVault tests: keys of each role in a tenant of their own."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx
import pgstore
from serverproc import ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def role_client(server: ServerProcess, admin: httpx.Client, tenant: str, role: str) -> httpx.Client:
    """A client whose key has `role` in `tenant` (made with the cross-tenant initial admin key)."""
    r = admin.post("/api/v1/keys", json={"name": unique(role), "role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return server.client(r.json()["key"])


def create_secret(client: httpx.Client, name: str, value: object, type_: str = "password", **extra: object) -> dict:
    r = client.post("/api/v1/secrets", json={"name": name, "type": type_, "value": value, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def reveal(client: httpx.Client, name: str, **params: object) -> httpx.Response:
    return client.post(f"/api/v1/secrets/{name}/reveal", params=params)


def db_rows(data_dir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    if pgstore.database_of(data_dir):  # AIONIX_TEST_STORE=postgres
        return pgstore.run_sql(data_dir, sql, params)
    conn = sqlite3.connect(data_dir / "aionix.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def db_execute(data_dir: Path, sql: str, params: tuple = ()) -> None:
    if pgstore.database_of(data_dir):
        pgstore.run_sql(data_dir, sql, params, write=True)
        return
    conn = sqlite3.connect(data_dir / "aionix.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()
