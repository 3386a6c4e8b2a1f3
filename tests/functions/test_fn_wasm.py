"""The WASM runtime: the shipped example module, traps as data, epoch timeout, memory limit,
no filesystem and no network (WASI preview 1 has no sockets)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import wasmtime
from conftest import create, healthy, invoke, unique

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions" / "wasm-echo"

LOOP = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
TRAP = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'
GROW = """(module (memory (export "memory") 1)
  (func (export "_start")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))"""
EXIT = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 7))))"""
# path_open on fd 3 (the first preopen, if any) must fail: nothing is preopened
OPEN = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "etc/passwd")
  (func (export "_start")
    (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 10) (i32.const 0)
                            (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 128)))))"""


# prints the number of environment variables it can see (one digit)
ENV_COUNT = """(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (i32.store8 (i32.const 16) (i32.add (i32.const 48) (i32.load (i32.const 0))))
    (i32.store (i32.const 32) (i32.const 16))
    (i32.store (i32.const 36) (i32.const 1))
    (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40)))))"""


def test_only_declared_environment_is_visible(fn) -> None:
    name = create(fn, "wasm", ENV_COUNT, env={"ONE": "1", "TWO": "2"})["name"]
    # ONE, TWO and AIONIX_CONTEXT (the invocation context as JSON): nothing of the server's
    assert invoke(fn, name)["result"] == 3


def test_example_module_is_built_from_its_wat() -> None:
    assert (EXAMPLE / "echo.wasm").read_bytes() == wasmtime.wat2wasm((EXAMPLE / "echo.wat").read_text())


def test_example_echo_cold_then_cached(fn) -> None:
    wasm = base64.b64encode((EXAMPLE / "echo.wasm").read_bytes()).decode()
    made = fn.post(
        "/api/v1/functions", json={"name": unique("wasm"), "runtime": "wasm", "code": {"wasm_base64": wasm}}
    ).json()
    first = invoke(fn, made["name"], {"hello": [1, 2, 3]})
    assert first["status"] == "SUCCEEDED" and first["result"] == {"echo": {"hello": [1, 2, 3]}}
    assert first["cold_start"] is True
    second = invoke(fn, made["name"], {"n": 2})
    assert second["result"] == {"echo": {"n": 2}} and second["cold_start"] is False
    assert invoke(fn, made["name"], None)["result"] == {"echo": None}


def test_wat_source_is_compiled_at_deploy(fn) -> None:
    made = create(fn, "wasm", (EXAMPLE / "echo.wat").read_text())
    assert invoke(fn, made["name"], [1])["result"] == {"echo": [1]}
    r = fn.post(
        "/api/v1/functions",
        json={"name": unique("w"), "runtime": "wasm", "code": {"source": '(module (func (export "main")))'}},
    )
    assert r.status_code == 422 and "_start" in r.text


def test_trap_and_exit_code_are_errors_as_data(fn) -> None:
    trap = invoke(fn, create(fn, "wasm", TRAP)["name"])
    assert (
        trap["status"] == "FAILED"
        and trap["error"]["errorType"] == "Trap"
        and "unreachable" in trap["error"]["errorMessage"]
    )
    exited = invoke(fn, create(fn, "wasm", EXIT)["name"])
    assert exited["error"]["errorType"] == "ExitError" and "7" in exited["error"]["errorMessage"]


def test_infinite_loop_hits_the_epoch_deadline(fn) -> None:
    name = create(fn, "wasm", LOOP, limits={"timeout_seconds": 0.5})["name"]
    started = time.monotonic()
    record = invoke(fn, name)
    assert record["status"] == "TIMED_OUT" and record["error"]["error"] == "Function.Timeout"
    assert time.monotonic() - started < 10
    healthy(fn)


def test_memory_growth_is_capped(fn) -> None:
    name = create(fn, "wasm", GROW, limits={"memory_mb": 32})["name"]
    record = invoke(fn, name)
    assert record["error"]["error"] == "Function.MemoryLimitExceeded"
    assert record["max_memory_used_mb"] <= 32


def test_no_filesystem_without_a_preopen(fn) -> None:
    record = invoke(fn, create(fn, "wasm", OPEN)["name"])
    # path_open returned a WASI errno (8 = EBADF: fd 3 does not exist), which became the exit code
    assert record["status"] == "FAILED" and record["error"]["errorType"] == "ExitError"
    assert "code 0" not in record["error"]["errorMessage"]
