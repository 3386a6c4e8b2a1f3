"""The service reads right after its writes (create → get, record → history) from many
coroutines at once; the store must show each caller the writes it has awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aionix.store.sqlite import SQLiteStore


async def test_concurrent_write_then_read_sees_the_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "rw.db", readers=2)
    await store.start()
    missing = []
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            await store.execute("core.put_meta", {"key": f"k{i}", "value": "v"})
            if await store.fetch_one("core.get_meta", {"key": f"k{i}"}) is None:
                missing.append(i)

    try:
        await asyncio.gather(*(one(i) for i in range(2000)))
    finally:
        await store.close()
    assert missing == []
