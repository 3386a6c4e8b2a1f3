"""The store interface that every service uses (a handful of operations, not an ORM).

Services never build SQL. They name queries — `"stepflow.append_event"` — that live in
`aionix/store/sql/<dialect>/<service>.sql` as `-- name: append_event` blocks with `:named`
parameters, so a PostgreSQL store is a second set of query files and a second class, not a
rewrite of the services.

Writes go through `transaction(fn)`: `fn` receives a `Tx` and runs synchronously inside one
write transaction opened with `BEGIN IMMEDIATE` on the single writer. Concurrent callers'
transactions are group-committed: batched into one database transaction and one fsync, each
inside its own savepoint, so one caller's failure never undoes another's work and every caller
awaits its own durable commit (RELIABILITY.md D1, D2). Reads run on separate connections and
see every commit that was awaited before them.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
Params = Mapping[str, Any] | Sequence[Any] | None
Row = dict[str, Any]

STOP = object()  # put on a store's write queue to end its writer thread


def next_batch(jobs: queue.SimpleQueue[Any], limit: int) -> tuple[list[Any], bool]:
    """The writer's next group commit: block for one job, then take what is queued (up to
    `limit`). Returns the batch and whether STOP was seen (the batch may still hold jobs before it)."""
    first = jobs.get()
    if first is STOP:
        return [], True
    batch = [first]
    while len(batch) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is STOP:
            return batch, True
        batch.append(job)
    return batch, False


@runtime_checkable
class Tx(Protocol):
    """A write transaction, used only inside the function given to `Store.transaction`."""

    def execute(self, query: str, params: Params = None) -> int:
        """Run a named statement; return the number of rows changed."""

    def insert(self, query: str, params: Params = None) -> int:
        """Run a named INSERT; return the new row id."""

    def executemany(self, query: str, rows: Iterable[Params]) -> None:
        """Run a named statement once per parameter set."""

    def execute_then_insert(self, query: str, params: Params, insert: str, rows: Sequence[Params]) -> int:
        """Run a named statement and, when it changed rows, the named INSERT once per row of
        `rows`; the rows the statement changed. One round trip where the store can."""

    def fetch_one(self, query: str, params: Params = None) -> Row | None:
        """Read inside the transaction (sees its own writes)."""

    def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        """Read all rows inside the transaction."""


class Store(Protocol):
    """What services may ask of the database."""

    dialect: str

    async def start(self) -> None:
        """Open connections and apply pending migrations."""

    async def close(self) -> None:
        """Finish queued writes and close every connection."""

    async def fetch_one(self, query: str, params: Params = None) -> Row | None:
        """Run a named read; the first row as a dict, or None."""

    async def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        """Run a named read; every row as a dict."""

    async def transaction(self, fn: Callable[[Tx], T], *, replayable: bool = False) -> T:
        """Run `fn` in one durable, group-committed write transaction; return its result.

        `replayable`: `fn` acts only through `tx` (no state of its own changes, nothing outside
        the database happens), so it may be run again when its first run is rolled back; a
        store may then group it with its neighbours under one savepoint (PostgreSQL, where each
        savepoint is a round trip) and, when one of them raises, play each again in its own."""

    def submit(self, fn: Callable[[Tx], T], *, replayable: bool = False) -> asyncio.Future[T]:
        """`transaction`, queued before this returns (so before any later one); its outcome."""

    async def execute(self, query: str, params: Params = None) -> int:
        """One named write statement in its own transaction; rows changed."""

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the database to `target` while serving."""

    async def healthy(self) -> bool:
        """True when a trivial read succeeds."""
