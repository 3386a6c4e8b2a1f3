import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aionix.bus import Bus, BusError, CallContext, TargetTimeout
from aionix.errors import BadRequest, NotFound
from aionix.trn import TRN


@pytest.fixture
def bus():
    return Bus(CollectorRegistry(), default_timeout=5)


async def test_routes_trn_targets_and_action_kinds(bus):
    seen = []

    async def fn(target, payload, ctx):
        seen.append((target, payload, ctx.trace_id))
        return {"ok": payload}

    async def http(target, payload, ctx):
        return "http:" + payload

    bus.register_trn("aionixfn", "function", fn)
    bus.register_kind("http", http)
    ctx = CallContext(tenant="prod", trace_id="t1")
    assert await bus.invoke("trn:aionixfn:prod:function/pay:live", 1, ctx) == {"ok": 1}
    assert seen[0][0] == TRN("aionixfn", "prod", "function", "pay", "live")
    assert seen[0][2] == "t1"
    assert await bus.invoke("http", "x", ctx) == "http:x"


async def test_unknown_targets_and_other_tenants_are_refused(bus):
    async def fn(target, payload, ctx):
        return 1

    bus.register_trn("aionixfn", "function", fn)
    ctx = CallContext(tenant="prod")
    with pytest.raises(NotFound):
        await bus.invoke("trn:aionixfn:other:function/pay", {}, ctx)
    with pytest.raises(NotFound):
        await bus.invoke("trn:igniter:prod:trigger/x", {}, ctx)
    with pytest.raises(BadRequest, match="unknown action kind"):
        await bus.invoke("carrier-pigeon", {}, ctx)


async def test_timeout_cancels_the_call_and_is_counted(bus):
    cancelled = asyncio.Event()

    async def slow(target, payload, ctx):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bus.register_kind("slow", slow)
    with pytest.raises(TargetTimeout) as info:
        await bus.invoke("slow", None, CallContext(tenant="t"), timeout=0.05)
    assert info.value.error == "States.Timeout"
    assert cancelled.is_set()


async def test_executor_errors_pass_through_with_their_names(bus):
    async def failing(target, payload, ctx):
        raise BusError("Http.Status.404", "not found")

    bus.register_kind("http", failing)
    with pytest.raises(BusError) as info:
        await bus.invoke("http", {}, CallContext(tenant="t"))
    assert info.value.error == "Http.Status.404"


async def test_metrics_count_calls_errors_and_latency():
    registry = CollectorRegistry()
    bus = Bus(registry)

    async def ok(target, payload, ctx):
        return 1

    async def bad(target, payload, ctx):
        raise BusError("X.Failed", "no")

    bus.register_kind("ok", ok)
    bus.register_kind("bad", bad)
    await bus.invoke("ok", None, CallContext(tenant="t"))
    with pytest.raises(BusError):
        await bus.invoke("bad", None, CallContext(tenant="t"))
    text = generate_latest(registry).decode()
    assert 'aionix_bus_calls_total{outcome="ok",target_kind="kind:ok"} 1.0' in text
    assert 'aionix_bus_calls_total{outcome="error",target_kind="kind:bad"} 1.0' in text
    assert 'aionix_bus_call_seconds_count{target_kind="kind:ok"} 1.0' in text
