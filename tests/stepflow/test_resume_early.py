"""Executions resume before every service is loaded (issue 24 part 3): a call to a target whose
service is not registered yet waits for the start-up to finish instead of failing."""

from __future__ import annotations

import asyncio

import pytest

from aionix.bus import Bus, CallContext
from aionix.errors import BadRequest


async def test_a_call_to_a_service_still_loading_waits_for_it() -> None:
    bus = Bus()
    bus.loading = asyncio.Event()
    ctx = CallContext(tenant="default")
    call = asyncio.ensure_future(bus.invoke("later", {"x": 1}, ctx))
    await asyncio.sleep(0.05)
    assert not call.done()  # no executor yet, but the services are still loading

    async def later(target, payload, ctx):
        return {"got": payload}

    bus.register_kind("later", later)
    bus.loading.set()
    assert await asyncio.wait_for(call, 5) == {"got": {"x": 1}}


async def test_an_unknown_target_after_start_up_still_fails_at_once() -> None:
    bus = Bus()
    bus.loading = asyncio.Event()
    bus.loading.set()
    with pytest.raises(BadRequest):
        await bus.invoke("nothing", None, CallContext(tenant="default"))
    bus.loading = asyncio.Event()
    call = asyncio.ensure_future(bus.invoke("nothing", None, CallContext(tenant="default")))
    await asyncio.sleep(0.05)
    bus.loading.set()  # loaded, and still nobody serves it: the same error as before
    with pytest.raises(BadRequest):
        await asyncio.wait_for(call, 5)
