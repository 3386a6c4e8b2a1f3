"""Store: durable single-row commits per second with 1 and with 64 concurrent writers
(SQLite WAL, synchronous=FULL as shipped, group commit)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from aionix.store.sqlite import SQLiteStore
from bench.table import print_table


async def _bench(writers: int, total: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db", synchronous="FULL")
        await store.start()
        counter = iter(range(total))

        async def writer() -> None:
            for i in counter:
                await store.execute("core.put_meta", {"key": f"k{i}", "value": "v"})

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        elapsed = time.perf_counter() - started
        await store.close()
        return total / elapsed


def run() -> dict:
    one = asyncio.run(_bench(1, 2000))
    many = asyncio.run(_bench(64, 20000))
    print_table(
        [
            ("durable commits/s, 1 writer", round(one), "commits/s"),
            ("durable commits/s, 64 writers", round(many), "commits/s"),
        ]
    )
    return {"commits_per_s_1_writer": round(one), "commits_per_s_64_writers": round(many)}
