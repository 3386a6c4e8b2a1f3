"""The worker side of the `wasm` runtime: wasmtime inside a confined worker process.

`aionix.functions.worker` confines the process (cgroup, namespaces, rlimits, its own uid)
exactly as for Python, then calls `serve_wasm`: the module of the version is compiled once
(cached for the worker's life), and each request runs it in a fresh `Store` with the memory
limit and an epoch deadline (a 10 ms ticker that runs only during a call). The JSON event
arrives on WASI stdin; stdout, stderr, the exit code or the trap go back to the server, which
turns them into an outcome (`aionix.functions.runtimes.wasm`). Only the declared environment
names and `permissions.read` directories (read-only preopens, opened as the worker's uid)
reach the module.

Only the standard library and wasmtime are imported here.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
import time
from typing import Any

import wasmtime

TICK_SECONDS = 0.01
MiB = 1024 * 1024
STDOUT_CAP = 8 * MiB
STDERR_CAP = MiB


def module_bytes(code_dir: str) -> bytes:
    """The package's module: its `.wasm` file, or a `.wat` text compiled here."""
    names = sorted(n for n in os.listdir(code_dir) if os.path.isfile(os.path.join(code_dir, n)))
    for name in names:
        if name.endswith(".wasm"):
            with open(os.path.join(code_dir, name), "rb") as fh:
                return fh.read()
    for name in names:
        if name.endswith(".wat"):
            with open(os.path.join(code_dir, name), encoding="utf-8") as fh:
                return wasmtime.wat2wasm(fh.read())
    raise ValueError("no .wasm or .wat file in the package")


class Ticker:
    """Advances the engine's epoch every tick while a call runs (idle workers stay asleep)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.running = threading.Event()
        threading.Thread(target=self._loop, name="aionix-wasm-epoch", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.running.wait()
            time.sleep(TICK_SECONDS)
            self.engine.increment_epoch()


def _set_stdin(wasi: Any, data: bytes) -> None:
    vec = wasmtime._bindings.wasm_byte_vec_t()
    wasmtime._ffi.wasm_byte_vec_new(
        ctypes.byref(vec),
        len(data),
        ctypes.cast(ctypes.create_string_buffer(data, len(data)), ctypes.POINTER(wasmtime._bindings.wasm_byte_t)),
    )
    wasmtime._ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))


def run_once(engine: Any, linker: Any, module: Any, ticker: Ticker, spec: dict, request: dict) -> dict:
    """One call of the module; every outcome (exit, trap, deadline) is data."""
    started = time.perf_counter()
    limit = int(spec["memory_mb"]) * MiB
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=limit)
    store.set_epoch_deadline(max(1, int(float(spec["timeout_seconds"]) / TICK_SECONDS)))
    wasi = wasmtime.WasiConfig()
    wasi.argv = [spec.get("function_name", "function")]
    env = {name: os.environ.get(name, "") for name in spec.get("env_names", [])}
    env["AIONIX_CONTEXT"] = json.dumps(request.get("context"))
    wasi.env = [[k, v] for k, v in env.items()]
    for path in spec.get("preopens", []):
        try:
            wasi.preopen_dir(path, path, False)  # read-only
        except wasmtime.WasmtimeError:
            store.close()
            message = f"permissions.read: {path} cannot be opened by the function's user"
            return {
                "id": request.get("id"),
                "error": {"errorType": "Runtime.PermissionDenied", "errorMessage": message},
            }
    _set_stdin(wasi, json.dumps(request.get("event")).encode())
    out, err = bytearray(), bytearray()
    wasi.stdout_custom = lambda data: out.extend(data) if len(out) < STDOUT_CAP else None
    wasi.stderr_custom = lambda data: err.extend(data) if len(err) < STDERR_CAP else None
    store.set_wasi(wasi)
    answer: dict = {"id": request.get("id"), "exit_code": 0, "trap": None, "interrupted": False}
    memory = None
    ticker.running.set()
    try:
        instance = linker.instantiate(store, module)
        exports = instance.exports(store)
        memory = exports.get("memory")
        try:
            exports["_start"](store)
        except wasmtime.ExitTrap as exc:
            answer["exit_code"] = exc.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        answer["trap"] = str(exc)
        answer["interrupted"] = getattr(exc, "trap_code", None) == wasmtime.TrapCode.INTERRUPT
    finally:
        ticker.running.clear()
        if isinstance(memory, wasmtime.Memory):
            answer["memory_pages"] = memory.size(store)
        store.close()
    answer["duration_ms"] = (time.perf_counter() - started) * 1000
    answer["stdout"] = out.decode("utf-8", "replace")
    answer["stderr"] = err.decode("utf-8", "replace")
    return answer


def serve_wasm(spec: dict) -> None:
    """Compile the module once, then answer JSON-line requests until stdin closes."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)

    def send(message: dict) -> None:
        proto_out.write(json.dumps(message).encode() + b"\n")

    config = wasmtime.Config()
    config.epoch_interruption = True
    config.parallel_compilation = False  # no compiler threads: RLIMIT_NPROC and pids stay small
    engine = wasmtime.Engine(config)
    try:
        module = wasmtime.Module(engine, module_bytes(spec["code_dir"]))
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
    except (wasmtime.WasmtimeError, ValueError, OSError, UnicodeDecodeError) as exc:
        lines = str(exc).strip().splitlines()
        send(
            {
                "ready": False,
                "error": {"errorType": "Runtime.InitError", "errorMessage": lines[0] if lines else "", "trace": lines},
            }
        )
        return
    ticker = Ticker(engine)
    send({"ready": True})
    for line in proto_in:
        request = json.loads(line)
        try:
            answer = run_once(engine, linker, module, ticker, spec, request)
        except MemoryError:
            send({"id": request.get("id"), "memory": True, "fatal": True})
            return
        send(answer)
