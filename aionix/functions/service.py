"""The functions service: resources, versions and aliases (invoking is in `invocation.py`,
records and logs in `records.py`).

`$LATEST` is the editable head of a function; `publish` snapshots it (code + configuration +
their sha256) into an immutable numbered version — publishing identical content again returns
the existing version, like Lambda. Aliases name one version, optionally with a weighted second
version (canary); the version each invocation actually ran is in its record.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import re
import time
from typing import Any

from aionix import jsonutil
from aionix import trn as trnlib
from aionix.errors import NotFound, Unavailable, ValidationFailed, field_error
from aionix.functions import code as codelib
from aionix.functions import gpu as gpulib
from aionix.functions import grants
from aionix.functions.egress import Egress, NetPolicy
from aionix.functions.invocation import LATEST, Invocations, _json, _trn
from aionix.functions.models import (
    Code,
    CreateFunction,
    FunctionConfig,
    FunctionsConfig,
    PublishVersion,
    PutAlias,
    Traffic,
    UpdateFunction,
)
from aionix.functions.records import InvocationRecords
from aionix.functions.runtimes.base import MEMORY, TIMEOUT, FunctionRuntime
from aionix.functions.runtimes.deno import DenoRuntime, find_deno
from aionix.functions.runtimes.process import Pools
from aionix.functions.runtimes.python import PythonRuntime
from aionix.functions.runtimes.wasm import WasmRuntime
from aionix.functions.sandbox import Confinement, detect
from aionix.ssrf import AllowList

log = logging.getLogger("aionix.functions")
DEFAULT_HANDLER = {"python": "main.handler", "deno": "main.ts", "wasm": "_start"}


class FunctionsService(Invocations):
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.store = rt.store
        self.cfg: FunctionsConfig = rt.config.service_section("functions", FunctionsConfig)
        self.conf: Confinement | None = None
        self.net = NetPolicy(None, self.cfg.allow_unconfined_net)
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.gpu = gpulib.GpuScheduler([], self.cfg.gpu_concurrency)
        self._versions: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._async: set[asyncio.Task[Any]] = set()
        self._claims: dict[str, tuple[str, int]] = {}
        self._claimer: asyncio.Task[Any] | None = None
        self._pruner: asyncio.Task[Any] | None = None
        self.records = InvocationRecords(rt.store)
        self._ready = asyncio.Event()
        self._setup_task: asyncio.Task[None] | None = None
        self._setup_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        # user code runs as other uids: the data dir (database, master key) must deny them
        os.chmod(self.rt.config.data_dir, 0o700)
        # async invocations still RUNNING from this node's previous life (all of them on SQLite)
        # run again; claimed before any new invocation can be accepted (they wait for `ready`)
        try:
            count = await self.claim_async(own=True, everything=not self.rt.cluster.enabled)
            if count:
                log.info("running %d async invocation(s) again after a restart", count)
        except Exception:
            log.exception("claiming this node's async invocations at start failed")
        if self.rt.cluster.enabled:
            self._claimer = asyncio.ensure_future(self.claim_loop())
        # probing the host spawns processes: do it beside the server's start, not before it
        self.rt.health["confinement"] = {"status": "detecting"}
        self._setup_task = asyncio.ensure_future(self._setup())
        self.rt.resolvers[("aionixfn", "function")] = self.resolve_trn
        self._pruner = asyncio.ensure_future(self._prune_loop())
        self.records.start()

    async def _setup(self) -> None:
        cfg = self.cfg
        try:
            self.conf = await asyncio.to_thread(
                detect,
                uid_base=cfg.uid_base,
                uid_count=cfg.uid_count,
                cgroups=cfg.cgroups,
                network_namespace=cfg.network_namespace,
                private_tmp=cfg.private_tmp,
                sandbox_parent=cfg.sandbox_dir,
                seccomp=cfg.seccomp,
                tmp_bytes=cfg.tmp_max_mb << 20,
            )
            egress = Egress(
                AllowList.parse(cfg.allow_hosts),
                max_connections=cfg.egress_max_connections,
                max_bytes=cfg.egress_max_bytes,
                api_port=lambda: getattr(self.rt, "listen_port", None) or self.rt.config.server.port,
            )
            net = self.net = NetPolicy(egress if self.conf.netns else None, cfg.allow_unconfined_net)
            devices = await asyncio.to_thread(gpulib.detect_devices)
            self.gpu = gpulib.GpuScheduler(devices, cfg.gpu_concurrency)

            def pools() -> Pools:
                assert self.conf is not None
                p = Pools(
                    self.conf,
                    pool_size=cfg.pool_size,
                    max_workers=cfg.max_workers,
                    idle_seconds=cfg.idle_seconds,
                    start_timeout=cfg.start_timeout_seconds,
                )
                p.start()
                return p

            self.runtimes = {
                "python": PythonRuntime(
                    pools(),
                    netns=self.conf.netns,
                    uid_drop=self.conf.uid_drop,
                    log_max_bytes=cfg.log_max_bytes,
                    net=net,
                ),
                "deno": DenoRuntime(
                    pools(), find_deno(cfg.deno_path), netns=self.conf.netns, uid_drop=self.conf.uid_drop, net=net
                ),
                "wasm": WasmRuntime(
                    pools(), netns=self.conf.netns, uid_drop=self.conf.uid_drop, concurrency=cfg.wasm_threads
                ),
            }
            self.refresh_health()
        except Exception as exc:
            log.exception("the functions runtimes could not start")
            self._setup_error = f"{type(exc).__name__}: {exc}"
            self.rt.health["confinement"] = {"status": "failed", "error": self._setup_error}
        finally:
            self._ready.set()

    async def ready(self) -> None:
        """Wait for the host probe at start; refuse clearly if the runtimes could not start."""
        await self._ready.wait()
        if self._setup_error is not None:
            raise Unavailable(f"functions are unavailable on this server: {self._setup_error}")

    async def stop(self) -> None:
        if self._setup_task is not None and not self._setup_task.done():
            self._setup_task.cancel()
            await asyncio.gather(self._setup_task, return_exceptions=True)
        if self._pruner is not None:
            self._pruner.cancel()
        if self._claimer is not None:
            self._claimer.cancel()
            await asyncio.gather(self._claimer, return_exceptions=True)
        for task in list(self._async):
            task.cancel()
        await asyncio.gather(*self._async, return_exceptions=True)
        await self.release_async()
        await self.records.stop()
        for runtime in self.runtimes.values():
            try:
                await runtime.stop()
            except Exception:
                log.exception("stopping the %s runtime failed", runtime.name)
        if self.conf is not None:
            self.conf.cleanup()

    def refresh_health(self) -> None:
        if not self.runtimes or self.conf is None:
            return
        assert self.conf is not None
        self.rt.health["confinement"] = {
            **self.conf.describe(),
            "egress": self.net.describe(),
            "python": self.runtimes["python"].describe(),
            "deno": self.runtimes["deno"].describe(),
            "wasm": self.runtimes["wasm"].describe(),
            "gpu": self.gpu.describe(),
        }

    async def _prune_loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1)
            self.refresh_health()  # warm worker counts change as idle workers retire
            ticks += 1
            if ticks % 600:
                continue
            before = time.time() - self.cfg.log_retention_days * 86400
            try:
                await self.records.prune(before)
            except Exception:
                log.exception("pruning function logs failed")

    # ------------------------------------------------------------------ validation
    def _runtime(self, name: str) -> FunctionRuntime:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise field_error("runtime", "must be python, deno or wasm")
        return runtime

    def _prepare(self, runtime: str, code: Any, config: FunctionConfig) -> tuple[bytes, str, str]:
        """Unpack, validate and canonicalize code; return (zip, code sha256, handler)."""
        files = codelib.unpack(code, runtime, self.cfg.max_code_bytes)
        handler = config.handler or DEFAULT_HANDLER[runtime]
        if runtime == "deno" and config.handler is None and len(files) == 1:
            handler = next(iter(files))
        rt = self._runtime(runtime)
        if runtime == "deno" and not rt.available():
            raise ValidationFailed(
                "runtime: deno is not available on this host (pip install deno, or set [functions] deno_path)",
                details=[{"field": "runtime", "message": "no deno binary found"}],
            )
        rt.validate(files, handler)
        if config.permissions.net and runtime in ("python", "deno"):
            problem = self.net.problem(config.permissions.net)
            if problem:
                raise field_error("permissions.net", problem)
        for key in config.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", key):
                raise field_error(f"env.{key}", "environment names must match [A-Za-z_][A-Za-z0-9_]*")
        for i, secret in enumerate(config.secrets):
            if not trnlib.NAME_RE.fullmatch(secret):
                raise field_error(f"secrets.{i}", "must be a secret name")
        grants.check_reads(
            config.permissions.read,
            self.cfg.read_roots,
            self.protected_dirs(),
            runtime=runtime,
            private_tmp=bool(self.conf and self.conf.mountns),
        )
        gpu = config.resources.gpu
        if gpu is not None:
            self.gpu.check(gpu.vendor, gpu.count, gpu.required)
        blob = codelib.canonical_zip(files)
        return blob, codelib.sha256(blob), handler

    def protected_dirs(self) -> list[Any]:
        return grants.protected_dirs(self.rt.config, self.conf.sandbox_dir if self.conf else None)

    @staticmethod
    def _config_doc(config: FunctionConfig, handler: str) -> dict[str, Any]:
        doc = config.model_dump(mode="json")
        doc["handler"] = handler
        return doc

    # ------------------------------------------------------------------ resources
    async def create(self, tenant: str, body: CreateFunction, role: str | None = "admin") -> dict[str, Any]:
        await self.ready()
        config = FunctionConfig.model_validate(body.model_dump(include=set(FunctionConfig.model_fields)))
        grants.check_role(config.permissions, role)
        blob, code_sha, handler = await asyncio.to_thread(self._prepare, body.runtime, body.code, config)
        doc = self._config_doc(config, handler)
        now = time.time()
        row = {
            "tenant": tenant,
            "name": body.name,
            "runtime": body.runtime,
            "handler": handler,
            "description": config.description,
            "config": _json(doc),
            "code": blob,
            "code_sha256": code_sha,
            "now": now,
        }

        def write(tx: Any) -> None:
            tx.execute("functions.insert_function", row)
            if body.publish:
                self._publish_tx(tx, tenant, body.name, now, None)

        await self.store.transaction(write)
        return await self.get(tenant, body.name)

    def _publish_tx(self, tx: Any, tenant: str, name: str, now: float, description: str | None) -> int:
        head = tx.fetch_one("functions.get_function", {"tenant": tenant, "name": name})
        if head is None:
            raise NotFound(f"function {name!r} not found")
        digest = codelib.sha256(
            head["code_sha256"].encode() + head["runtime"].encode() + head["handler"].encode() + head["config"].encode()
        )
        last = tx.fetch_one("functions.last_version", {"tenant": tenant, "name": name})
        if last is not None and last["sha256"] == digest:
            return int(last["version"])
        version = (int(last["version"]) if last else 0) + 1
        tx.execute(
            "functions.insert_version",
            {
                "tenant": tenant,
                "name": name,
                "version": version,
                "runtime": head["runtime"],
                "handler": head["handler"],
                "description": description if description is not None else head["description"],
                "config": head["config"],
                "code": head["code"],
                "code_sha256": head["code_sha256"],
                "sha256": digest,
                "now": now,
            },
        )
        tx.execute("functions.set_latest_version", {"tenant": tenant, "name": name, "version": version, "now": now})
        return version

    async def _head_update(
        self, tenant: str, name: str, code: Code | None, config: FunctionConfig | None, role: str | None
    ) -> dict[str, Any] | None:
        """The validated new $LATEST row for new code and/or configuration (None: no change)."""
        head = await self.store.fetch_one("functions.get_function_meta", {"tenant": tenant, "name": name})
        if head is None:
            raise NotFound(f"function {name!r} not found")
        if code is None and config is None:
            return None
        config = config or FunctionConfig.model_validate(jsonutil.loads(head["config"]))
        # new code or configuration runs with these grants: an admin must write it
        grants.check_role(config.permissions, role)
        if code is None:
            full = await self.store.fetch_one("functions.get_function", {"tenant": tenant, "name": name})
            assert full is not None
            files = codelib.read_zip(full["code"])
            code = Code(zip_base64=base64.b64encode(codelib.canonical_zip(files)).decode())
        blob, code_sha, handler = await asyncio.to_thread(self._prepare, head["runtime"], code, config)
        return {
            "tenant": tenant,
            "name": name,
            "handler": handler,
            "description": config.description,
            "config": _json(self._config_doc(config, handler)),
            "code": blob,
            "code_sha256": code_sha,
        }

    async def update(self, tenant: str, name: str, body: UpdateFunction, role: str | None = "admin") -> dict[str, Any]:
        """Change $LATEST (code and/or configuration) without publishing a version."""
        await self.ready()
        update = await self._head_update(tenant, name, body.code, body.config, role)
        if update is not None:
            await self.store.execute("functions.update_latest", {**update, "now": time.time()})
        return await self.get(tenant, name)

    async def publish(self, tenant: str, name: str, body: PublishVersion, role: str | None = "admin") -> dict[str, Any]:
        await self.ready()
        update = await self._head_update(tenant, name, body.code, body.config, role)
        now = time.time()

        def write(tx: Any) -> int:
            if update is not None:
                tx.execute("functions.update_latest", {**update, "now": now})
            return self._publish_tx(tx, tenant, name, now, body.description)

        version = await self.store.transaction(write)
        return await self.get_version(tenant, name, str(version))

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.store.fetch_one("functions.get_function_meta", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"function {name!r} not found", details={"trn": _trn(tenant, name)})
        versions = await self.store.fetch_all("functions.list_versions", {"tenant": tenant, "name": name})
        aliases = await self.store.fetch_all("functions.list_aliases", {"tenant": tenant, "name": name})
        return {
            "name": row["name"],
            "trn": _trn(tenant, name),
            "runtime": row["runtime"],
            "handler": row["handler"],
            "description": row["description"],
            "config": jsonutil.loads(row["config"]),
            "code_sha256": row["code_sha256"],
            "code_size": row["code_size"],
            "latest_version": str(row["latest_version"]) if row["latest_version"] else None,
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "versions": [str(v["version"]) for v in versions],
            "aliases": [self._alias_info(tenant, a) for a in aliases],
        }

    async def list(self, tenant: str, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "functions.list_functions", {"tenant": tenant, "cursor": cursor, "limit": limit + 1}
        )
        items = [
            {
                "name": r["name"],
                "trn": _trn(tenant, r["name"]),
                "runtime": r["runtime"],
                "description": r["description"],
                "latest_version": str(r["latest_version"]) if r["latest_version"] else None,
                "updated_at": r["updated_at"],
            }
            for r in rows[:limit]
        ]
        return {"items": items, "next_cursor": rows[limit - 1]["name"] if len(rows) > limit else None}

    async def delete(self, tenant: str, name: str) -> dict[str, Any]:
        await self.records.flush()
        info = await self.get(tenant, name)
        params = {"tenant": tenant, "name": name}

        def write(tx: Any) -> None:
            for q in ("delete_aliases", "delete_versions", "delete_logs", "delete_invocations", "delete_function"):
                tx.execute(f"functions.{q}", params)

        await self.store.transaction(write)
        for key in [k for k in self._versions if k[0] == tenant and k[1] == name]:
            self._versions.pop(key, None)
        return info

    @staticmethod
    def _version_info(tenant: str, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "function": row["name"],
            "version": str(row["version"]),
            "trn": _trn(tenant, row["name"], str(row["version"])),
            "runtime": row["runtime"],
            "handler": row["handler"],
            "code_sha256": row["code_sha256"],
            "sha256": row["sha256"],
            "code_size": row["code_size"],
            "config": jsonutil.loads(row["config"]),
            "description": row["description"],
            "created_at": row["created_at"],
        }

    async def get_version(self, tenant: str, name: str, version: str) -> dict[str, Any]:
        if not (version.isascii() and version.isdigit() and len(version) <= 18):  # the store's range
            raise field_error("version", "must be a version number")
        row = await self.store.fetch_one(
            "functions.get_version_meta", {"tenant": tenant, "name": name, "version": int(version)}
        )
        if row is None:
            raise NotFound(f"version {version} of function {name!r} not found")
        return self._version_info(tenant, row)

    async def list_versions(self, tenant: str, name: str) -> list[dict[str, Any]]:
        await self.get(tenant, name)
        rows = await self.store.fetch_all("functions.list_versions", {"tenant": tenant, "name": name})
        return [self._version_info(tenant, r) for r in rows]

    # ------------------------------------------------------------------ aliases
    @staticmethod
    def _alias_info(tenant: str, row: dict[str, Any]) -> dict[str, Any]:
        routing = None
        if row["routing_version"] and row["routing_weight"]:
            routing = {"version": row["routing_version"], "weight": row["routing_weight"]}
        return {
            "function": row["name"],
            "alias": row["alias"],
            "trn": _trn(tenant, row["name"], row["alias"]),
            "version": row["version"],
            "routing": routing,
            "description": row["description"],
            "updated_at": row["updated_at"],
        }

    async def _require_version(self, tenant: str, name: str, version: str, field: str) -> None:
        if not (version.isascii() and version.isdigit() and len(version) <= 18):  # the store's range
            raise field_error(field, f"function {name!r} has no version {version}")
        row = await self.store.fetch_one(
            "functions.get_version_meta", {"tenant": tenant, "name": name, "version": int(version)}
        )
        if row is None:
            raise field_error(field, f"function {name!r} has no version {version}")

    async def put_alias(self, tenant: str, name: str, alias: str, body: PutAlias) -> dict[str, Any]:
        trnlib.validate_name(alias, "alias")
        if alias.isdigit() or alias == LATEST:
            raise field_error("alias", "an alias name cannot be a version number")
        await self.get(tenant, name)
        if body.version == LATEST:
            raise field_error("version", "an alias must point at a published version")
        await self._require_version(tenant, name, body.version, "version")
        routing_version = routing_weight = None
        if body.routing is not None and body.routing.weight > 0:
            if body.routing.version == body.version:
                raise field_error("routing.version", "must differ from the alias's version")
            await self._require_version(tenant, name, body.routing.version, "routing.version")
            routing_version, routing_weight = body.routing.version, body.routing.weight
        await self.store.execute(
            "functions.upsert_alias",
            {
                "tenant": tenant,
                "name": name,
                "alias": alias,
                "version": body.version,
                "routing_version": routing_version,
                "routing_weight": routing_weight,
                "description": body.description,
                "now": time.time(),
            },
        )
        return await self.get_alias(tenant, name, alias)

    async def delete_alias(self, tenant: str, name: str, alias: str) -> dict[str, Any]:
        info = await self.get_alias(tenant, name, alias)
        await self.store.execute("functions.delete_alias", {"tenant": tenant, "name": name, "alias": alias})
        return info

    async def get_alias(self, tenant: str, name: str, alias: str) -> dict[str, Any]:
        row = await self.store.fetch_one("functions.get_alias", {"tenant": tenant, "name": name, "alias": alias})
        if row is None:
            raise NotFound(f"alias {alias!r} of function {name!r} not found")
        return self._alias_info(tenant, row)

    async def set_traffic(self, tenant: str, name: str, alias: str, body: Traffic) -> dict[str, Any]:
        current = await self.get_alias(tenant, name, alias)
        routing_version = routing_weight = None
        if body.version is not None and body.weight > 0:
            if body.version == current["version"]:
                raise field_error("version", "must differ from the alias's version")
            await self._require_version(tenant, name, body.version, "version")
            routing_version, routing_weight = body.version, body.weight
        await self.store.execute(
            "functions.set_alias_routing",
            {
                "tenant": tenant,
                "name": name,
                "alias": alias,
                "routing_version": routing_version,
                "routing_weight": routing_weight,
                "now": time.time(),
            },
        )
        return await self.get_alias(tenant, name, alias)

    @staticmethod
    def pick_version(
        version: str, routing_version: str | None, routing_weight: float | None, rng: random.Random | None = None
    ) -> str:
        """The weighted choice of an alias: `routing_version` with probability `routing_weight`."""
        if routing_version and routing_weight and (rng or random).random() < routing_weight:
            return routing_version
        return version

    async def doctor(self, tenant: str | None) -> list[dict[str, Any]]:
        """`aio admin doctor`: the confinement this host gives against what the functions in use
        need (network grants, GPUs, memory limits, Deno), and the runtimes' versions."""
        await self._ready.wait()
        out: list[dict[str, Any]] = []
        if self._setup_error is not None:
            return [
                {
                    "check": "confinement",
                    "status": "problem",
                    "message": f"the functions runtimes could not start: {self._setup_error}",
                    "fix": "see the server log at start; fix the host setup the error names and restart",
                }
            ]
        conf = self.conf
        assert conf is not None
        rows = await self.store.fetch_all("doctor.function_configs", {"tenant": tenant})
        needs_memory = False
        for row in rows:
            config = jsonutil.loads(row["config"])
            where = f"trn:aionixfn:{row['tenant']}:function/{row['name']}:{row['version']}"
            base = {"check": "confinement", "tenant": row["tenant"], "resource": where}
            hosts = (config.get("permissions") or {}).get("net") or []
            if hosts:
                refused = self.net.problem(hosts)
                if refused is not None:
                    out.append(
                        {
                            **base,
                            "status": "problem",
                            "message": f"it grants net {hosts}, but {refused}",
                            "fix": "run the server as root with [functions] network_namespace = true, or drop "
                            "the grant",
                        }
                    )
                elif self.net.egress is None:
                    out.append(
                        {
                            **base,
                            "status": "warn",
                            "message": f"it grants net {hosts}; without a network namespace that opens the whole "
                            "network (allow_unconfined_net)",
                            "fix": "run the server as root with [functions] network_namespace = true",
                        }
                    )
            gpu = (config.get("resources") or {}).get("gpu")
            if gpu:
                try:
                    self.gpu.check(
                        gpu.get("vendor", "nvidia"), int(gpu.get("count", 1)), bool(gpu.get("required", True))
                    )
                except Exception as exc:
                    out.append(
                        {
                            **base,
                            "status": "problem",
                            "message": f"it needs a GPU this host lacks: {exc}",
                            "fix": "run it on a host with the GPU, or set resources.gpu.required = false",
                        }
                    )
            if row["runtime"] == "deno" and not self.runtimes["deno"].available():
                out.append(
                    {
                        **base,
                        "status": "problem",
                        "message": "it is a Deno function and no deno binary is found",
                        "fix": "pip install deno, or set [functions] deno_path",
                    }
                )
            needs_memory = True
        if needs_memory and conf.cgroups == "none":
            out.append(
                {
                    "check": "confinement",
                    "status": "warn",
                    "message": "no cgroups here: a function's memory_mb is enforced by RLIMIT_AS only (virtual memory) "
                    "and its processes are not counted together",
                    "fix": "run the server as root on a host with cgroup v2 (or v1 memory+pids) delegated",
                }
            )
        if rows and not conf.uid_drop:
            out.append(
                {
                    "check": "confinement",
                    "status": "warn",
                    "message": "functions run as the server's own user: user code can read what the server reads",
                    "fix": "run the server as root so each worker drops to its own uid ([functions] uid_base)",
                }
            )
        if not any(f["check"] == "confinement" for f in out):
            level = ", ".join(k for k, v in conf.describe().items() if v is True) or "rlimits only"
            out.append(
                {
                    "check": "confinement",
                    "status": "ok",
                    "message": f"{len(rows)} function version(s) need nothing this host lacks (confinement: {level})",
                    "details": {"confinement": conf.describe()},
                }
            )
        if tenant is None:
            out.append(await asyncio.to_thread(self._runtime_versions))
        return out

    def _runtime_versions(self) -> dict[str, Any]:
        import importlib.metadata
        import platform
        import subprocess

        versions: dict[str, Any] = {"python": platform.python_version()}
        try:
            versions["wasmtime"] = importlib.metadata.version("wasmtime")
        except importlib.metadata.PackageNotFoundError:
            versions["wasmtime"] = None
        deno = self.runtimes["deno"]
        path = getattr(deno, "deno_path", None)
        versions["deno"] = None
        if path:
            try:
                text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
                versions["deno"] = text.split()[1] if text.startswith("deno ") else text.strip() or None
            except (OSError, subprocess.SubprocessError) as exc:
                versions["deno"] = f"unreadable: {exc}"
        missing = [name for name in ("wasmtime", "deno") if not versions[name]]
        message = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        if missing:
            return {
                "check": "runtimes",
                "status": "warn",
                "message": f"{message}; not available: {', '.join(missing)} (functions of that runtime cannot run)",
                "fix": "pip install deno (or set [functions] deno_path) / pip install wasmtime",
                "details": versions,
            }
        return {"check": "runtimes", "status": "ok", "message": message, "details": versions}

    async def resolve_trn(self, target: Any) -> dict[str, Any] | None:
        try:
            if target.qualifier and target.qualifier.isdigit():
                return await self.get_version(target.tenant, target.path, target.qualifier)
            if target.qualifier and target.qualifier != LATEST:
                return await self.get_alias(target.tenant, target.path, target.qualifier)
            return await self.get(target.tenant, target.path)
        except NotFound:
            return None


__all__ = ["MEMORY", "TIMEOUT", "FunctionsService"]
