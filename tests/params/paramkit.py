"""Helpers shared by the ParamStore tests."""

from __future__ import annotations

import uuid

import httpx
from serverproc import ServerProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def role_client(server: ServerProcess, admin: httpx.Client, tenant: str, role: str) -> httpx.Client:
    r = admin.post("/api/v1/keys", json={"name": unique(role), "role": role, "tenant": tenant})
    assert r.status_code == 201, r.text
    return server.client(r.json()["key"])


def put(client: httpx.Client, path: str, value: object, type_: str = "string", **extra: object) -> dict:
    r = client.put(f"/api/v1/params{path}", json={"type": type_, "value": value, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def get(client: httpx.Client, path: str, **params: object) -> httpx.Response:
    return client.get(f"/api/v1/params{path}", params=params)
