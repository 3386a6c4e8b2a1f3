"""Durable timers' in-memory side: one loop sleeps until the next due time.

The due times themselves are rows (`sf_timers`) and part of each execution's checkpoint, so a
restart re-arms them; this module only wakes the waiting frames. No busy polling: the loop
sleeps until the earliest due time and is woken when a nearer one is added. A timer never
fires early by the injected clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from aionix.loops import running_loop


class Timers:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="stepflow-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def __len__(self) -> int:
        return sum(1 for _, _, f in self._heap if not f.done())

    async def sleep_until(self, due: float) -> None:
        """Return once `clock() >= due`."""
        if self._task is None:
            self.start()
        if self.clock() >= due:
            return
        future: asyncio.Future[None] = running_loop().create_future()
        nearest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (due, next(self._counter), future))
        if nearest is None or due < nearest:
            assert self._wake is not None
            self._wake.set()
        await future

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            now = self.clock()
            while self._heap and (self._heap[0][2].done() or self._heap[0][0] <= now):
                _, _, future = heapq.heappop(self._heap)
                if not future.done():
                    future.set_result(None)
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            delay = max(0.0, self._heap[0][0] - now)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay + 0.0005, 3600))
            except TimeoutError:
                pass
