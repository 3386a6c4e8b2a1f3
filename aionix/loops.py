"""The event loop: the one the server runs on (`run`), and the running one without a system
call each time (`running_loop`).

CPython's `asyncio.get_running_loop()` (and the `_get_running_loop()` inside `ensure_future`,
`Event.wait` and friends) compares the pid the loop was started in with `getpid()` on every
call, so that a forked child never uses its parent's loop. On this project's VMs that system
call was about a tenth of the event loop's CPU while running workflows: every execution's
futures, tasks and store transactions asked for the loop. `running_loop()` remembers the
loop per thread while it runs, and forgets every loop in a forked child.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loops: dict[int, asyncio.AbstractEventLoop] = {}


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to its end on uvloop, the server's loop (asyncio's where it is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def running_loop() -> asyncio.AbstractEventLoop:
    """`asyncio.get_running_loop()`: the loop running in this thread (RuntimeError if none)."""
    ident = threading.get_ident()
    loop = _loops.get(ident)
    if loop is None or not loop.is_running():
        loop = _loops[ident] = asyncio.get_running_loop()
    return loop


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_loops.clear)
