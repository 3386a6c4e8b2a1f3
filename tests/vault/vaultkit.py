"""Helpers shared by the CredVault tests: keys of each role in a tenant of their own."""

from __future__ import annotations

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
    return pgstore.query(data_dir, sql, params)  # the SQLite file, or the PostgreSQL database


def db_execute(data_dir: Path, sql: str, params: tuple = ()) -> None:
    pgstore.execute(data_dir, sql, params)
