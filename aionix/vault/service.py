"""CredVault: encrypted, versioned secrets with Secrets Manager style stages.

Values are sealed with envelope encryption (`envelope.py`) under the master key loaded at start
(`masterkey.py`). Every read of a value — `reveal` by an admin or `resolve` by a workflow or
function over the bus — writes its audit row in the same store transaction that reads the
sealed value, so when the audit cannot be written no value is returned (RELIABILITY S5).

Data-key cache: none, on purpose. Unwrapping a data key is one local AES-GCM operation on 32
bytes (a few µs, there is no KMS round trip to save), while each read already costs a write
transaction for its audit row; a cache would save nothing measurable and would keep plaintext
key material in memory for longer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from aionix import jsonutil
from aionix import trn as trnlib
from aionix.bus import BusError, CallContext
from aionix.errors import AionixError, BadRequest, ConfigError, Conflict, Forbidden, NotFound, field_error
from aionix.redact import PROCESS
from aionix.vault import envelope
from aionix.vault.envelope import IntegrityError, Sealed
from aionix.vault.masterkey import (
    ENV_KEY,
    ENV_PASSPHRASE,
    MasterKey,
    check_passphrase,
    decode_key,
    derive_from_passphrase,
    fsync_dir,
    load_master_key,
    read_key_file,
    write_key_file,
)
from aionix.vault.models import CreateSecret, RotateSecret, Rotation, SecretPolicy, UpdateSecret
from aionix.vault.systemkeys import SystemKeys

if TYPE_CHECKING:
    from starlette.requests import Request

    from aionix.api.auth import Principal
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.vault")
SALT_BYTES = 16


class VaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_file: str = Field("master.key", description="master key file, relative to the data dir")
    recovery_window_days: float = Field(7.0, ge=0, le=365)
    purge_interval_seconds: float = Field(300.0, gt=0)
    rotation_check_seconds: float = Field(30.0, gt=0)
    #: how long a node that claimed a due rotation may take before another node runs it again
    rotation_claim_seconds: float = Field(300.0, gt=0, le=86400)
    max_value_bytes: int = Field(65_536, ge=64, le=1_048_576)


class _StaleMaster(Exception):
    """The master key changed between sealing and committing: seal again."""


class AccessDenied(BusError):
    """The caller is not among the secret's `readers` (or has no identity)."""

    status = 403
    code = "access_denied"

    def __init__(self, cause: str) -> None:
        super().__init__("CredVault.AccessDenied", cause)


@dataclass(frozen=True, slots=True)
class _Reader:
    """Who reads a value, for the audit row. `caller` is the platform-set TRN of the resource
    that reads (checked against the secret's `readers` when `enforce`); `on_behalf_of` is what
    the caller said it reads for (e.g. the execution), recorded only."""

    request: Request | None
    principal: Principal | None
    action: str
    caller: str | None = None
    on_behalf_of: str | None = None
    trace_id: str | None = None
    key_id: str | None = None
    enforce: bool = False


def _json(value: Any) -> str:
    return jsonutil.dumps(value).decode()


def register_redaction(value: Any) -> None:
    """Teach the server log's redactor a revealed value (and every string inside a JSON value)."""
    PROCESS.add(value)


MAX_READERS = 64


def default_readers(tenant: str) -> list[str]:
    """Any resource of the tenant: the behaviour before secrets had a policy."""
    return [f"trn:*:{tenant}:*"]


def check_readers(tenant: str, readers: Any, field: str = "readers") -> list[str]:
    """Validate reader patterns: `trn:SERVICE:TENANT:RESOURCE`, `*` as a wildcard, in the
    secret's tenant (or `*`, which still only matches callers of this tenant)."""
    if not isinstance(readers, list):
        raise field_error(field, "must be a list of TRN patterns")
    if len(readers) > MAX_READERS:
        raise field_error(field, f"at most {MAX_READERS} patterns")
    out: list[str] = []
    for i, pattern in enumerate(readers):
        where = f"{field}[{i}]"
        if not isinstance(pattern, str) or not pattern:
            raise field_error(where, "must be a non-empty TRN pattern string")
        if len(pattern) > 512:
            raise field_error(where, "longer than 512 characters")
        if any(c.isspace() or ord(c) < 32 for c in pattern):
            raise field_error(where, "must not contain whitespace or control characters")
        parts = pattern.split(":", 3)
        if len(parts) < 4 or parts[0] != "trn" or not parts[1] or not parts[3]:
            raise field_error(where, "must look like trn:SERVICE:TENANT:RESOURCE (`*` matches any characters)")
        if parts[2] not in (tenant, "*"):
            raise field_error(where, f"must name your tenant ({tenant}) or *")
        if pattern not in out:
            out.append(pattern)
    return out


def reader_allowed(readers: list[str], caller: str | None) -> bool:
    """Whether `caller` (a TRN) matches one of the patterns; `*` matches any characters."""
    if not caller:
        return False
    for pattern in readers:
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        if re.fullmatch(regex, caller):
            return True
    return False


class VaultService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.store = rt.store
        self.config: VaultConfig = rt.config.service_section("vault", VaultConfig)
        self.key_file = Path(self.config.key_file)
        if not self.key_file.is_absolute():
            self.key_file = rt.config.data_dir / self.key_file
        self.master: MasterKey | None = None
        self.master_id = ""
        #: master_id -> key; holds two keys only while a master key rotation commits.
        self._keys: dict[str, bytes] = {}
        self._rotation_lock = asyncio.Lock()
        #: platform data keys (webhook secrets, idempotent answers) wrapped by the master key
        self.system_keys = SystemKeys(self)

    # ------------------------------------------------------------------ lifecycle
    @property
    def next_key_file(self) -> Path:
        return self.key_file.with_name(self.key_file.name + ".next")

    async def start(self) -> None:
        row = await self.store.fetch_one("vault.get_master")
        salt = row["salt"] if row else pysecrets.token_bytes(SALT_BYTES)
        master = await asyncio.to_thread(load_master_key, self.key_file, salt=salt, initialised=row is not None)
        if row is None:
            master_id = pysecrets.token_hex(8)
            nonce, check = envelope.seal_check(master.key)
            params = {
                "master_id": master_id,
                "source": master.source,
                "salt": salt,
                "check_nonce": nonce,
                "check_value": check,
                "now": time.time(),
            }
            await self.store.transaction(lambda tx: tx.execute("vault.insert_master", params))
            log.info("vault initialised with a master key from %s", master.describe())
        else:
            master_id = row["master_id"]
            if not envelope.check_opens(master.key, row["check_nonce"], row["check_value"]):
                master = await asyncio.to_thread(self._finish_interrupted_rotation, master, row)
            elif master.source == "file" and self.next_key_file.exists():
                # A rotation that never committed left its new key behind: the old one is valid.
                self.next_key_file.unlink()
        self.master = master
        self.master_id = master_id
        self._keys = {master_id: master.key}
        self.rt.health["vault"] = {"master_key_source": master.source}
        self.rt.spawn(self._purge_loop(), "vault-purge")
        self.rt.spawn(self._rotation_loop(), "vault-rotation")

    def _finish_interrupted_rotation(self, master: MasterKey, row: dict[str, Any]) -> MasterKey:
        """The key from its source does not open the key check. If a master key rotation
        committed but was cut off before swapping the key file, the new key is in
        `master.key.next`: finish the swap. Otherwise the key is wrong: stop."""
        nxt = self.next_key_file
        if master.source == "file" and nxt.exists():
            key = read_key_file(nxt)
            if envelope.check_opens(key, row["check_nonce"], row["check_value"]):
                nxt.replace(self.key_file)
                fsync_dir(self.key_file.parent)
                log.warning("vault: finished an interrupted master key rotation (key file replaced)")
                return MasterKey(key, "file", self.key_file)
        raise ConfigError(
            f"vault: wrong master key: {master.describe()} does not open this vault's key check "
            f"(it was sealed with a key from {_describe_source(row['source'])}); nothing was changed"
        )

    async def stop(self) -> None:
        self._keys.clear()

    # ------------------------------------------------------------------ helpers
    def _trn(self, tenant: str, name: str) -> str:
        return f"trn:credvault:{tenant}:credential/{name}"

    def info(self, row: dict[str, Any]) -> dict[str, Any]:
        rotation = jsonutil.loads(row["rotation"]) if row["rotation"] else None
        return {
            "trn": self._trn(row["tenant"], row["name"]),
            "name": row["name"],
            "type": row["type"],
            "description": row["description"],
            "labels": jsonutil.loads(row["labels"]),
            "rotation": rotation,
            "latest_version": row["latest_version"],
            "stages": {
                "current": row["current_version"],
                "previous": row["previous_version"],
                "pending": row["pending_version"],
            },
            "created_at": row["created_at"],
            "created_by": row["created_by"],
            "updated_at": row["updated_at"],
            "rotated_at": row["rotated_at"],
            "next_rotation_at": row["next_rotation_at"],
            "deleted_at": row["deleted_at"],
            "purge_after": row["purge_after"],
            "readers": self.readers_of(row),
        }

    @staticmethod
    def readers_of(row: dict[str, Any]) -> list[str]:
        readers = row.get("readers")
        return jsonutil.loads(readers) if readers is not None else default_readers(row["tenant"])

    def check_value(self, type_: str, value: Any, field: str = "value") -> bytes:
        """Validate a value for its type and encode it; messages never repeat the value."""
        if value is None:
            raise field_error(field, "required")
        if type_ in ("api_key", "password", "certificate"):
            if not isinstance(value, str) or not value:
                raise field_error(field, f"a {type_} must be a non-empty string")
            if type_ == "certificate" and "-----BEGIN " not in value:
                raise field_error(field, "a certificate must be PEM text (-----BEGIN …-----)")
        elif type_ == "oauth_token" and not (isinstance(value, str) and value) and not isinstance(value, dict):
            raise field_error(field, "an oauth_token must be a non-empty string or an object")
        plaintext = jsonutil.dumps(value)
        if len(plaintext) > self.config.max_value_bytes:
            raise field_error(field, f"larger than {self.config.max_value_bytes} bytes")
        return plaintext

    def _check_rotation(self, tenant: str, rotation: Rotation | None) -> tuple[str | None, float | None]:
        if rotation is None:
            return None, None
        data = rotation.model_dump()
        if rotation.target is not None:
            parsed = trnlib.parse(rotation.target)
            if (parsed.service, parsed.type) not in {("aionixfn", "function"), ("stepflow", "template")}:
                raise field_error(
                    "rotation.target", "must be a function (trn:aionixfn:…) or workflow (trn:stepflow:…:template/…) TRN"
                )
            if parsed.tenant != tenant:
                raise field_error("rotation.target", f"must be in your tenant ({tenant})")
        next_at = None
        if rotation.schedule is not None:
            from croniter import croniter  # only for rotation schedules: not imported at start

            if not croniter.is_valid(rotation.schedule):
                raise field_error("rotation.schedule", "not a valid cron expression")
            if rotation.target is None:
                raise field_error("rotation.target", "a rotation schedule needs a target that makes the new value")
            next_at = _next_fire(rotation.schedule, time.time())
            if next_at is None:
                raise field_error("rotation.schedule", "never fires (no matching date)")
        return _json(data), next_at

    def _current_key(self) -> tuple[str, bytes]:
        if self.master is None:
            raise AionixError("the vault is not started")
        return self.master_id, self._keys[self.master_id]

    def _require_master(self, tx: Any, master_id: str) -> None:
        row = tx.fetch_one("vault.get_master")
        if row is None or row["master_id"] != master_id:
            raise _StaleMaster()

    async def _write(self, make: Callable[[str, bytes], Callable[[Any], Any]]) -> Any:
        """Run a write that seals with the master key; seal again if a master key rotation
        committed in between (so nothing is ever sealed under a retired key)."""
        for _ in range(5):
            master_id, key = self._current_key()
            try:
                return await self.store.transaction(make(master_id, key))
            except _StaleMaster:
                await asyncio.sleep(0.01)
        raise Conflict("the master key is being rotated; try again")

    def _get(self, tx: Any, tenant: str, name: str, *, deleted_ok: bool = False) -> dict[str, Any]:
        row = tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"secret {name!r} not found")
        if row["deleted_at"] is not None and not deleted_ok:
            raise NotFound(f"secret {name!r} is deleted (restorable until it is purged at {row['purge_after']:.0f})")
        return row

    @staticmethod
    def _version_params(
        tenant: str, name: str, version: int, master_id: str, sealed: Sealed, by: str | None, now: float
    ) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "name": name,
            "version": version,
            "master_id": master_id,
            "key_nonce": sealed.key_nonce,
            "wrapped_key": sealed.wrapped_key,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
            "now": now,
            "by": by,
        }

    @staticmethod
    def _update_params(row: dict[str, Any], now: float) -> dict[str, Any]:
        return {
            "tenant": row["tenant"],
            "name": row["name"],
            "description": row["description"],
            "labels": row["labels"],
            "rotation": row["rotation"],
            "latest_version": row["latest_version"],
            "current_version": row["current_version"],
            "previous_version": row["previous_version"],
            "pending_version": row["pending_version"],
            "rotated_at": row["rotated_at"],
            "next_rotation_at": row["next_rotation_at"],
            "now": now,
        }

    # ------------------------------------------------------------------ secrets
    async def create(self, tenant: str, by: str | None, body: CreateSecret) -> dict[str, Any]:
        plaintext = self.check_value(body.type, body.value)
        rotation, next_at = self._check_rotation(tenant, body.rotation)
        readers = check_readers(tenant, body.readers) if body.readers is not None else default_readers(tenant)
        name = body.name

        def make(master_id: str, key: bytes) -> Callable[[Any], Any]:
            sealed = envelope.seal(key, plaintext, tenant, name, 1)

            def fn(tx: Any) -> dict[str, Any]:
                self._require_master(tx, master_id)
                existing = tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
                if existing is not None:
                    if existing["deleted_at"] is not None:
                        raise Conflict(f"secret {name!r} is deleted but not purged: restore it or delete it with force")
                    raise Conflict(f"secret {name!r} already exists", details={"field": "name"})
                now = time.time()
                tx.execute(
                    "vault.insert_secret",
                    {
                        "tenant": tenant,
                        "name": name,
                        "type": body.type,
                        "description": body.description,
                        "labels": _json(body.labels),
                        "rotation": rotation,
                        "now": now,
                        "by": by,
                        "next_rotation_at": next_at,
                        "readers": _json(readers),
                    },
                )
                tx.execute("vault.insert_version", self._version_params(tenant, name, 1, master_id, sealed, by, now))
                self.rt.quotas.charge_tx(tx, tenant, "stored_bytes", len(sealed.ciphertext))  # the tenant's quota
                return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

            return fn

        return self.info(await self._write(make))

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.store.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"secret {name!r} not found")
        return self.info(row)

    async def list(self, tenant: str, *, limit: int, cursor: str | None, include_deleted: bool) -> dict[str, Any]:
        rows = await self.store.fetch_all(
            "vault.list_secrets",
            {"tenant": tenant, "cursor": cursor, "limit": limit + 1, "include_deleted": int(include_deleted)},
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [self.info(r) for r in rows], "next_cursor": rows[-1]["name"] if more else None}

    async def update(self, tenant: str, name: str, by: str | None, body: UpdateSecret) -> dict[str, Any]:
        current = await self.store.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        if current is None:
            raise NotFound(f"secret {name!r} not found")
        plaintext = self.check_value(current["type"], body.value) if body.value is not None else None
        rotation, next_at = self._check_rotation(tenant, body.rotation) if body.rotation is not None else (None, None)
        readers = check_readers(tenant, body.readers) if body.readers is not None else None

        def make(master_id: str, key: bytes) -> Callable[[Any], Any]:
            def fn(tx: Any) -> dict[str, Any]:
                row = self._get(tx, tenant, name)
                now = time.time()
                if body.description is not None:
                    row["description"] = body.description
                if body.labels is not None:
                    row["labels"] = _json(body.labels)
                if body.clear_rotation:
                    row["rotation"], row["next_rotation_at"] = None, None
                elif body.rotation is not None:
                    row["rotation"], row["next_rotation_at"] = rotation, next_at
                if plaintext is not None:
                    self._require_master(tx, master_id)
                    version = row["latest_version"] + 1
                    sealed = envelope.seal(key, plaintext, tenant, name, version)
                    tx.execute(
                        "vault.insert_version", self._version_params(tenant, name, version, master_id, sealed, by, now)
                    )
                    self.rt.quotas.charge_tx(tx, tenant, "stored_bytes", len(sealed.ciphertext))  # the tenant's quota
                    row["latest_version"] = version
                    row["previous_version"] = row["current_version"]
                    row["current_version"] = version
                tx.execute("vault.update_secret", self._update_params(row, now))
                if readers is not None:
                    tx.execute(
                        "vault.set_readers", {"tenant": tenant, "name": name, "readers": _json(readers), "now": now}
                    )
                return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

            return fn

        return self.info(await self._write(make))

    async def set_policy(self, tenant: str, name: str, body: SecretPolicy) -> dict[str, Any]:
        """Replace the secret's `readers` (the route allows admins only)."""
        readers = check_readers(tenant, body.readers)

        def fn(tx: Any) -> dict[str, Any]:
            self._get(tx, tenant, name)
            tx.execute(
                "vault.set_readers", {"tenant": tenant, "name": name, "readers": _json(readers), "now": time.time()}
            )
            return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

        return self.info(await self.store.transaction(fn))

    async def delete(self, tenant: str, name: str, *, force: bool) -> dict[str, Any]:
        window = self.config.recovery_window_days * 86400

        def fn(tx: Any) -> dict[str, Any]:
            row = self._get(tx, tenant, name, deleted_ok=True)
            now = time.time()
            if force or window == 0:
                tx.execute("vault.purge_versions", {"tenant": tenant, "name": name})
                tx.execute("vault.purge_secret", {"tenant": tenant, "name": name})
                return {**row, "deleted_at": now, "purge_after": now}
            if row["deleted_at"] is not None:
                raise NotFound(f"secret {name!r} is already deleted")
            tx.execute("vault.mark_deleted", {"tenant": tenant, "name": name, "now": now, "purge_after": now + window})
            return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

        return self.info(await self.store.transaction(fn))

    async def restore(self, tenant: str, name: str) -> dict[str, Any]:
        def fn(tx: Any) -> dict[str, Any]:
            row = self._get(tx, tenant, name, deleted_ok=True)
            if row["deleted_at"] is None:
                raise Conflict(f"secret {name!r} is not deleted")
            tx.execute("vault.restore_secret", {"tenant": tenant, "name": name, "now": time.time()})
            return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

        return self.info(await self.store.transaction(fn))

    async def versions(self, tenant: str, name: str) -> dict[str, Any]:
        row = await self.store.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        if row is None:
            raise NotFound(f"secret {name!r} not found")
        rows = await self.store.fetch_all("vault.list_versions", {"tenant": tenant, "name": name})
        return {
            "name": name,
            "items": [
                {
                    "version": r["version"],
                    "stages": _stages_of(row, r["version"]),
                    "created_at": r["created_at"],
                    "created_by": r["created_by"],
                }
                for r in rows
            ],
        }

    # ------------------------------------------------------------------ reading values
    async def read_value(
        self, tenant: str, name: str, who: _Reader, *, version: int | None = None, stage: str | None = None
    ) -> dict[str, Any]:
        """Open one version's value. The audit row (who, when, which version) is written in
        the same transaction as the read: no audit, no value."""
        audit = self.rt.audit_row(who.request, who.principal, who.action, resource=self._trn(tenant, name))
        audit["tenant"] = tenant
        if audit["key_id"] is None:
            audit["key_id"] = who.key_id

        def fn(tx: Any) -> dict[str, Any]:
            row = self._get(tx, tenant, name)
            if version is not None:
                chosen = version
            else:
                chosen = row[f"{stage or 'current'}_version"]
                if chosen is None:
                    raise NotFound(f"secret {name!r} has no {stage or 'current'} version")
            stored = tx.fetch_one("vault.get_version", {"tenant": tenant, "name": name, "version": chosen})
            if stored is None:
                raise NotFound(f"secret {name!r} has no version {chosen}")
            details = {"version": chosen, "stage": stage, "reader": who.caller, "trace_id": who.trace_id}
            if who.on_behalf_of is not None and who.on_behalf_of != who.caller:
                details["on_behalf_of"] = who.on_behalf_of
            if who.enforce and not reader_allowed(self.readers_of(row), who.caller):
                why = (
                    f"{who.caller} is not among the readers of secret {name!r}"
                    if who.caller
                    else f"secret {name!r}: the call carries no caller identity"
                )
                tx.execute("core.insert_audit", {**audit, "status": 403, "details": _json({**details, "error": why})})
                return {"error": AccessDenied(why)}
            key = self._keys.get(stored["master_id"])
            try:
                if key is None:
                    raise IntegrityError(f"secret {name!r} version {chosen}: sealed under an unknown master key")
                plaintext = envelope.open_sealed(key, _sealed(stored), tenant, name, chosen)
            except IntegrityError as exc:
                tx.execute(
                    "core.insert_audit", {**audit, "status": 500, "details": _json({**details, "error": exc.message})}
                )
                return {"error": exc}
            tx.execute("core.insert_audit", {**audit, "status": 200, "details": _json(details)})
            return {
                "name": name,
                "type": row["type"],
                "version": chosen,
                "stages": _stages_of(row, chosen),
                "value": jsonutil.loads(plaintext),
            }

        result = await self.store.transaction(fn)
        if "error" in result:
            raise result["error"]
        register_redaction(result["value"])
        return result

    async def reveal(
        self, tenant: str, name: str, request: Request, principal: Principal, *, version: int | None, stage: str | None
    ) -> dict[str, Any]:
        if version is not None and stage is not None:
            raise field_error("query.stage", "give a version or a stage, not both", BadRequest)
        return await self.read_value(
            tenant, name, _Reader(request, principal, "credvault.reveal"), version=version, stage=stage
        )

    async def execute(self, target: trnlib.TRN, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for `trn:credvault:{tenant}:credential/{name}`: `{"op": "resolve",
        "reader"?, "version"?, "stage"?}` → the value (audited). Only a caller (`ctx.caller`,
        set by the platform) among the secret's `readers` gets it; otherwise
        `CredVault.AccessDenied`, audited with the caller. `reader` in the payload is recorded
        as `on_behalf_of`, never trusted. The value joins `ctx.secrets`, the redaction set of
        the execution or invocation the call serves."""
        if isinstance(payload, dict) and payload.get("op") == "put":
            # another service keeps a value it made here (e.g. refreshed OAuth2 tokens): a new version
            writer = payload.get("writer")
            if writer is not None and not isinstance(writer, str):
                raise BadRequest("credvault: writer must be a TRN string")
            if "value" not in payload:
                raise BadRequest("credvault: put needs a value")
            info = await self.update(target.tenant, target.path, writer, UpdateSecret(value=payload["value"]))
            return {"name": info["name"], "version": info["stages"]["current"]}
        if not isinstance(payload, dict) or payload.get("op") != "resolve":
            raise BadRequest('credvault: payload must be {"op": "resolve", "reader": TRN} or {"op": "put", "value": …}')
        reader = payload.get("reader")
        if reader is not None and not isinstance(reader, str):
            raise BadRequest("credvault: reader must be a TRN string")
        version = payload.get("version")
        stage = payload.get("stage")
        if version is not None and (not isinstance(version, int) or version < 1):
            raise BadRequest("credvault: version must be a positive integer")
        if stage is not None and stage not in ("current", "previous", "pending"):
            raise BadRequest("credvault: stage must be current, previous or pending")
        who = _Reader(
            None,
            None,
            "credvault.resolve",
            caller=ctx.caller,
            on_behalf_of=reader,
            trace_id=ctx.trace_id,
            key_id=ctx.principal,
            enforce=True,
        )
        result = await self.read_value(target.tenant, target.path, who, version=version, stage=stage)
        if ctx.secrets is not None:
            ctx.secrets.add(result["value"])  # joins the redaction set of the execution or invocation
        return result["value"]

    async def resolve_metadata(self, target: trnlib.TRN) -> dict[str, Any] | None:
        row = await self.store.fetch_one("vault.get_secret", {"tenant": target.tenant, "name": target.path})
        return self.info(row) if row is not None else None

    # ------------------------------------------------------------------ rotation
    async def rotate(
        self, tenant: str, name: str, by: str | None, body: RotateSecret, ctx: CallContext | None = None
    ) -> dict[str, Any]:
        """Create a pending version (from `value`, or from the rotation target), then promote it
        (pending → current, current → previous) unless `promote` is false. Without a value and
        with a pending version already there, promote that one."""
        row = await self.store.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"secret {name!r} not found")
        value = body.value
        if value is None and row["pending_version"] is None:
            rotation = jsonutil.loads(row["rotation"]) if row["rotation"] else {}
            target = rotation.get("target")
            if not target:
                raise field_error("value", "required: the secret has no rotation target to make a new value")
            value = await self._invoke_rotation(tenant, name, row, target, ctx)
        plaintext = self.check_value(row["type"], value) if value is not None else None

        def make(master_id: str, key: bytes) -> Callable[[Any], Any]:
            def fn(tx: Any) -> dict[str, Any]:
                current = self._get(tx, tenant, name)
                now = time.time()
                if plaintext is not None:
                    self._require_master(tx, master_id)
                    version = current["latest_version"] + 1
                    sealed = envelope.seal(key, plaintext, tenant, name, version)
                    tx.execute(
                        "vault.insert_version", self._version_params(tenant, name, version, master_id, sealed, by, now)
                    )
                    current["latest_version"] = version
                    current["pending_version"] = version
                if body.promote and current["pending_version"] is not None:
                    current["previous_version"] = current["current_version"]
                    current["current_version"] = current["pending_version"]
                    current["pending_version"] = None
                    current["rotated_at"] = now
                rotation = jsonutil.loads(current["rotation"]) if current["rotation"] else {}
                if rotation.get("schedule"):
                    current["next_rotation_at"] = _next_fire(rotation["schedule"], now)
                tx.execute("vault.update_secret", self._update_params(current, now))
                return tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})

            return fn

        info = self.info(await self._write(make))
        await self.rt.publish_event(
            tenant,
            "credvault",
            "SecretRotated",
            {"trn": info["trn"], "name": name, "version": info["stages"]["current"]},
        )
        return info

    async def _invoke_rotation(
        self, tenant: str, name: str, row: dict[str, Any], target: str, ctx: CallContext | None
    ) -> Any:
        payload = {
            "secret": self._trn(tenant, name),
            "name": name,
            "type": row["type"],
            "current_version": row["current_version"],
        }
        if target.startswith("trn:stepflow:"):
            payload = {"input": payload, "mode": "sync"}
        ctx = ctx or CallContext(tenant=tenant)
        try:
            result = await self.rt.bus.invoke(target, payload, ctx)
        except BusError as exc:
            raise BusError(exc.error, f"rotation target {target} failed: {exc.cause}") from None
        if target.startswith("trn:stepflow:"):
            if not isinstance(result, dict) or result.get("status") != "SUCCEEDED":
                raise BusError("CredVault.RotationFailed", f"rotation workflow {target} did not succeed")
            result = result.get("output")
        if isinstance(result, dict) and "value" in result:
            result = result["value"]
        if result is None:
            raise BusError("CredVault.RotationFailed", f"rotation target {target} returned no value")
        return result

    async def _rotation_loop(self) -> None:
        """Rotate secrets whose `rotation.schedule` is due. (When the triggers service can
        schedule this, it calls the same `rotate`; until then the vault runs its own clock.)"""
        while True:
            await asyncio.sleep(self.config.rotation_check_seconds)
            try:
                due = await self.store.fetch_all("vault.due_rotations", {"now": time.time(), "limit": 50})
                for item in due:
                    if not await self._claim_rotation(item):
                        continue  # another node runs it (or it was rotated or changed meanwhile)
                    try:
                        await self.rotate(item["tenant"], item["name"], "rotation-schedule", RotateSecret())
                    except AionixError as exc:
                        log.warning(
                            "scheduled rotation of secret %s/%s failed: %s", item["tenant"], item["name"], exc.message
                        )
                        await self._postpone_rotation(item["tenant"], item["name"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rotation check failed")

    async def _claim_rotation(self, item: dict[str, Any]) -> bool:
        """Take a due rotation: a compare-and-set on its due time, so of many nodes on one
        database exactly one runs it. Until the rotation sets the next due time (or it fails
        and is postponed) the due time is `rotation_claim_seconds` ahead: if this node dies
        meanwhile, a node runs it then."""
        claimed = await self.store.execute(
            "vault.claim_rotation",
            {
                "tenant": item["tenant"],
                "name": item["name"],
                "expected": item["next_rotation_at"],
                "until": time.time() + self.config.rotation_claim_seconds,
            },
        )
        return claimed == 1

    async def _postpone_rotation(self, tenant: str, name: str) -> None:
        def fn(tx: Any) -> None:
            row = tx.fetch_one("vault.get_secret", {"tenant": tenant, "name": name})
            if row is None or not row["rotation"]:
                return
            schedule = jsonutil.loads(row["rotation"]).get("schedule")
            now = time.time()
            row["next_rotation_at"] = _next_fire(schedule, now) if schedule else None
            tx.execute("vault.update_secret", self._update_params(row, row["updated_at"]))

        await self.store.transaction(fn)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.purge_interval_seconds)
            try:
                await self.purge_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("purging deleted secrets failed")

    async def purge_due(self) -> int:
        """Purge secrets whose recovery window has passed (on PostgreSQL the due rows are
        locked, skipping those another node is purging)."""

        def fn(tx: Any) -> int:
            due = tx.fetch_all("vault.due_purges", {"now": time.time(), "limit": 1000})
            for item in due:
                tx.execute("vault.purge_versions", item)
                tx.execute("vault.purge_secret", item)
            return len(due)

        return await self.store.transaction(fn)

    # ------------------------------------------------------------------ master key rotation
    async def master_status(self) -> dict[str, Any]:
        row = await self.store.fetch_one("vault.get_master")
        count = await self.store.fetch_one("vault.count_versions")
        assert row is not None
        return {
            "source": row["source"],
            "master_id": row["master_id"],
            "created_at": row["created_at"],
            "rotated_at": row["rotated_at"],
            "versions": count["n"] if count else 0,
        }

    async def rotate_master_key(
        self, request: Request | None, principal: Principal | None, *, new_key: str | None, new_passphrase: str | None
    ) -> dict[str, Any]:
        """Re-wrap every data key under a new master key in one transaction. Values are not
        re-encrypted (their data keys do not change). An interrupted rotation leaves the old
        key valid (the transaction did not commit) or, with a key file, the new key waiting in
        `master.key.next`, which the next start picks up."""
        async with self._rotation_lock:
            assert self.master is not None
            old_id, old_key = self._current_key()
            source = self.master.source
            salt = pysecrets.token_bytes(SALT_BYTES)
            if source == "env":
                if new_key is None:
                    raise field_error("new_key", f"required: this server's master key comes from {ENV_KEY}")
                try:
                    key = decode_key(new_key, "new_key")
                except ConfigError as exc:
                    raise field_error("new_key", exc.message.split(": ", 2)[-1]) from None
                next_step = f"restart the server with {ENV_KEY} set to the new key"
            elif source == "passphrase":
                if new_passphrase is None:
                    raise field_error(
                        "new_passphrase", f"required: this server's master key comes from {ENV_PASSPHRASE}"
                    )
                check_passphrase(new_passphrase, "new_passphrase")
                key = await asyncio.to_thread(derive_from_passphrase, new_passphrase, salt)
                next_step = f"restart the server with {ENV_PASSPHRASE} set to the new passphrase"
            else:
                if new_key is not None or new_passphrase is not None:
                    raise field_error("new_key", "not accepted: with a key file the server generates the new key")
                key = envelope.new_key()
                nxt = self.next_key_file
                nxt.unlink(missing_ok=True)
                await asyncio.to_thread(write_key_file, nxt, key)
                next_step = f"back up the new key file {self.key_file}"
            if key == old_key:
                raise field_error("new_key", "is the current master key")
            new_id = pysecrets.token_hex(8)
            self._keys[new_id] = key
            audit = self.rt.audit_row(
                request, principal, "credvault.rotate_master_key", resource="credvault:master-key", status=200
            )
            check_nonce, check_value = envelope.seal_check(key)

            def fn(tx: Any) -> int:
                updates = []
                for r in tx.fetch_all("vault.all_wrapped_keys"):
                    if r["master_id"] != old_id:
                        raise IntegrityError(
                            f"secret {r['name']!r} version {r['version']} (tenant {r['tenant']}) is wrapped by an unknown master key"
                        )
                    key_nonce, wrapped = envelope.rewrap(
                        old_key, key, r["key_nonce"], r["wrapped_key"], r["tenant"], r["name"], r["version"]
                    )
                    updates.append(
                        {
                            "tenant": r["tenant"],
                            "name": r["name"],
                            "version": r["version"],
                            "master_id": new_id,
                            "key_nonce": key_nonce,
                            "wrapped_key": wrapped,
                        }
                    )
                tx.executemany("vault.rewrap_version", updates)
                SystemKeys.rewrap(tx, old_id, old_key, new_id, key)
                changed = tx.execute(
                    "vault.update_master",
                    {
                        "master_id": new_id,
                        "old_master_id": old_id,
                        "source": source,
                        "salt": salt,
                        "check_nonce": check_nonce,
                        "check_value": check_value,
                        "now": time.time(),
                    },
                )
                if changed != 1:
                    raise Conflict("the master key changed during the rotation")
                tx.execute(
                    "core.insert_audit", {**audit, "details": _json({"rewrapped": len(updates), "master_id": new_id})}
                )
                return len(updates)

            try:
                count = await self.store.transaction(fn)
            except BaseException:
                self._keys.pop(new_id, None)
                if source == "file":
                    self.next_key_file.unlink(missing_ok=True)
                raise
            if source == "file":
                await asyncio.to_thread(self._swap_key_file)
            self.master = MasterKey(key, source, self.master.path)
            self.master_id = new_id
            self._keys.pop(old_id, None)
            log.info("vault: master key rotated (%d data keys re-wrapped)", count)
            status = await self.master_status()
            return {**status, "rewrapped": count, "next_step": next_step}

    def _swap_key_file(self) -> None:
        self.next_key_file.replace(self.key_file)
        fsync_dir(self.key_file.parent)


def _next_fire(schedule: str, after: float) -> float | None:
    from croniter import CroniterError, croniter

    try:
        return croniter(schedule, after).get_next(float)
    except (CroniterError, ValueError, KeyError):
        return None


def _sealed(row: dict[str, Any]) -> Sealed:
    return Sealed(row["key_nonce"], row["wrapped_key"], row["nonce"], row["ciphertext"])


def _stages_of(row: dict[str, Any], version: int) -> list[str]:
    return [stage for stage in ("current", "previous", "pending") if row[f"{stage}_version"] == version]


def _describe_source(source: str) -> str:
    return {"env": ENV_KEY, "passphrase": ENV_PASSPHRASE, "file": "a key file"}.get(source, source)


def require_cross_tenant_admin(principal: Principal | None) -> None:
    if principal is None or not principal.cross_tenant:
        raise Forbidden("the master key serves every tenant: rotating it needs a cross-tenant admin key")
