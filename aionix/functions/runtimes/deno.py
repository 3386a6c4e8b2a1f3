"""The `deno` runtime: `export default async function handler(event, context)` in TypeScript
or JavaScript, run by a warm `deno` process per worker under the same confinement as Python
(the worker confines itself, then `exec`s Deno). Every Deno permission is denied unless the
function's `permissions` grant it; remote, npm and config loading are off."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from aionix.errors import ValidationFailed
from aionix.functions.egress import NetPolicy, proxy_env
from aionix.functions.runtimes.base import INIT_TIMEOUT, MEMORY, TIMEOUT, Outcome, RunSpec, Timing, deadline_context
from aionix.functions.runtimes.process import (
    LaunchPlan,
    Pools,
    WorkerGone,
    WorkerStartTimeout,
    worker_gone_outcome,
)

MiB = 1024 * 1024
EXPORT_DEFAULT = re.compile(r"export\s+default\b|export\s*\{[^}]*\bas\s+default\b")

BOOTSTRAP = r"""
import handler from "./%(entry)s";
const marker = "\u0000AIONIX:" + Deno.args[0] + ":";
const tmp = Deno.args[1];
const kept = new Set([".code", ".bin"]);
// what an invocation left in its temp directory is gone before the next one starts
function cleanTmp() {
  try {
    for (const entry of Deno.readDirSync(tmp)) {
      if (!kept.has(entry.name)) {
        try { Deno.removeSync(tmp + "/" + entry.name, { recursive: true }); } catch { /* gone */ }
      }
    }
  } catch { /* unreadable: nothing to clean */ }
}
// timers an invocation starts and leaves pending are cleared when it ends (those the module
// started while loading belong to its warm state)
const timers = new Set();
const { setTimeout: realTimeout, setInterval: realInterval, clearTimeout: realClear } = globalThis;
globalThis.setTimeout = (fn, ms, ...args) => {
  const id = realTimeout((...a) => { timers.delete(id); if (typeof fn === "function") fn(...a); }, ms, ...args);
  timers.add(id);
  return id;
};
globalThis.setInterval = (fn, ms, ...args) => {
  const id = realInterval(fn, ms, ...args);
  timers.add(id);
  return id;
};
globalThis.clearTimeout = globalThis.clearInterval = (id) => { timers.delete(id); realClear(id); };
function clearTimers() {
  for (const id of timers) realClear(id);
  timers.clear();
}
const enc = new TextEncoder();
const dec = new TextDecoder();
let logs = [];
const fmt = (args) => args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" ");
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
  console[level] = (...args) => { if (logs.length < 10000) logs.push(fmt(args)); };
}
async function send(obj) {
  let text;
  try { text = JSON.stringify(obj); } catch (e) {
    text = JSON.stringify({ id: obj.id, ok: false, logs: obj.logs,
      error: { errorType: "Runtime.ResponseSerialization", errorMessage: String(e), trace: [] } });
  }
  const data = enc.encode(marker + text + "\n");
  let off = 0;
  while (off < data.length) off += await Deno.stdout.write(data.subarray(off));
}
await send({ ready: true });
const reader = Deno.stdin.readable.getReader();
let buf = "";
while (true) {
  const { value, done } = await reader.read();
  if (done) break;
  buf += dec.decode(value, { stream: true });
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    const req = JSON.parse(line);
    logs = [];
    const ctx = { ...req.context, getRemainingTimeInMillis: () => Math.max(0, req.context.deadline_ms - Date.now()) };
    let resp;
    try {
      const result = await handler(req.event, ctx);
      resp = { id: req.id, ok: true, result: result === undefined ? null : result };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      resp = { id: req.id, ok: false, error: { errorType: err.name || "Error", errorMessage: err.message,
        trace: String(err.stack || "").split("\n") } };
      if (err instanceof RangeError && /memory|allocation/i.test(err.message)) resp.memory = true;
    }
    resp.logs = logs.join("\n");
    clearTimers();
    await send(resp);
    cleanTmp();
  }
}
"""


def find_deno(configured: str) -> str | None:
    if configured:
        return configured if Path(configured).is_file() else None
    try:
        import deno  # the PyPI package ships the binary

        path = deno.find_deno_bin()
        if path and Path(path).is_file():
            return str(path)
    except (ImportError, FileNotFoundError, OSError):
        pass
    return shutil.which("deno")


def validate_deno(files: dict[str, bytes], handler: str) -> None:
    if handler not in files:
        raise ValidationFailed(
            f"code: {handler}: entry file not found in the code",
            details=[{"field": "handler", "file": handler, "message": "entry file not found"}],
        )
    if not handler.endswith((".ts", ".js", ".mjs", ".mts", ".tsx", ".jsx")):
        raise ValidationFailed(
            f"handler: {handler}: must be a .ts or .js file",
            details=[{"field": "handler", "message": "must be a .ts or .js file"}],
        )
    try:
        text = files[handler].decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(
            f"code: {handler}: not UTF-8 text", details=[{"field": "code", "file": handler, "message": "not UTF-8"}]
        ) from None
    if not EXPORT_DEFAULT.search(text):
        raise ValidationFailed(
            f"code: {handler}: no default export (write `export default async function handler(event, context)`)",
            details=[{"field": "code", "file": handler, "line": None, "message": "missing `export default` handler"}],
        )


class DenoRuntime:
    name = "deno"

    def __init__(
        self, pools: Pools, deno_path: str | None, *, netns: bool, uid_drop: bool, net: NetPolicy | None = None
    ) -> None:
        self.pools = pools
        self.deno_path = deno_path
        self.netns = netns
        self.net = net or NetPolicy(None, False)
        self.uid_drop = uid_drop

    def available(self) -> bool:
        return self.deno_path is not None

    def describe(self) -> dict[str, Any]:
        return {
            "available": self.available(),
            "path": self.deno_path,
            "warm_workers": self.pools.warm_count(),
            "permissions": "denied unless granted",
        }

    def validate(self, files: dict[str, bytes], handler: str) -> None:
        if not self.available():
            raise ValidationFailed(
                "runtime: deno is not available on this host (pip install deno, or set [functions] deno_path)",
                details=[{"field": "runtime", "message": "no deno binary found"}],
            )
        validate_deno(files, handler)

    def bootstrap(self, spec: RunSpec) -> str:
        name = f"__aionix_bootstrap_{hashlib.sha256(spec.handler.encode()).hexdigest()[:12]}.mjs"
        path = spec.code_dir / name
        if not path.exists():
            tmp = spec.code_dir / f".{name}.{uuid.uuid4().hex}"
            tmp.write_text(BOOTSTRAP % {"entry": spec.handler})
            tmp.chmod(0o644)
            tmp.replace(path)
        return str(path)

    def _plan(self, spec: RunSpec, token: str) -> LaunchPlan:
        assert self.deno_path is not None
        bootstrap = self.bootstrap(spec)
        perms = spec.permissions
        flags = [
            "--no-prompt",
            "--no-remote",
            "--no-npm",
            "--no-config",
            "--no-lock",
            "--quiet",
            f"--v8-flags=--max-old-space-size={spec.memory_mb}",
        ]
        if perms.get("net"):
            flags.append("--allow-net=" + ",".join(perms["net"]))
        env_names = sorted({*spec.env, *perms.get("env", [])})
        if env_names:
            flags.append("--allow-env=" + ",".join(env_names))
        deno = self.deno_path
        rlimits = {"nofile": max(spec.max_open_files, 256), "fsize": spec.max_file_bytes, "core": 0}
        if self.uid_drop:
            rlimits["nproc"] = spec.max_processes + 64  # Deno's own threads count here
        hosts = perms.get("net") or []
        # --allow-net checks names; the namespace and the proxy's SSRF guard check where they lead
        egress = self.net.egress.grant(hosts, spec.max_open_files) if hosts and self.net.egress else None
        return LaunchPlan(
            mode="exec",
            env={**spec.env, **spec.devices_env, "NO_COLOR": "1", **(proxy_env() if egress else {})},
            rlimits=rlimits,
            netns=self.netns and (egress is not None or not hosts),
            egress=egress,
            memory_bytes=(spec.memory_mb + 192) * MiB,
            pids_max=spec.max_processes + 64,
            cpu_quota=spec.cpu_quota,
            # its own directory (the private /tmp where the host allows) is readable and writable
            command=lambda work_dir: [
                deno,
                "run",
                *flags,
                "--allow-read=" + ",".join([*perms.get("read", []), str(work_dir)]),
                f"--allow-write={work_dir}",
                bootstrap,
                token,
                str(work_dir),
            ],
            marker=f"\0AIONIX:{token}:".encode(),
        )

    async def invoke(self, spec: RunSpec, event: Any, context: dict[str, Any]) -> Outcome:
        timing = Timing()
        return timing.stamp(await self._invoke(spec, event, context, timing))

    async def _invoke(self, spec: RunSpec, event: Any, context: dict[str, Any], timing: Timing) -> Outcome:
        if not self.available():
            return Outcome.failure(
                "Runtime.Unavailable", "deno is not available on this host", name="States.TaskFailed"
            )
        problem = self.net.problem(spec.permissions.get("net") or [])
        if problem:
            return Outcome.failure("Runtime.NetworkUnconfined", f"permissions.net: {problem}")
        key = spec.pool_key()
        started = time.perf_counter()
        token = secrets.token_hex(8)
        try:
            worker, cold, _ = await self.pools.acquire(
                key, lambda: self._plan(spec, token), spec.code_dir, spec.init_timeout_seconds
            )
        except WorkerStartTimeout as exc:
            timing.init_ms = exc.seconds * 1000
            return Outcome.failure(INIT_TIMEOUT, str(exc), name=INIT_TIMEOUT, stderr=exc.stderr, cold=True)
        except WorkerGone as exc:
            return Outcome.failure(
                "Runtime.ImportModuleError",
                (exc.stderr.strip() or str(exc))[-2000:],
                name="Function.Error.Runtime.ImportModuleError",
                stderr=exc.stderr,
                cold=True,
            )
        worker.take_stderr()
        worker.stdout_noise.clear()
        request_id = uuid.uuid4().hex
        try:
            if cold:
                timing.init_ms = worker.init_ms
            timing.running()  # the invocation timeout starts when the handler is called
            context = deadline_context(context, spec.timeout_seconds)
            await worker.send({"id": request_id, "event": event, "context": context})
            answer = await asyncio.wait_for(worker.read_message(), spec.timeout_seconds)
        except TimeoutError:
            await self.pools.discard(key, worker)
            return Outcome.failure(
                TIMEOUT,
                f"the function did not finish within {spec.timeout_seconds:g} s",
                name=TIMEOUT,
                cold=cold,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except WorkerGone as exc:
            oom = (
                (worker.cgroup is not None and worker.cgroup.oom_killed())
                or "out of memory" in exc.stderr.lower()
                or "heap limit" in exc.stderr.lower()
            )
            await self.pools.discard(key, worker)
            elapsed = (time.perf_counter() - started) * 1000
            return worker_gone_outcome(
                spec,
                exc,
                oom=oom,
                cold=cold,
                elapsed_ms=elapsed,
                process="the Deno process",
                stderr=exc.stderr[-4000:],
            )
        except BaseException:
            await self.pools.discard(key, worker)
            raise
        await self.pools.release(key, worker, reuse=True)
        elapsed = (time.perf_counter() - started) * 1000
        stdout = "\n".join([*worker.stdout_noise, answer.get("logs", "")]).strip("\n")
        logs = {"stdout": stdout, "stderr": worker.take_stderr()}
        if answer.get("ok"):
            return Outcome(ok=True, result=answer.get("result"), duration_ms=elapsed, cold=cold, **logs)
        error = answer.get("error") or {}
        if answer.get("memory"):
            return Outcome.failure(
                MEMORY,
                f"the function exceeded its memory limit of {spec.memory_mb} MB",
                name=MEMORY,
                duration_ms=elapsed,
                cold=cold,
                **logs,
            )
        return Outcome.failure(
            str(error.get("errorType") or "Error"),
            str(error.get("errorMessage", "")),
            trace=list(error.get("trace") or []),
            duration_ms=elapsed,
            cold=cold,
            **logs,
        )

    async def stop(self) -> None:
        await self.pools.stop()
