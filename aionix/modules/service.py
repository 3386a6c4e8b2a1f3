"""The modules service: install (verify or quarantine), trust keys, approve/quarantine/remove,
and run agent modules through the functions service's confined runtimes.

A package is runnable only when its state is `verified` (every check passed at install) or
`approved` (an admin approved a quarantined one, audited). Before each run the stored blobs
are hashed again: a layer changed after install quarantines the module (`tampered`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aionix import jsonutil
from aionix.bus import BusError, CallContext
from aionix.errors import BadRequest, Conflict, NotFound, Unavailable, ValidationFailed, field_error
from aionix.functions import code as codelib
from aionix.functions.runtimes.base import RunSpec
from aionix.modules import oci, sigstore
from aionix.modules.models import VERSION, Manifest, ModulesConfig, memory_mb

log = logging.getLogger("aionix.modules")
RUNNABLE = ("verified", "approved")
SHIM = "_aionix_module.py"
SHIM_CODE = r'''"""Runs a subprocess agent module: its command with the event as JSON on stdin, the JSON
on stdout as the result. The child inherits this worker's confinement (uid, namespaces,
cgroup, rlimits, seccomp)."""
import json
import os
import subprocess
import sys


def handler(event, context):
    here = os.path.dirname(os.path.abspath(__file__))
    argv = json.loads(os.environ["AIONIX_MODULE_COMMAND"])
    names = json.loads(os.environ.get("AIONIX_MODULE_SECRETS", "[]"))
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({n: os.environ[n] for n in names if n in os.environ})
    # the GPUs the scheduler gave this call
    for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
        if name in os.environ:
            env[name] = os.environ[name]
    remaining = max(0.05, context.get_remaining_time_in_millis() / 1000 - 0.05)
    proc = subprocess.run(argv, input=json.dumps(event).encode(), capture_output=True, cwd=here, env=env,
                          timeout=remaining)
    err = proc.stderr.decode("utf-8", "replace")
    if err:
        sys.stderr.write(err[-65536:])
    if proc.returncode != 0:
        raise RuntimeError(f"the module exited with status {proc.returncode}: {err.strip()[-500:]}")
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError("the module did not write one JSON document on stdout") from None
'''


def _js(value: Any) -> str:
    out = jsonutil.dumps(value)
    return out.decode() if isinstance(out, bytes) else out


def _trn(tenant: str, name: str, version: str | None = None) -> str:
    return f"trn:modules:{tenant}:module/{name}" + (f":{version}" if version else "")


def _module_error(error: str, message: str) -> BusError:
    return BusError(error, message)


@dataclass
class Loaded:
    manifest: Manifest
    schemas: dict[str, Any]
    code: dict[str, bytes]


class Breaker:
    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def state(self) -> str:
        return "open" if self.open_until > time.monotonic() else ("half-open" if self.open_until else "closed")


class ModulesService:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.store = rt.store
        self.cfg: ModulesConfig = rt.config.service_section("modules", ModulesConfig)
        self.blob_dir = rt.config.data_dir / "modules" / "blobs"
        self.sems: dict[tuple[str, str], asyncio.Semaphore] = {}
        self.breakers: dict[tuple[str, str], Breaker] = {}
        self.stats: dict[tuple[str, str], dict[str, Any]] = {}

    async def start(self) -> None:
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    async def stop(self) -> None:
        return None

    async def doctor(self, tenant: str | None) -> list[dict[str, Any]]:
        """Whether `runtime.resources.cpu` is a cgroup CPU quota here or only a CPU-time limit."""
        fsvc = self.rt.services.get("functions")
        conf = getattr(fsvc, "conf", None)
        if conf is None:
            return []
        if conf.cpu_quota:
            return [
                {
                    "check": "modules.cpu_quota",
                    "status": "ok",
                    "message": f"a module's runtime.resources.cpu is its worker's cgroup CPU quota "
                    f"(cgroups {conf.cgroups}), with a CPU-time limit as the backstop",
                }
            ]
        return [
            {
                "check": "modules.cpu_quota",
                "status": "warn",
                "message": "no writable cgroup cpu controller here: a module's runtime.resources.cpu is enforced "
                "as a CPU-time limit (RLIMIT_CPU) only, not as a share of a core",
                "fix": "run the server as root on a host with cgroup v2 (cpu controller available) or v1 cpu",
            }
        ]

    @property
    def max_bytes(self) -> int:
        return self.cfg.max_package_mb << 20

    # ------------------------------------------------------------------ manifest
    @staticmethod
    def schema() -> dict[str, Any]:
        doc = Manifest.model_json_schema(by_alias=True)
        doc["$id"] = "https://aionix.dev/schemas/aionos-v1-agentpackage.json"
        doc["title"] = "AgentPackage (apiVersion aionos/v1)"
        return doc

    @staticmethod
    def parse_manifest(raw: bytes) -> Manifest:
        """The manifest from YAML or JSON bytes; ValidationFailed naming the field otherwise."""
        try:
            doc = oci.load_manifest_yaml(raw)
        except yaml.YAMLError as exc:
            raise field_error("manifest", f"not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise field_error("manifest", "must be a mapping")
        try:
            return Manifest.model_validate(doc)
        except ValidationError as exc:
            items = []
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"]) or "manifest"
                msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
                items.append({"field": loc, "message": msg})
            more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
            raise ValidationFailed(f"{items[0]['field']}: {items[0]['message']}{more}", details=items) from None

    # ------------------------------------------------------------------ blobs
    def _blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
            raise ValueError(f"bad digest {digest!r}")
        return self.blob_dir / hexd

    def _write_blobs(self, blobs: dict[str, bytes]) -> None:
        for digest, data in blobs.items():
            path = self._blob_path(digest)
            if path.exists() and oci.digest_of(path.read_bytes()) == digest:
                continue
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _read_blobs(self, oci_manifest: dict[str, Any]) -> oci.Layout:
        blobs: dict[str, bytes] = {}
        for desc in [oci_manifest.get("config", {}), *oci_manifest.get("layers", [])]:
            try:
                blobs[desc["digest"]] = self._blob_path(desc["digest"]).read_bytes()
            except (OSError, KeyError, ValueError):
                pass
        mbytes = json.dumps(oci_manifest, sort_keys=True, separators=(",", ":")).encode()
        return oci.Layout(blobs=blobs, manifest_digest=oci.digest_of(mbytes), manifest=oci_manifest)

    # ------------------------------------------------------------------ keys
    async def trust_add(self, tenant: str, name: str, pem: str, by: str | None) -> dict[str, Any]:
        try:
            _, algorithm, fingerprint = oci.load_public_key(pem)
        except ValueError as exc:
            raise field_error("public_key", str(exc)) from None
        if await self.store.fetch_one("modules.get_key", {"tenant": tenant, "name": name}):
            raise Conflict(f"a trusted key named {name!r} exists", details=[{"field": "name", "message": "exists"}])
        for row in await self.store.fetch_all("modules.list_keys", {"tenant": tenant}):
            if row["fingerprint"] == fingerprint:
                raise Conflict(
                    f"this key is already trusted as {row['name']!r}",
                    details=[{"field": "public_key", "message": f"already trusted as {row['name']!r}"}],
                )
        row = {
            "tenant": tenant,
            "name": name,
            "algorithm": algorithm,
            "fingerprint": fingerprint,
            "public_key": pem.strip() + "\n",
            "now": time.time(),
            "by": by,
        }
        await self.store.execute("modules.insert_key", row)
        return self._key_info(await self.store.fetch_one("modules.get_key", {"tenant": tenant, "name": name}))

    @staticmethod
    def _key_info(row: Any) -> dict[str, Any]:
        return {k: row[k] for k in ("name", "algorithm", "fingerprint", "public_key", "created_at", "created_by")}

    async def trust_list(self, tenant: str) -> dict[str, Any]:
        rows = await self.store.fetch_all("modules.list_keys", {"tenant": tenant})
        return {"items": [self._key_info(r) for r in rows]}

    async def trust_remove(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.store.fetch_one("modules.get_key", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"trusted key {name!r} not found")
        await self.store.execute("modules.delete_key", {"tenant": tenant, "name": name})
        return {"deleted": name, "fingerprint": row["fingerprint"]}

    # ------------------------------------------------------------------ trusted roots (keyless)
    async def root_add(
        self, tenant: str, name: str, doc: dict[str, Any], ids: list[str], issuers: list[str], by: str | None
    ) -> dict[str, Any]:
        try:
            await asyncio.to_thread(sigstore.parse_trusted_root, doc)
        except ValueError as exc:
            raise field_error("trusted_root", str(exc)) from None
        if await self.store.fetch_one("modules.get_root", {"tenant": tenant, "name": name}):
            raise Conflict(f"a trusted root named {name!r} exists", details=[{"field": "name", "message": "exists"}])
        text = _js(doc)
        row = {
            "tenant": tenant,
            "name": name,
            "trusted_root": text,
            "identities": _js(ids),
            "issuers": _js(issuers),
            "fingerprint": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            "now": time.time(),
            "by": by,
        }
        await self.store.execute("modules.insert_root", row)
        return await self._root_info(await self.store.fetch_one("modules.get_root", {"tenant": tenant, "name": name}))

    @staticmethod
    async def _root_info(row: Any) -> dict[str, Any]:
        root = await asyncio.to_thread(sigstore.parse_trusted_root, jsonutil.loads(row["trusted_root"]))
        return {
            "name": row["name"],
            "identities": jsonutil.loads(row["identities"]),
            "issuers": jsonutil.loads(row["issuers"]),
            "fingerprint": row["fingerprint"],
            **root.summary(),
            "created_at": row["created_at"],
            "created_by": row["created_by"],
        }

    async def root_list(self, tenant: str) -> dict[str, Any]:
        rows = await self.store.fetch_all("modules.list_roots", {"tenant": tenant})
        return {"items": [await self._root_info(r) for r in rows]}

    async def root_remove(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.store.fetch_one("modules.get_root", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"trusted root {name!r} not found")
        await self.store.execute("modules.delete_root", {"tenant": tenant, "name": name})
        return {"deleted": name, "fingerprint": row["fingerprint"]}

    async def _verify_keyless(
        self, tenant: str, layout: oci.Layout, bundles: list[dict[str, Any]]
    ) -> tuple[str | None, list[str]]:
        """(signer, reasons): the first bundle that verifies against a trusted root, or why none did."""
        rows = await self.store.fetch_all("modules.list_roots", {"tenant": tenant})
        if not rows:
            return None, [
                "signature: the keyless Sigstore bundle cannot be verified: no trusted roots are configured "
                "(aio module trust add-root trusted_root.json)"
            ]
        artifact = layout.blobs[layout.manifest_digest]

        def check() -> tuple[str | None, list[str]]:
            problems: list[str] = []
            for bundle in bundles[:8]:
                for row in rows:
                    root = sigstore.parse_trusted_root(jsonutil.loads(row["trusted_root"]))
                    try:
                        facts = sigstore.verify_keyless(
                            bundle, artifact, root, jsonutil.loads(row["identities"]), jsonutil.loads(row["issuers"])
                        )
                    except sigstore.VerifyError as exc:
                        problems.append(f"signature: keyless Sigstore bundle (trusted root {row['name']}): {exc}")
                        continue
                    return f"{facts['identity']} ({facts['issuer']}) via {row['name']}", []
            return None, problems

        return await asyncio.to_thread(check)

    # ------------------------------------------------------------------ install
    async def install(self, tenant: str, data: bytes, by: str | None, source: str = "upload") -> dict[str, Any]:
        if len(data) > self.max_bytes:
            raise field_error("package", f"larger than [modules] max_package_mb ({self.cfg.max_package_mb} MiB)")
        try:
            layout = await asyncio.to_thread(oci.read_layout, data, self.max_bytes)
        except oci.PackageError as exc:
            raise field_error(exc.field, str(exc).split(": ", 1)[-1]) from None
        return await self._install_layout(tenant, layout, by, source)

    async def _install_layout(self, tenant: str, layout: oci.Layout, by: str | None, source: str) -> dict[str, Any]:
        reasons: list[str] = []
        tampered = layout.tampered()
        reasons += [f"tampered layer: {t}" for t in tampered]
        try:
            raw_manifest, code, schemas, sbom = oci.package_files(layout)
        except oci.PackageError as exc:  # e.g. a code tar member that escapes the package
            raise field_error(exc.field, str(exc).split(": ", 1)[-1]) from None
        if raw_manifest is None:
            raise field_error("manifest", "the package has no manifest.yaml layer")
        manifest: Manifest | None = None
        try:
            manifest = self.parse_manifest(raw_manifest)
            name, version = manifest.metadata.name, manifest.metadata.version
        except ValidationFailed as exc:
            try:
                doc = oci.load_manifest_yaml(raw_manifest) if raw_manifest else None
            except yaml.YAMLError:
                raise exc from None
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            name = meta.get("name") if isinstance(meta, dict) else None
            version = meta.get("version") if isinstance(meta, dict) else None
            if not (isinstance(name, str) and re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", name)) or not (
                isinstance(version, str) and re.match(VERSION, version)
            ):
                raise  # the package cannot even be named: refuse it
            reasons.append(f"manifest: {exc.message}")
        # signatures, over the artifact's manifest digest, by a trusted key
        signer = None
        sigs = oci.signatures(layout)
        keyless = oci.keyless_bundles(layout)
        keys = await self.store.fetch_all("modules.list_keys", {"tenant": tenant})
        sig_reasons: list[str] = []
        if not sigs and not keyless:
            sig_reasons.append(
                "signature: the package is not signed (no cosign signature or Sigstore bundle over its manifest digest)"
            )
        elif sigs and not keys:
            sig_reasons.append("signature: no trusted keys are configured (aio module trust add KEY.pub)")
        elif sigs:
            for key_row in keys:
                key, _, _ = oci.load_public_key(key_row["public_key"])
                if any(oci.verify_signature(p, s, key) for p, s in sigs):
                    signer = key_row["name"]
                    break
            if signer is None:
                sig_reasons.append(
                    "signature: no signature verifies with a trusted key (wrong key or altered manifest)"
                )
        if signer is None and keyless:
            # keyless bundles: a Fulcio certificate and a Rekor entry, against the trusted roots
            signer, problems = await self._verify_keyless(tenant, layout, keyless)
            sig_reasons += problems
        if signer is None:
            reasons += sig_reasons
        # SBOM
        sbom_format = sbom_digest = None
        if sbom is None:
            reasons.append("sbom: missing (a CycloneDX or SPDX JSON layer is required)")
        else:
            sbom_format, sbom_bytes = sbom
            sbom_digest = oci.digest_of(sbom_bytes)
            problem = _sbom_problem(sbom_format, sbom_bytes, name)
            if problem:
                reasons.append(f"sbom: {problem}")
        # schemas and code the manifest names
        if manifest is not None:
            for ep_name, ep in manifest.entrypoints.items():
                for which in ("input", "output"):
                    fname = getattr(ep.schema_, which)
                    field = f"entrypoints.{ep_name}.schema.{which}"
                    if fname not in schemas:
                        reasons.append(f"{field}: {fname} is not in the package")
                        continue
                    import jsonschema  # imported on use: ~2.5 MB less idle memory

                    try:
                        jsonschema.Draft202012Validator.check_schema(json.loads(schemas[fname]))
                    except (ValueError, jsonschema.SchemaError) as exc:
                        reasons.append(f"{field}: {fname} is not a JSON Schema: {str(exc).splitlines()[0]}")
                if ep.module and ep.module not in code:
                    reasons.append(f"entrypoints.{ep_name}.module: {ep.module} is not in the code layer")
        state = "quarantined" if reasons else "verified"
        await asyncio.to_thread(
            self._write_blobs, {d: b for d, b in layout.blobs.items() if d in _artifact_digests(layout)}
        )
        row = {
            "tenant": tenant,
            "name": name,
            "version": version,
            "digest": layout.manifest_digest,
            "runtime": manifest.runtime.type if manifest else "unknown",
            "manifest": _js(manifest.model_dump(by_alias=True) if manifest else oci.load_manifest_yaml(raw_manifest)),
            "oci_manifest": _js(layout.manifest),
            "state": state,
            "reasons": _js(reasons),
            "signer": signer,
            "sbom_format": sbom_format,
            "sbom_digest": sbom_digest,
            "intents": _js(manifest.intents if manifest else []),
            "source": source,
            "now": time.time(),
            "by": by,
        }
        await self.store.execute("modules.upsert_package", row)
        self.breakers.pop((tenant, name), None)
        return await self.get(tenant, name, version)

    # ------------------------------------------------------------------ registry
    def _info(self, row: Any) -> dict[str, Any]:
        manifest = jsonutil.loads(row["manifest"])
        return {
            "name": row["name"],
            "version": row["version"],
            "trn": _trn(row["tenant"], row["name"], row["version"]),
            "digest": row["digest"],
            "runtime": row["runtime"],
            "state": row["state"],
            "runnable": row["state"] in RUNNABLE,
            "reasons": jsonutil.loads(row["reasons"]),
            "signer": row["signer"],
            "sbom": {"format": row["sbom_format"], "digest": row["sbom_digest"]} if row["sbom_format"] else None,
            "intents": jsonutil.loads(row["intents"]),
            "permissions": manifest.get("permissions") if isinstance(manifest, dict) else None,
            "policies": manifest.get("policies") if isinstance(manifest, dict) else None,
            "manifest": manifest,
            "source": row["source"],
            "installed_at": row["installed_at"],
            "installed_by": row["installed_by"],
            "approved_at": row["approved_at"],
            "approved_by": row["approved_by"],
            "invocations": dict(self.stats.get((row["tenant"], row["name"]), {"total": 0, "failed": 0})),
            "breaker": self.breakers.get((row["tenant"], row["name"]), Breaker()).state(),
        }

    async def _row(self, tenant: str, name: str, version: str | None, runnable: bool = False) -> Any:
        if version is not None:
            row = await self.store.fetch_one(
                "modules.get_package", {"tenant": tenant, "name": name, "version": version}
            )
            if row is None:
                raise NotFound(
                    f"module {name!r} has no version {version!r}", details={"trn": _trn(tenant, name, version)}
                )
            return row
        rows = await self.store.fetch_all("modules.package_versions", {"tenant": tenant, "name": name})
        if not rows:
            raise NotFound(f"module {name!r} not found", details={"trn": _trn(tenant, name)})
        if runnable:
            for r in rows:
                if r["state"] in RUNNABLE:
                    return r
        return rows[0]

    async def get(self, tenant: str, name: str, version: str | None = None) -> dict[str, Any]:
        info = self._info(await self._row(tenant, name, version))
        rows = await self.store.fetch_all("modules.package_versions", {"tenant": tenant, "name": name})
        info["versions"] = [{"version": r["version"], "state": r["state"]} for r in rows]
        return info

    async def list(
        self, tenant: str, state: str | None, limit: int, cursor: str | None, intent: str | None = None
    ) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "modules.list_packages",
            {"tenant": tenant, "state": state, "cursor": cursor, "limit": limit + 1, "intent": intent},
        )
        items = [self._info(r) for r in rows[:limit]]
        for item in items:
            item.pop("manifest", None)
        nxt = f"{items[-1]['name']}:{items[-1]['version']}" if len(rows) > limit else None
        return {"items": items, "next_cursor": nxt}

    async def sbom(self, tenant: str, name: str, version: str | None) -> dict[str, Any]:
        row = await self._row(tenant, name, version)
        if not row["sbom_digest"]:
            raise NotFound(f"module {name!r} {row['version']} has no SBOM")
        try:
            data = self._blob_path(row["sbom_digest"]).read_bytes()
            doc = json.loads(data)
        except (OSError, ValueError):
            raise NotFound(f"the SBOM of module {name!r} {row['version']} is unreadable") from None
        return {
            "name": name,
            "version": row["version"],
            "format": row["sbom_format"],
            "digest": row["sbom_digest"],
            "sbom": doc,
        }

    async def verify(self, tenant: str, name: str, version: str | None) -> dict[str, Any]:
        """Check the stored blobs again (a tampered layer quarantines the module)."""
        row = await self._row(tenant, name, version)
        problems = await self._tamper_check(row)
        info = await self.get(tenant, name, row["version"])
        info["verified_now"] = not problems
        return info

    async def _tamper_check(self, row: Any) -> list[str]:
        layout = await asyncio.to_thread(self._read_blobs, jsonutil.loads(row["oci_manifest"]))
        bad = layout.tampered()
        if bad and not any(r.startswith("tampered after install") for r in jsonutil.loads(row["reasons"])):
            reasons = jsonutil.loads(row["reasons"]) + [f"tampered after install: {b}" for b in bad]
            await self.store.execute(
                "modules.set_state",
                {
                    "tenant": row["tenant"],
                    "name": row["name"],
                    "version": row["version"],
                    "state": "quarantined",
                    "reasons": _js(reasons),
                    "approved_at": None,
                    "approved_by": None,
                },
            )
            audit = self.rt.audit_row(
                None,
                None,
                "modules.quarantine",
                status=409,
                resource=_trn(row["tenant"], row["name"], row["version"]),
                details={"reasons": reasons, "by": "integrity check"},
            )
            await self.store.execute("core.insert_audit", {**audit, "tenant": row["tenant"]})
        return bad

    async def approve(self, tenant: str, name: str, version: str | None, by: str | None) -> dict[str, Any]:
        row = await self._row(tenant, name, version)
        if row["state"] != "quarantined":
            raise Conflict(f"module {name!r} {row['version']} is {row['state']}, not quarantined")
        if await self._tamper_check(row):
            raise Conflict(f"module {name!r} {row['version']}: its stored layers were altered; remove and reinstall it")
        if any(r.startswith("manifest:") or r.startswith("tampered") for r in jsonutil.loads(row["reasons"])):
            raise Conflict(f"module {name!r} {row['version']} cannot be approved: its manifest or layers are invalid")
        await self.store.execute(
            "modules.set_state",
            {
                "tenant": tenant,
                "name": name,
                "version": row["version"],
                "state": "approved",
                "reasons": row["reasons"],
                "approved_at": time.time(),
                "approved_by": by,
            },
        )
        return await self.get(tenant, name, row["version"])

    async def quarantine(self, tenant: str, name: str, version: str | None, reason: str) -> dict[str, Any]:
        row = await self._row(tenant, name, version)
        reasons = [*jsonutil.loads(row["reasons"]), f"admin: {reason}"]
        await self.store.execute(
            "modules.set_state",
            {
                "tenant": tenant,
                "name": name,
                "version": row["version"],
                "state": "quarantined",
                "reasons": _js(reasons),
                "approved_at": None,
                "approved_by": None,
            },
        )
        return await self.get(tenant, name, row["version"])

    async def remove(self, tenant: str, name: str, version: str | None) -> dict[str, Any]:
        rows = (
            [await self._row(tenant, name, version)]
            if version
            else await self.store.fetch_all("modules.package_versions", {"tenant": tenant, "name": name})
        )
        if not rows:
            raise NotFound(f"module {name!r} not found")
        for row in rows:
            await self.store.execute(
                "modules.delete_package", {"tenant": tenant, "name": name, "version": row["version"]}
            )
            for desc in [
                jsonutil.loads(row["oci_manifest"]).get("config", {}),
                *jsonutil.loads(row["oci_manifest"]).get("layers", []),
            ]:
                d = desc.get("digest", "")
                used = await self.store.fetch_one("modules.digest_users", {"pattern": f"%{d}%"})
                if used and not used["n"]:
                    try:
                        self._blob_path(d).unlink()
                    except (OSError, ValueError):
                        pass
        self.breakers.pop((tenant, name), None)
        return {"deleted": name, "versions": [r["version"] for r in rows]}

    # ------------------------------------------------------------------ running
    async def _load(self, row: Any) -> Loaded:
        bad = await self._tamper_check(row)
        if bad:
            raise _module_error(
                "Module.Quarantined",
                f"module {row['name']} {row['version']} is quarantined: tampered after install: {bad[0]}",
            )
        layout = await asyncio.to_thread(self._read_blobs, jsonutil.loads(row["oci_manifest"]))
        raw_manifest, code, schemas, _ = oci.package_files(layout)
        manifest = self.parse_manifest(raw_manifest or b"")
        return Loaded(manifest=manifest, schemas={k: json.loads(v) for k, v in schemas.items()}, code=code)

    async def run(
        self, tenant: str, name: str, version: str | None, entry: str | None, event: Any, ctx: CallContext
    ) -> dict[str, Any]:
        row = await self._row(tenant, name, version, runnable=True)
        if row["state"] not in RUNNABLE:
            reasons = jsonutil.loads(row["reasons"])
            raise _module_error(
                "Module.Quarantined",
                f"module {name} {row['version']} is quarantined and never runs: {'; '.join(reasons) or 'no reason'}",
            )
        loaded = await self._load(row)
        manifest = loaded.manifest
        if entry is not None and entry not in manifest.entrypoints:
            raise field_error("entrypoint", f"module {name} has no entrypoint {entry!r}")
        ep_name, ep = manifest.entry(entry)
        problem = _schema_problem(loaded.schemas[ep.schema_.input], event)
        if problem:
            raise _module_error("Module.InvalidInput", f"input: {problem}")
        key = (tenant, name)
        breaker = self.breakers.setdefault(key, Breaker())
        if breaker.open_until > time.monotonic():
            raise _module_error(
                "Module.CircuitOpen",
                f"module {name}: {breaker.failures} failures in a row; calls refused for "
                f"{breaker.open_until - time.monotonic():.1f} s more",
            )
        sem = self.sems.get(key)
        if sem is None or getattr(sem, "_cap", None) != manifest.policies.concurrency:
            sem = asyncio.Semaphore(manifest.policies.concurrency)
            sem._cap = manifest.policies.concurrency  # type: ignore[attr-defined]
            self.sems[key] = sem
        try:
            await asyncio.wait_for(sem.acquire(), self.cfg.queue_wait_seconds)
        except TimeoutError:
            raise _module_error(
                "Module.Busy", f"module {name}: {manifest.policies.concurrency} calls running; none finished in time"
            ) from None
        stats = self.stats.setdefault(key, {"total": 0, "failed": 0})
        try:
            outcome, attempts = await self._run_confined(tenant, row, loaded, ep_name, event, ctx)
        finally:
            sem.release()
        stats["total"] += 1
        stats["last_at"] = time.time()
        if outcome.ok:
            problem = _schema_problem(loaded.schemas[ep.schema_.output], outcome.result)
            if problem:
                outcome.ok = False
                outcome.error = {"errorType": "Module.InvalidOutput", "errorMessage": f"output: {problem}"}
                outcome.error_name = "Module.InvalidOutput"
        if outcome.ok:
            breaker.failures = 0
            breaker.open_until = 0.0
            return {
                "module": name,
                "version": row["version"],
                "trn": _trn(tenant, name, row["version"]),
                "entrypoint": ep_name,
                "result": outcome.result,
                "attempts": attempts,
                "duration_ms": round(outcome.duration_ms, 3),
            }
        stats["failed"] += 1
        breaker.failures += 1
        if breaker.failures >= self.cfg.breaker_failures:
            breaker.open_until = time.monotonic() + self.cfg.breaker_cooldown_seconds
        err = outcome.error or {}
        error = outcome.error_name or "Module.Error"
        if error.startswith("Function."):
            error = "Module." + error[len("Function.") :]
        if error.endswith(".TimeoutExpired"):  # the shim's own deadline, just before the runner's
            error = "Module.Timeout"
        raise BusError(
            error,
            str(err.get("errorMessage") or error),
            details={"stderr": outcome.stderr[-2000:], "attempts": attempts},
        )

    async def _run_confined(
        self, tenant: str, row: Any, loaded: Loaded, ep_name: str, event: Any, ctx: CallContext
    ) -> tuple[Any, int]:
        fsvc = self.rt.services.get("functions")
        if fsvc is None:
            raise Unavailable("the functions service (confined runtimes) is not running")
        await fsvc.ready()
        if fsvc.conf is None:
            raise Unavailable("the confined runtimes are not available on this host")
        manifest = loaded.manifest
        ep = manifest.entrypoints[ep_name]
        runtime = "wasm" if manifest.runtime.type == "wasm" else "python"
        files = dict(loaded.code)
        env: dict[str, str] = {}
        if runtime == "wasm":
            # the worker loads the package's one module: keep the entrypoint's, drop the others
            files = {k: v for k, v in files.items() if not k.endswith((".wasm", ".wat")) or k == ep.module}
            if "/" in (ep.module or ""):
                files[os.path.basename(ep.module or "")] = files.pop(ep.module or "")
            handler = "_start"
        else:
            files[SHIM] = SHIM_CODE.encode()
            env["AIONIX_MODULE_COMMAND"] = json.dumps(ep.command)
            handler = "_aionix_module.handler"
        blob = codelib.canonical_zip(files)
        sha = codelib.sha256(blob)
        code_dir = await asyncio.to_thread(codelib.materialize, fsvc.conf.sandbox_dir / "modules", sha, blob)
        secrets, missing = await self._secrets(tenant, row["name"], manifest.permissions.secrets, ctx)
        if missing:
            from aionix.functions.runtimes.base import Outcome

            return Outcome.failure("Module.SecretUnavailable", missing, name="Module.SecretUnavailable"), 0
        env.update(secrets)
        if runtime != "wasm":
            env["AIONIX_MODULE_SECRETS"] = json.dumps(sorted(secrets))
        pol = manifest.policies
        timeout_ms = min(pol.timeout_ms, self.cfg.max_timeout_ms)
        retries = min(pol.retries, self.cfg.max_retries)
        res = manifest.runtime.resources
        timeout_s = timeout_ms / 1000
        cores = res.cpu if isinstance(res.cpu, float) else None  # the validator made it cores
        spec = RunSpec(
            tenant=tenant,
            name=f"module-{row['name']}",
            version=row["version"],
            runtime=runtime,
            handler=handler,
            code_sha256=sha,
            code_dir=code_dir,
            env=env,
            timeout_seconds=timeout_s,
            memory_mb=memory_mb(res.memory),
            # `cpu` cores over the timeout (one core when unset): the CPU time a run may use
            # (RLIMIT_CPU, the backstop where the host has no cgroup CPU quota)
            cpu_seconds=max(1.0, float(int((cores or 1.0) * timeout_s + 0.999))),
            # … and the worker cgroup's CPU quota (cpu.max / cpu.cfs_quota_us) where it has one
            cpu_quota=cores,
            max_processes=4 if runtime != "wasm" else 1,
            max_open_files=64,
            # only the worker's private /tmp is writable (the package and the host are not)
            max_file_bytes=16 << 20,
            permissions={
                "net": manifest.permissions.hosts(),
                # the package's own files, read-only (inside a private /tmp the worker sees them at /tmp/.code)
                "read": [("/tmp/.code" if fsvc.conf.mountns else str(code_dir))]
                if runtime == "wasm" and manifest.permissions.filesystem == "read-only"
                else [],
            },
        )
        gpu = res.gpu
        devices: list[int] = []
        attempts = 0
        try:
            if gpu.count and gpu.vendor != "none":
                from aionix.functions import gpu as gpulib

                try:
                    devices = await fsvc.gpu.acquire(gpu.vendor, gpu.count, gpu.required)
                except gpulib.NoGpu as exc:
                    from aionix.functions.runtimes.base import Outcome

                    return Outcome.failure("Module.GpuUnavailable", exc.message, name="Module.GpuUnavailable"), 0
                spec.devices_env = gpulib.GpuScheduler.environment(gpu.vendor, devices)
            context = {
                "module": row["name"],
                "version": row["version"],
                "entrypoint": ep_name,
                "tenant": tenant,
                "trace_id": ctx.trace_id,
                "function_name": row["name"],
            }
            outcome = None
            for attempt in range(retries + 1):
                attempts = attempt + 1
                outcome = await fsvc._runtime(runtime).invoke(spec, event, context)
                if outcome.ok:
                    break
                if attempt < retries:
                    await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            assert outcome is not None
            if outcome.ok and runtime == "wasm" and isinstance(outcome.result, str):
                try:
                    outcome.result = json.loads(outcome.result)
                except ValueError:
                    pass
            return outcome, attempts
        finally:
            if devices:
                await fsvc.gpu.release(gpu.vendor, devices)

    async def _secrets(
        self, tenant: str, name: str, declared: list[str], ctx: CallContext
    ) -> tuple[dict[str, str], str]:
        """Only the declared secrets, read as the module (`readers` checks its TRN)."""
        values: dict[str, str] = {}
        reader = _trn(tenant, name)
        for decl in declared:
            optional = decl.endswith("?")
            secret = decl.rstrip("?")
            target = f"trn:credvault:{tenant}:credential/{secret}"
            try:
                value = await self.rt.bus.invoke(target, {"op": "resolve", "reader": reader}, ctx.child(caller=reader))
            except Exception as exc:
                if optional:
                    continue
                return {}, f"secret {secret!r}: {getattr(exc, 'message', None) or type(exc).__name__}"
            env_name = "".join(c if c.isalnum() or c == "_" else "_" for c in secret)
            values[env_name] = value if isinstance(value, str) else _js(value)
        return values, ""

    # ------------------------------------------------------------------ bus
    async def execute(self, target: Any, payload: Any, ctx: CallContext) -> Any:
        """`trn:modules:{tenant}:module/NAME[:VERSION]`: the payload is the input (or
        `{"input": …, "entrypoint": …}` when it has exactly those keys); the result is the
        module's output."""
        entry = None
        intent_call = (
            (ctx.caller or "").startswith("trn:ai:")
            and isinstance(payload, dict)
            and isinstance(payload.get("messages"), list)
        )
        if intent_call:
            # the AI router's local route: the user's messages become {"text": …}
            text = "\n".join(
                str(m.get("content", ""))
                for m in payload["messages"]
                if isinstance(m, dict) and m.get("role") != "system"
            )
            payload = {"text": text}
        elif isinstance(payload, dict) and set(payload) <= {"input", "entrypoint"} and "input" in payload:
            entry = payload.get("entrypoint")
            payload = payload["input"]
        try:
            out = await self.run(ctx.tenant, target.name, target.qualifier, entry, payload, ctx)
        except NotFound as exc:
            raise BusError("Module.NotFound", exc.message) from None
        except (ValidationFailed, BadRequest, Unavailable) as exc:
            raise BusError("Module.Error", exc.message) from None
        result = out["result"]
        if intent_call and isinstance(result, dict) and not isinstance(result.get("text"), str):
            # … and its answer's first text field is the task's text
            for key in ("summary", "answer", "output", "content"):
                if isinstance(result.get(key), str):
                    return {**result, "text": result[key]}
        return result


def _artifact_digests(layout: oci.Layout) -> set[str]:
    return {layout.manifest.get("config", {}).get("digest", "")} | {d.get("digest", "") for d in layout.layers()}


def _schema_problem(schema: Any, value: Any) -> str | None:
    import jsonschema

    try:
        validator = jsonschema.Draft202012Validator(schema)
        err = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except (jsonschema.SchemaError, TypeError) as exc:
        return f"schema unusable: {exc}"
    if err is None:
        return None
    where = ".".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message}"


def _sbom_problem(fmt: str, data: bytes, name: str) -> str | None:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        return f"malformed: not JSON ({exc})"
    if not isinstance(doc, dict):
        return "malformed: not a JSON object"
    names: set[str] = set()
    if fmt == "cyclonedx":
        if doc.get("bomFormat") != "CycloneDX" or not isinstance(doc.get("specVersion"), str):
            return "malformed: a CycloneDX SBOM has bomFormat CycloneDX and a specVersion"
        comp = (doc.get("metadata") or {}).get("component") if isinstance(doc.get("metadata"), dict) else None
        if isinstance(comp, dict):
            names.add(str(comp.get("name")))
        for c in doc.get("components") or []:
            if isinstance(c, dict):
                names.add(str(c.get("name")))
    else:
        if not isinstance(doc.get("spdxVersion"), str) or not isinstance(doc.get("packages"), list):
            return "malformed: an SPDX SBOM has spdxVersion and packages"
        for p in doc["packages"]:
            if isinstance(p, dict):
                names.add(str(p.get("name")))
    if name not in names:
        return f"does not name the package {name!r}"
    return None
