"""The `wasm` runtime: WASI (preview 1) command modules run in-process by wasmtime.

The JSON event arrives on stdin, the JSON result is read from stdout. Compiled modules are
cached per code sha256 in memory and serialized on disk; an epoch deadline (a 10 ms ticker)
bounds the wall time, `Store.set_limits` the memory; no directory is preopened and WASI
preview 1 has no sockets. Runs on a small thread pool so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aionix.errors import ValidationFailed
from aionix.functions.runtimes.base import MEMORY, TIMEOUT, Outcome, RunSpec

TICK_SECONDS = 0.01
MiB = 1024 * 1024


class _LazyWasmtime:
    """`wasmtime` loads a ~24 MB native library: import it on the first WASM use, not at server
    start (it cost start time and idle memory to every server, WASM user or not)."""

    def __getattr__(self, name: str) -> Any:
        import wasmtime as module

        globals()["wasmtime"] = module
        return getattr(module, name)


wasmtime: Any = _LazyWasmtime()


def wasm_bytes(files: dict[str, bytes]) -> tuple[str, bytes]:
    """The module of a package: a `.wasm` file, or a `.wat` text compiled here."""
    for name, data in sorted(files.items()):
        if name.endswith(".wasm"):
            return name, data
    for name, data in sorted(files.items()):
        if name.endswith(".wat"):
            try:
                return name, wasmtime.wat2wasm(data.decode("utf-8"))
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
                text = str(exc).strip().splitlines()
                raise ValidationFailed(
                    f"code: {name}: {text[0] if text else exc}",
                    details=[{"field": "code", "file": name, "message": "\n".join(text)}],
                ) from None
    raise ValidationFailed(
        "code: no .wasm or .wat file in the package", details=[{"field": "code", "message": "no .wasm or .wat file"}]
    )


class WasmRuntime:
    name = "wasm"

    def __init__(self, cache_dir: Path, threads: int) -> None:
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.modules: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aionix-wasm")
        self._stop = threading.Event()
        self._engine: Any = None
        self._linker: Any = None
        self._engine_lock = threading.Lock()

    def _start_engine(self) -> None:
        """The engine, its WASI linker and the epoch ticker, made on first use."""
        with self._engine_lock:
            if self._engine is not None:
                return
            config = wasmtime.Config()
            config.epoch_interruption = True
            engine = wasmtime.Engine(config)
            # one linker for every store: WASI imports bind to each store's own WASI context
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            self._linker = linker
            self._engine = engine
            threading.Thread(target=self._tick, name="aionix-wasm-epoch", daemon=True).start()

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._start_engine()
        return self._engine

    @property
    def linker(self) -> Any:
        if self._linker is None:
            self._start_engine()
        return self._linker

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.engine.increment_epoch()

    def available(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "available": True,
            "cached_modules": len(self.modules),
            "network": "none (WASI preview 1)",
            "filesystem": "only permissions.read, read-only",
        }

    def validate(self, files: dict[str, bytes], handler: str) -> None:
        name, data = wasm_bytes(files)
        try:
            module = wasmtime.Module(self.engine, data)
        except wasmtime.WasmtimeError as exc:
            raise ValidationFailed(
                f"code: {name}: not a valid WebAssembly module: {str(exc).splitlines()[0]}",
                details=[{"field": "code", "file": name, "message": str(exc)}],
            ) from None
        if not any(e.name == "_start" for e in module.exports):
            raise ValidationFailed(
                f"code: {name}: a WASI command must export _start",
                details=[{"field": "code", "file": name, "message": "missing export _start"}],
            )

    def module(self, spec: RunSpec) -> wasmtime.Module:
        with self._lock:
            cached = self.modules.get(spec.code_sha256)
            if cached is not None:
                self.modules.move_to_end(spec.code_sha256)
                return cached
        path = self.cache_dir / f"{spec.code_sha256}.cwasm"
        module = None
        if path.exists():
            with contextlib.suppress(wasmtime.WasmtimeError):
                module = wasmtime.Module.deserialize_file(self.engine, str(path))
        if module is None:
            files = {
                p.name: p.read_bytes() for p in spec.code_dir.iterdir() if p.is_file() and p.suffix in (".wasm", ".wat")
            }
            module = wasmtime.Module(self.engine, wasm_bytes(files)[1])
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(module.serialize())
            tmp.replace(path)
        with self._lock:
            self.modules[spec.code_sha256] = module
            while len(self.modules) > 64:
                self.modules.popitem(last=False)
        return module

    def _run(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        started = time.perf_counter()
        cold = spec.code_sha256 not in self.modules
        module = self.module(spec)
        store = wasmtime.Store(self.engine)
        limit = spec.memory_mb * MiB
        store.set_limits(memory_size=limit)
        store.set_epoch_deadline(max(1, int(spec.timeout_seconds / TICK_SECONDS)))
        wasi = wasmtime.WasiConfig()
        wasi.argv = [spec.name]
        wasi.env = [[k, v] for k, v in {**spec.env, "AIONIX_CONTEXT": json.dumps(context)}.items()]
        for path in spec.permissions.get("read", []):
            if Path(path).is_dir():
                wasi.preopen_dir(path, path, False)
        stdin = json.dumps(event).encode()
        vec = wasmtime._bindings.wasm_byte_vec_t()
        wasmtime._ffi.wasm_byte_vec_new(
            ctypes.byref(vec),
            len(stdin),
            ctypes.cast(ctypes.create_string_buffer(stdin, len(stdin)), ctypes.POINTER(wasmtime._bindings.wasm_byte_t)),
        )
        wasmtime._ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))
        out, err = bytearray(), bytearray()
        wasi.stdout_custom = lambda data: out.extend(data) if len(out) < 8 * MiB else None
        wasi.stderr_custom = lambda data: err.extend(data) if len(err) < MiB else None
        store.set_wasi(wasi)
        linker = self.linker
        exit_code = 0
        trap: Exception | None = None
        memory_pages = 0
        memory = None
        try:
            instance = linker.instantiate(store, module)
            exports = instance.exports(store)
            memory = exports.get("memory")
            try:
                exports["_start"](store)
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            if isinstance(memory, wasmtime.Memory):
                memory_pages = memory.size(store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            trap = exc
            if isinstance(memory, wasmtime.Memory):
                memory_pages = memory.size(store)
        finally:
            store.close()
        elapsed = (time.perf_counter() - started) * 1000
        stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        used_mb = round(memory_pages * 65536 / MiB, 1) or None
        # wasmtime's Python API has no limiter callback: a module that traps or fails while its
        # memory is within 1/8 of the cap is taken to have hit the cap (memory.grow returned -1)
        near_limit = limit - memory_pages * 65536 < max(limit // 8, MiB)
        common = {"stderr": stderr, "duration_ms": elapsed, "cold": cold, "max_memory_mb": used_mb}
        if trap is not None:
            code = getattr(trap, "trap_code", None)
            if code == wasmtime.TrapCode.INTERRUPT:
                return Outcome.failure(
                    TIMEOUT,
                    f"the function did not finish within {spec.timeout_seconds:g} s",
                    name=TIMEOUT,
                    stdout=stdout,
                    **common,
                )
            if near_limit or ("memory" in str(trap).lower() and "limit" in str(trap).lower()):
                return Outcome.failure(
                    MEMORY,
                    f"the function exceeded its memory limit of {spec.memory_mb} MB",
                    name=MEMORY,
                    stdout=stdout,
                    **common,
                )
            lines = [line.strip() for line in str(trap).strip().splitlines() if line.strip()]
            reason = next(
                (line for line in reversed(lines) if "trap" in line.lower() and "backtrace" not in line),
                lines[-1] if lines else "trap",
            )
            return Outcome.failure("Trap", reason, trace=lines, stdout=stdout, **common)
        if exit_code != 0:
            if near_limit:
                return Outcome.failure(
                    MEMORY,
                    f"the function exceeded its memory limit of {spec.memory_mb} MB",
                    name=MEMORY,
                    stdout=stdout,
                    **common,
                )
            return Outcome.failure("ExitError", f"the module exited with code {exit_code}", stdout=stdout, **common)
        text = stdout.strip()
        if not text:
            return Outcome(ok=True, result=None, **common)
        try:
            result = json.loads(text)
        except json.JSONDecodeError:
            # the last line is the result; anything printed before it is log output
            head, _, last = text.rpartition("\n")
            try:
                result = json.loads(last)
            except json.JSONDecodeError:
                return Outcome.failure("Runtime.InvalidOutput", "stdout is not JSON", stdout=stdout, **common)
            return Outcome(ok=True, result=result, stdout=head, **common)
        return Outcome(ok=True, result=result, **common)

    async def invoke(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, self._run, spec, event, context)
        except wasmtime.WasmtimeError as exc:
            return Outcome.failure("Runtime.InitError", str(exc).splitlines()[0], name="States.TaskFailed")

    async def stop(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
