"""`aionix.loops.running_loop()`: asyncio's running loop, remembered per thread without the
`getpid()` system call that `asyncio.get_running_loop()` makes on every call."""

import asyncio
import os
import threading

import pytest

from aionix import loops
from aionix.loops import running_loop


async def _both() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
    return running_loop(), asyncio.get_running_loop()


def test_it_is_the_running_loop_and_follows_a_new_loop_in_the_same_thread() -> None:
    first, expected = asyncio.run(_both())
    assert first is expected
    second, expected = asyncio.run(_both())  # a new loop in the same thread: not the stale one
    assert second is expected and second is not first


def test_each_thread_gets_its_own_loop() -> None:
    seen: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]] = {}

    def run(name: str) -> None:
        seen[name] = asyncio.run(_both())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(mine is real for mine, real in seen.values())
    assert seen["a"][0] is not seen["b"][0]


def test_outside_a_loop_it_raises_like_asyncio() -> None:
    asyncio.run(_both())  # a loop remembered for this thread, now stopped
    with pytest.raises(RuntimeError):
        running_loop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_forgets_its_parents_loops() -> None:
    async def fork_while_running() -> int:
        running_loop()  # remembered in the parent
        assert loops._loops
        pid = os.fork()
        if pid == 0:  # the child: nothing remembered, whatever its thread id
            os._exit(0 if not loops._loops else 1)
        _, status = os.waitpid(pid, 0)
        return status

    assert os.waitstatus_to_exitcode(asyncio.run(fork_while_running())) == 0
