"""The bus contracts `credvault:credential` and `paramstore:param`, on an in-process runtime
(the way the workflow engine and functions call them), and log redaction of resolved values."""

from __future__ import annotations

import logging
import sqlite3

import pgstore
import pytest

from aionix import config as configlib
from aionix.bus import BusError, CallContext
from aionix.errors import AionixError, NotFound
from aionix.params.models import PutParam
from aionix.runtime import Runtime
from aionix.vault.models import CreateSecret, RotateSecret, Rotation

#: the platform sets the caller's TRN on every bus call; CredVault checks it against `readers`
CALLER = "trn:stepflow:default:template/bus-test"


@pytest.fixture
async def rt(tmp_path):
    cfg = configlib.load(
        None,
        env=pgstore.store_env(str(tmp_path / "data")),
        overrides={
            "database.data_path": str(tmp_path / "data"),
            "security.credentials_file": str(tmp_path / "credentials"),
            "vault.rotation_check_seconds": 0.2,
        },
    )
    runtime = Runtime(cfg)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def _audit(rt, action):
    return pgstore.query(
        rt.config.data_dir, "SELECT * FROM audit WHERE tenant = 'default' AND action = ?", (action,), dicts=True
    )


async def test_resolve_returns_the_value_and_audits_the_reader(rt):
    vault = rt.services["vault"]
    await vault.create("default", "k1", CreateSecret(name="api-token", type="api_key", value="tok-abc-123"))
    ctx = CallContext(tenant="default", caller=CALLER)
    reader = "trn:stepflow:default:execution/ex-1"
    value = await rt.bus.invoke("trn:credvault:default:credential/api-token", {"op": "resolve", "reader": reader}, ctx)
    assert value == "tok-abc-123"
    rows = await _audit(rt, "credvault.resolve")
    assert len(rows) == 1 and reader in rows[0]["details"] and "tok-abc-123" not in str(rows)
    with pytest.raises(NotFound):
        await rt.bus.invoke("trn:credvault:default:credential/absent", {"op": "resolve", "reader": reader}, ctx)
    with pytest.raises(NotFound):
        await rt.bus.invoke(
            "trn:credvault:default:credential/api-token", {"op": "resolve"}, CallContext(tenant="other")
        )
    with pytest.raises(AionixError):
        await rt.bus.invoke("trn:credvault:default:credential/api-token", {"op": "steal"}, ctx)


async def test_resolve_by_stage_and_version(rt):
    vault = rt.services["vault"]
    await vault.create("default", None, CreateSecret(name="pw", type="password", value="first-pw"))
    await vault.rotate("default", "pw", None, RotateSecret(value="second-pw"))
    ctx = CallContext(tenant="default", caller=CALLER)
    target = "trn:credvault:default:credential/pw"
    assert await rt.bus.invoke(target, {"op": "resolve", "reader": "x"}, ctx) == "second-pw"
    assert await rt.bus.invoke(target, {"op": "resolve", "stage": "previous"}, ctx) == "first-pw"
    assert await rt.bus.invoke(target, {"op": "resolve", "version": 1}, ctx) == "first-pw"


async def test_resolved_values_are_redacted_from_logs(rt, caplog):
    from aionix.log import redactor

    vault = rt.services["vault"]
    await vault.create(
        "default", None, CreateSecret(name="logged", type="json", value={"user": "u", "password": "json-pw-999"})
    )
    await rt.bus.invoke(
        "trn:credvault:default:credential/logged",
        {"op": "resolve", "reader": "r"},
        CallContext(tenant="default", caller=CALLER),
    )
    caplog.handler.addFilter(redactor)
    try:
        logging.getLogger("aionix.test").error("connecting with json-pw-999 failed")
    finally:
        caplog.handler.removeFilter(redactor)
    assert "json-pw-999" not in caplog.text and "***" in caplog.text


async def test_param_executor_returns_typed_evaluated_values(rt):
    params = rt.services["params"]
    vault = rt.services["vault"]
    await vault.create("default", None, CreateSecret(name="db", type="password", value="param-secret-1"))
    await params.put("default", "/app/port", None, PutParam(type="number", value=8080))
    await params.put("default", "/app/url", None, PutParam(value="{% 'http://h:' & $string($param('/app/port')) %}"))
    await params.put("default", "/app/pw", None, PutParam(type="secret_ref", value="db"))
    await params.put("default", "/app/port", None, PutParam(type="number", value=9090))
    ctx = CallContext(tenant="default", caller=CALLER)
    assert await rt.bus.invoke("trn:paramstore:default:param/app/port", {"op": "get"}, ctx) == 9090
    assert await rt.bus.invoke("trn:paramstore:default:param/app/port", {"op": "get", "version": 1}, ctx) == 8080
    assert await rt.bus.invoke("trn:paramstore:default:param/app/url", {"op": "get"}, ctx) == "http://h:9090"
    assert (
        await rt.bus.invoke(
            "trn:paramstore:default:param/app/pw", {"op": "get", "reader": "trn:aionixfn:default:function/f"}, ctx
        )
        == "param-secret-1"
    )
    with pytest.raises(NotFound):
        await rt.bus.invoke("trn:paramstore:default:param/app/none", {"op": "get"}, ctx)
    meta = await rt.resolvers[("paramstore", "param")](
        __import__("aionix.trn").trn.parse("trn:paramstore:default:param/app/pw")
    )
    assert meta is not None and "value" not in meta
    secret_meta = await rt.resolvers[("credvault", "credential")](
        __import__("aionix.trn").trn.parse("trn:credvault:default:credential/db")
    )
    assert secret_meta["name"] == "db" and "param-secret-1" not in str(secret_meta)


async def test_rotation_target_makes_the_new_value(rt):
    calls = []

    async def rotator(target, payload, ctx):
        calls.append(payload)
        return {"value": f"made-by-rotator-{len(calls)}"}

    rt.bus.register_trn("aionixfn", "function", rotator)
    vault = rt.services["vault"]
    rotation = Rotation(target="trn:aionixfn:default:function/rotate-db")
    await vault.create(
        "default", None, CreateSecret(name="auto", type="password", value="initial-pw", rotation=rotation)
    )
    info = await vault.rotate("default", "auto", None, RotateSecret())
    assert info["stages"] == {"current": 2, "previous": 1, "pending": None}
    assert calls[0]["secret"] == "trn:credvault:default:credential/auto" and calls[0]["current_version"] == 1
    assert "initial-pw" not in str(calls)
    value = await rt.bus.invoke(
        "trn:credvault:default:credential/auto", {"op": "resolve"}, CallContext(tenant="default", caller=CALLER)
    )
    assert value == "made-by-rotator-1"

    async def broken(target, payload, ctx):
        raise BusError("Function.Error.Boom", "rotation failed")

    rt.bus.register_trn("aionixfn", "function", broken)
    with pytest.raises(BusError) as caught:
        await vault.rotate("default", "auto", None, RotateSecret())
    assert "rotate-db" in caught.value.cause
    assert (await vault.get("default", "auto"))["stages"]["current"] == 2


async def test_scheduled_rotation_runs_when_due(rt):
    import asyncio
    import time

    async def rotator(target, payload, ctx):
        return f"scheduled-{time.time()}"

    rt.bus.register_trn("aionixfn", "function", rotator)
    vault = rt.services["vault"]
    rotation = Rotation(target="trn:aionixfn:default:function/r", schedule="* * * * *")
    info = await vault.create(
        "default", None, CreateSecret(name="sched", type="password", value="sched-0", rotation=rotation)
    )
    assert info["next_rotation_at"] > time.time()

    def force_due(tx):
        tx.execute(
            "vault.update_secret",
            {
                **vault._update_params(
                    dict(tx.fetch_one("vault.get_secret", {"tenant": "default", "name": "sched"})), time.time()
                ),
                "next_rotation_at": time.time() - 1,
            },
        )

    await rt.store.transaction(force_due)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (await vault.get("default", "sched"))["stages"]["current"] == 2:
            break
        await asyncio.sleep(0.1)
    after = await vault.get("default", "sched")
    assert after["stages"]["current"] == 2 and after["next_rotation_at"] > time.time()


async def test_writes_racing_a_master_key_rotation_are_never_sealed_under_the_old_key(rt):
    import asyncio

    vault = rt.services["vault"]
    for i in range(20):
        await vault.create("default", None, CreateSecret(name=f"pre{i}", type="password", value=f"pre-value-{i}"))

    async def writer(i: int) -> None:
        await vault.create("default", None, CreateSecret(name=f"race{i}", type="password", value=f"race-value-{i}"))
        await vault.rotate("default", f"race{i}", None, RotateSecret(value=f"race-value-{i}-b"))

    results = await asyncio.gather(
        *(writer(i) for i in range(40)),
        vault.rotate_master_key(None, None, new_key=None, new_passphrase=None),
        vault.rotate_master_key(None, None, new_key=None, new_passphrase=None),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    ids = {row[0] for row in pgstore.query(rt.config.data_dir, "SELECT DISTINCT master_id FROM vault_versions")}
    ((current,),) = pgstore.query(rt.config.data_dir, "SELECT master_id FROM vault_master")
    assert ids == {current}
    ctx = CallContext(tenant="default", caller=CALLER)
    for i in range(40):
        got = await rt.bus.invoke(f"trn:credvault:default:credential/race{i}", {"op": "resolve"}, ctx)
        assert got == f"race-value-{i}-b"
    for i in range(20):
        assert (
            await rt.bus.invoke(f"trn:credvault:default:credential/pre{i}", {"op": "resolve"}, ctx) == f"pre-value-{i}"
        )


async def test_resolve_fails_closed_when_the_audit_commit_fails(rt):
    vault = rt.services["vault"]
    await vault.create("default", None, CreateSecret(name="closed", type="password", value="closed-value-1"))

    def refuse() -> None:
        raise sqlite3.OperationalError("disk I/O error (injected)")

    rt.store.fault_hook = refuse
    try:
        with pytest.raises(AionixError) as caught:
            await rt.bus.invoke(
                "trn:credvault:default:credential/closed",
                {"op": "resolve"},
                CallContext(tenant="default", caller=CALLER),
            )
        assert "closed-value-1" not in str(caught.value)
    finally:
        rt.store.fault_hook = None
    assert await _audit(rt, "credvault.resolve") == []
    assert (
        await rt.bus.invoke(
            "trn:credvault:default:credential/closed", {"op": "resolve"}, CallContext(tenant="default", caller=CALLER)
        )
        == "closed-value-1"
    )
    assert len(await _audit(rt, "credvault.resolve")) == 1
