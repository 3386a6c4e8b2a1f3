"""The expression worker: a small process that evaluates JSONata for the server (`aionix.expr`).

An expression that does not finish within a few milliseconds on the event loop (or that builds a
range, `[1..N]`) is evaluated here instead, so that it can neither stall the server's event loop
nor grow the server's memory: the process runs under an address-space limit
(`RLIMIT_AS`, `[limits] expression_memory_mb`) and the server kills it when an evaluation
outlives its time limit (the engine stops at the limit itself; the kill is the backstop).

Protocol on stdin/stdout: frames of a 4-byte big-endian length and an orjson document.
  server → worker  {"src", "data" (JSON text or null), "b" (bindings), "fns" (names of host
                   functions), "lim" (jlens options)}
  worker → server  {"call": name, "args": [...]}   a host function ($param, $env, Step Functions
                   extras…) is called: the server answers {"ret": value} or {"err": text}
                   {"out": JSON text or null}       the result (null: undefined)
                   {"jerr": {code, msg, position}}  a JSONata error
                   {"herr": text}                   a host function failed (the server re-raises
                                                    its own exception)
Only `sys`, `os`, `struct`, `resource`, `orjson` and `jlens` are imported.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
from typing import Any

_HEADER = struct.Struct(">I")


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _mapped_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class _HostFailed(Exception):
    pass


def main() -> int:
    import jlens
    import orjson

    from aionix.priority import yield_cpu

    memory_mb = int(os.environ.get("AIONIX_EXPR_MEMORY_MB", "0") or 0)
    yield_cpu()  # the server's event loop goes first when the CPUs are busy
    # the engine reserves address space (~1 GB, untouched) for its evaluation stack the first
    # time it runs: warm it up, then allow what is mapped now plus the evaluation budget
    jlens.Expression("(function($f){$f($f,3)})(function($g,$n){$n<=1?1:$g($g,$n-1)})").evaluate_json("null")
    if memory_mb > 0:
        limit = _mapped_bytes() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rfd = sys.stdin.buffer.fileno()
    wfd = os.dup(sys.stdout.buffer.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing else may write into the frames
    cache: dict[str, Any] = {}

    def send(message: Any) -> None:
        body = orjson.dumps(message)
        os.write(wfd, _HEADER.pack(len(body)) + body)

    def receive() -> Any:
        (size,) = _HEADER.unpack(_read_exact(rfd, _HEADER.size))
        return orjson.loads(_read_exact(rfd, size))

    def host(name: str) -> Any:
        def call(*args: Any) -> Any:
            try:
                send({"call": name, "args": list(args)})
            except TypeError as exc:
                raise _HostFailed(f"${name}: the arguments are not JSON ({exc})") from None
            answer = receive()
            if "err" in answer:
                raise _HostFailed(answer["err"])
            return answer.get("ret")

        return call

    send({"ready": True})
    while True:
        try:
            request = receive()
        except EOFError:
            return 0
        source = request["src"]
        try:
            expression = cache.get(source)
            if expression is None:
                if len(cache) > 512:
                    cache.clear()
                expression = cache[source] = jlens.Expression(source)
            bindings = request.get("b") or {}
            for name in request.get("fns") or ():
                bindings[name] = host(name)
            out = expression.evaluate_json(request.get("data"), bindings or None, **(request.get("lim") or {}))
            send({"out": out})
        except jlens.JlensError as exc:
            send(
                {
                    "jerr": {
                        "code": getattr(exc, "code", None),
                        "msg": str(exc),
                        "position": getattr(exc, "position", None),
                    }
                }
            )
        except _HostFailed as exc:
            send({"herr": str(exc)})
        except MemoryError:
            send(
                {
                    "jerr": {
                        "code": "U1001",
                        "msg": f"The evaluation exceeded its memory limit of {memory_mb} MB",
                        "position": None,
                    }
                }
            )
        except Exception as exc:  # reported to the server, which raises ExpressionError
            send({"herr": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main())
