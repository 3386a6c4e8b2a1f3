"""User code runs below the server on the CPU: when it keeps every core busy, the server's event
loop still goes first (expression workers and function workers call `yield_cpu` as they start)."""

from __future__ import annotations

import contextlib
import os

#: how much lower than the server's the CPU priority of user code is (nice +10 weighs 110
#: against nice 0's 1024 in the kernel's table: about a tenth of a contended core)
USER_CODE_NICENESS = 10


def yield_cpu(niceness: int = USER_CODE_NICENESS) -> None:
    """Raise this process's niceness (its children inherit it). A process that leads a session
    of its own (the workers do, to be killed as a group) is also in an autogroup of its own where
    the kernel groups by session (`kernel.sched_autogroup_enabled`), and niceness counts only
    inside an autogroup: the autogroup is niced too, else one worker would weigh as much on the
    CPU as the whole server. The server's own autogroup is never touched."""
    with contextlib.suppress(OSError):
        os.nice(niceness)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as fh:
            fh.write(str(niceness))
