"""ParamStore: hierarchical, versioned parameters.

Paths are `/`-separated segments (`/app/db/host`). Every put writes a new version; `rollback`
copies an old version as the newest; labels name one version each. A `secret_ref` parameter
holds a CredVault TRN and is resolved through the bus (so the read is audited there) only for
callers allowed to read secrets. A dynamic value (`{% … %}`) is evaluated at read time with
`$param('/path')` (other parameters, evaluated in turn) and `$env('NAME')` (only names in
`[params] env_allowlist`); a reference cycle is reported, never followed.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aionix import expr, jsonutil
from aionix import trn as trnlib
from aionix.api.endpoint import int_cursor
from aionix.bus import CallContext
from aionix.errors import AionixError, Conflict, Forbidden, NotFound, ValidationFailed, field_error
from aionix.params.models import LABEL_PATTERN, PutParam

if TYPE_CHECKING:
    from aionix.runtime import Runtime

MAX_SEGMENTS = 15
MAX_PATH = 1011
RESERVED_LAST = frozenset({"versions", "rollback", "labels"})
_LABEL_RE = re.compile(LABEL_PATTERN)
ROOT_KEY = "@value"


class ParamsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env_allowlist: list[str] = Field(default_factory=list, description="environment variables $env() may read")
    max_reference_depth: int = Field(16, ge=1, le=1000)
    max_value_bytes: int = Field(65_536, ge=64, le=4_194_304)
    max_tree_params: int = Field(100_000, ge=1, le=10_000_000)

    @field_validator("env_allowlist", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ParamCycle(ValidationFailed):
    code = "param_cycle"


def normalize_path(raw: str, field_name: str = "path") -> str:
    """`app/db/host` or `/app/db/host` → `/app/db/host`; 422 naming `field_name` when invalid."""
    if not isinstance(raw, str):
        raise field_error(field_name, "must be a string")
    text = raw.strip()
    if not text.startswith("/"):
        text = "/" + text
    segments = text[1:].split("/")
    if not segments or segments == [""]:
        raise field_error(field_name, "a parameter path needs at least one segment (/app/key)")
    if len(segments) > MAX_SEGMENTS:
        raise field_error(field_name, f"at most {MAX_SEGMENTS} segments")
    if len(text) > MAX_PATH:
        raise field_error(field_name, f"at most {MAX_PATH} characters")
    for segment in segments:
        if trnlib.NAME_RE.fullmatch(segment) is None:
            raise field_error(field_name, f"segment {segment!r} must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    if segments[-1] in RESERVED_LAST:
        raise field_error(field_name, f"the last segment may not be {segments[-1]!r} (reserved by the API)")
    return text


def normalize_prefix(raw: str) -> str:
    text = raw.strip()
    if text in ("", "/"):
        return ""
    text = "/" + text.strip("/")
    for segment in text[1:].split("/"):
        if trnlib.NAME_RE.fullmatch(segment) is None:
            raise field_error("query.prefix", f"segment {segment!r} must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    return text


def _json(value: Any) -> str:
    return jsonutil.dumps(value).decode()


@dataclass
class _Evaluation:
    """One read's evaluation: memoised values and the chain being evaluated (for cycles)."""

    tenant: str
    can_read_secrets: bool
    reader: str | None
    ctx: CallContext
    resolve_secrets: bool = True
    memo: dict[str, Any] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)


class ParamsService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.store = rt.store
        self.config: ParamsConfig = rt.config.service_section("params", ParamsConfig)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def trn(tenant: str, path: str) -> str:
        return f"trn:paramstore:{tenant}:param{path}"

    def info(self, row: dict[str, Any], labels: list[str]) -> dict[str, Any]:
        return {
            "trn": self.trn(row["tenant"], row["path"]),
            "path": row["path"],
            "type": row["type"],
            "value": jsonutil.loads(row["value"]),
            "dynamic": bool(row["dynamic"]),
            "version": row["version"],
            "labels": labels,
            "description": row["description"],
            "json_schema": jsonutil.loads(row["schema"]) if row["schema"] else None,
            "pattern": row["pattern"],
            "created_at": row["created_at"],
            "updated_at": row.get("updated_at", row["created_at"]),
            "updated_by": row.get("updated_by", row.get("created_by")),
        }

    def _check_labels(self, labels: list[str]) -> None:
        for i, label in enumerate(labels):
            if _LABEL_RE.fullmatch(label) is None:
                raise field_error(
                    f"labels.{i}", "must start with a letter and match [A-Za-z0-9_.-], up to 100 characters"
                )

    def _check_value(self, tenant: str, body: PutParam) -> tuple[Any, bool]:
        """Validate the value for its type; return (value to store, dynamic)."""
        value = body.value
        if value is None:
            raise field_error("value", "required")
        if body.pattern is not None:
            if body.type != "string":
                raise field_error("pattern", "only string parameters take a pattern")
            try:
                re.compile(body.pattern)
            except re.error as exc:
                raise field_error("pattern", f"not a valid regular expression: {exc}") from None
        if body.json_schema is not None:
            import jsonschema  # imported on use: ~2.5 MB less idle memory

            try:
                jsonschema.validators.validator_for(body.json_schema).check_schema(body.json_schema)
            except jsonschema.SchemaError as exc:
                raise field_error("json_schema", f"not a valid JSON Schema: {exc.message}") from None
        if len(jsonutil.dumps(value)) > self.config.max_value_bytes:
            raise field_error("value", f"larger than {self.config.max_value_bytes} bytes")
        if body.type == "secret_ref":
            if not isinstance(value, str):
                raise field_error("value", "a secret_ref is a CredVault TRN or secret name")
            try:
                ref = trnlib.resolve(value, tenant=tenant, service="credvault", type="credential")
            except AionixError as exc:
                raise field_error("value", exc.message) from None
            return str(ref), False
        dynamic = self._compile_dynamic(value)
        if not dynamic:
            self._check_typed(body.type, value, "value")
            self._check_constraints(body.json_schema, body.pattern, value, "value")
        elif body.type in ("string", "number", "boolean") and not expr.is_expression(value):
            raise field_error("value", f"a dynamic {body.type} parameter is one {{% … %}} expression")
        return value, dynamic

    @staticmethod
    def _compile_dynamic(value: Any) -> bool:
        try:
            template = expr.compile_template(value, pointer="/value")
        except expr.ExpressionError as exc:
            raise field_error("value", f"expression error: {exc.message}") from None
        if template.is_static:
            return False
        refs = template.references
        if refs.dynamic_params:
            raise field_error("value", "$param() takes a literal path ('/app/key') so references can be checked")
        for path in refs.params:
            normalize_path(path, "value")
        return True

    @staticmethod
    def _check_typed(type_: str, value: Any, where: str) -> None:
        ok = {
            "string": isinstance(value, str),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "json": True,
        }[type_]
        if not ok:
            raise field_error(where, f"must be a {type_}")

    @staticmethod
    def _check_constraints(schema: dict[str, Any] | None, pattern: str | None, value: Any, where: str) -> None:
        if pattern is not None and isinstance(value, str) and re.fullmatch(pattern, value) is None:
            raise field_error(where, f"does not match the pattern {pattern!r}")
        if schema is not None:
            import jsonschema

            try:
                error = jsonschema.exceptions.best_match(
                    jsonschema.validators.validator_for(schema)(schema).iter_errors(value)
                )
            except Exception as exc:  # e.g. an unresolvable $ref: the schema is at fault, not the server
                raise field_error("json_schema", f"cannot be applied: {type(exc).__name__}: {exc}") from None
            if error is not None:
                location = "/".join(str(p) for p in error.absolute_path)
                raise field_error(
                    where, f"breaks the JSON Schema{' at /' + location if location else ''}: {error.message}"
                )

    async def _labels_by_version(self, tenant: str, path: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for r in await self.store.fetch_all("params.labels_of", {"tenant": tenant, "path": path}):
            out.setdefault(r["version"], []).append(r["label"])
        return out

    # ------------------------------------------------------------------ writes
    async def put(self, tenant: str, path: str, by: str | None, body: PutParam) -> dict[str, Any]:
        path = normalize_path(path)
        self._check_labels(body.labels)
        value, dynamic = self._check_value(tenant, body)

        def fn(tx: Any) -> dict[str, Any]:
            current = tx.fetch_one("params.get_param", {"tenant": tenant, "path": path})
            have = current["version"] if current else 0
            if body.expected_version is not None and body.expected_version != have:
                raise Conflict(
                    f"parameter {path} is at version {have}, not {body.expected_version}",
                    details={"field": "expected_version", "version": have},
                )
            description = (
                body.description if body.description is not None else (current["description"] if current else "")
            )
            row = {
                "tenant": tenant,
                "path": path,
                "version": have + 1,
                "type": body.type,
                "value": _json(value),
                "dynamic": int(dynamic),
                "description": description,
                "schema": _json(body.json_schema) if body.json_schema is not None else None,
                "pattern": body.pattern,
                "now": time.time(),
                "by": by,
                "note": None,
            }
            return self._write_version(tx, row, body.labels, exists=current is not None)

        row, labels = await self.store.transaction(fn)
        return self.info(row, labels)

    def _write_version(
        self, tx: Any, row: dict[str, Any], labels: list[str], *, exists: bool
    ) -> tuple[dict[str, Any], list[str]]:
        tx.execute("params.update_param" if exists else "params.insert_param", row)
        tx.execute("params.insert_version", row)
        self.rt.quotas.charge_tx(tx, row["tenant"], "stored_bytes", len(row["value"]))  # 429 past the tenant's quota
        for label in labels:
            tx.execute(
                "params.put_label",
                {"tenant": row["tenant"], "path": row["path"], "label": label, "version": row["version"]},
            )
        stored = tx.fetch_one("params.get_param", {"tenant": row["tenant"], "path": row["path"]})
        current_labels = [r["label"] for r in tx.fetch_all("params.labels_of", row) if r["version"] == row["version"]]
        return stored, current_labels

    async def rollback(self, tenant: str, path: str, by: str | None, version: int, labels: list[str]) -> dict[str, Any]:
        path = normalize_path(path)
        self._check_labels(labels)

        def fn(tx: Any) -> tuple[dict[str, Any], list[str]]:
            current = tx.fetch_one("params.get_param", {"tenant": tenant, "path": path})
            if current is None:
                raise NotFound(f"parameter {path} not found")
            old = tx.fetch_one("params.get_version", {"tenant": tenant, "path": path, "version": version})
            if old is None:
                raise field_error("version", f"parameter {path} has no version {version}", NotFound)
            row = {
                **old,
                "version": current["version"] + 1,
                "now": time.time(),
                "by": by,
                "note": f"rollback to version {version}",
            }
            return self._write_version(tx, row, labels, exists=True)

        row, current_labels = await self.store.transaction(fn)
        return self.info(row, current_labels)

    async def label(self, tenant: str, path: str, version: int, labels: list[str]) -> dict[str, Any]:
        path = normalize_path(path)
        self._check_labels(labels)

        def fn(tx: Any) -> None:
            if tx.fetch_one("params.get_version", {"tenant": tenant, "path": path, "version": version}) is None:
                raise field_error("version", f"parameter {path} has no version {version}", NotFound)
            for label in labels:
                tx.execute("params.put_label", {"tenant": tenant, "path": path, "label": label, "version": version})

        await self.store.transaction(fn)
        return await self.get(tenant, path, version=version)

    async def delete(self, tenant: str, path: str) -> dict[str, Any]:
        path = normalize_path(path)

        def fn(tx: Any) -> int:
            if tx.execute("params.delete_param", {"tenant": tenant, "path": path}) == 0:
                raise NotFound(f"parameter {path} not found")
            tx.execute("params.delete_labels", {"tenant": tenant, "path": path})
            return tx.execute("params.delete_versions", {"tenant": tenant, "path": path})

        return {"path": path, "versions_deleted": await self.store.transaction(fn)}

    # ------------------------------------------------------------------ reads
    async def _row(
        self, tenant: str, path: str, *, version: int | None = None, label: str | None = None
    ) -> dict[str, Any]:
        current = await self.store.fetch_one("params.get_param", {"tenant": tenant, "path": path})
        if current is None:
            raise NotFound(f"parameter {path} not found")
        if label is not None:
            found = await self.store.fetch_one("params.label_version", {"tenant": tenant, "path": path, "label": label})
            if found is None:
                raise NotFound(f"parameter {path} has no version labelled {label!r}")
            if version is not None and version != found["version"]:
                raise field_error("query.label", f"label {label!r} is version {found['version']}, not {version}")
            version = found["version"]
        if version is None or version == current["version"]:
            return current
        row = await self.store.fetch_one("params.get_version", {"tenant": tenant, "path": path, "version": version})
        if row is None:
            raise NotFound(f"parameter {path} has no version {version}")
        return {**row, "updated_at": row["created_at"], "updated_by": row["created_by"]}

    async def get(
        self,
        tenant: str,
        path: str,
        *,
        version: int | None = None,
        label: str | None = None,
        evaluate: bool = False,
        can_read_secrets: bool = False,
        ctx: CallContext | None = None,
    ) -> dict[str, Any]:
        path = normalize_path(path)
        row = await self._row(tenant, path, version=version, label=label)
        labels = (await self._labels_by_version(tenant, path)).get(row["version"], [])
        info = self.info(row, labels)
        if evaluate and (row["dynamic"] or row["type"] == "secret_ref"):
            run = _Evaluation(tenant, can_read_secrets, self.trn(tenant, path), ctx or CallContext(tenant=tenant))
            info["value"] = await self._evaluate_row(run, row)
            info["evaluated"] = True
        return info

    async def value(self, tenant: str, path: str, *, version: int | None, ctx: CallContext, reader: str | None) -> Any:
        """The parameter's value as a workflow or function sees it: typed, evaluated, and
        with `secret_ref` resolved (the vault audits that read)."""
        path = normalize_path(path)
        row = await self._row(tenant, path, version=version)
        run = _Evaluation(tenant, True, reader or self.trn(tenant, path), ctx)
        return await self._evaluate_row(run, row)

    async def _evaluate_row(self, run: _Evaluation, row: dict[str, Any]) -> Any:
        path = row["path"]
        value = jsonutil.loads(row["value"])
        if row["type"] == "secret_ref":
            if not run.resolve_secrets:
                return value
            if not run.can_read_secrets:
                raise Forbidden(f"parameter {path} is a secret_ref: resolving it needs the admin role")
            # the reader CredVault checks is whoever asked (a workflow, a function); a request
            # over the API (admin only, above) reads as the parameter itself
            caller = run.ctx.caller or self.trn(run.tenant, path)
            secret = await self.rt.bus.invoke(
                value, {"op": "resolve", "reader": run.reader}, run.ctx.child(tenant=run.tenant, caller=caller)
            )
            sink = run.ctx.extra.get("secret_sink")
            if isinstance(sink, list):
                sink.append(secret)  # the caller keeps it out of what it records (see DEVELOPING.md)
            return secret
        if not row["dynamic"]:
            return value
        if path in run.chain:
            cycle = " → ".join([*run.chain[run.chain.index(path) :], path])
            raise ParamCycle(
                f"cycle in dynamic parameters: {cycle}", details={"cycle": [*run.chain[run.chain.index(path) :], path]}
            )
        if len(run.chain) >= self.config.max_reference_depth:
            raise ValidationFailed(f"parameter {path}: references nest deeper than {self.config.max_reference_depth}")
        template = expr.compile_template(value)
        run.chain.append(path)
        try:
            for ref in sorted(template.references.params):
                ref_path = normalize_path(ref, "value")
                if ref_path in run.memo:
                    continue
                if ref_path in run.chain:
                    cycle = [*run.chain[run.chain.index(ref_path) :], ref_path]
                    raise ParamCycle(f"cycle in dynamic parameters: {' → '.join(cycle)}", details={"cycle": cycle})
                ref_row = await self.store.fetch_one("params.get_param", {"tenant": run.tenant, "path": ref_path})
                if ref_row is None:
                    raise NotFound(f"parameter {ref_path} (referenced by {path}) not found")
                run.memo[ref_path] = await self._evaluate_row(run, ref_row)
        finally:
            run.chain.pop()
        memo = run.memo

        def param(ref: Any) -> Any:
            key = normalize_path(str(ref), "value")
            if key not in memo:
                raise ValidationFailed(f"parameter {path}: $param() must be called with a literal path")
            return memo[key]

        def env(name: Any) -> Any:
            if not isinstance(name, str) or name not in self.config.env_allowlist:
                raise Forbidden(f"parameter {path}: $env({name!r}) is not in [params] env_allowlist")
            return os.environ.get(name)

        try:
            # inline when quick, else in an expression worker: a viewer's ?evaluate=true never
            # holds the event loop (README "Expression limits")
            result = await expr.evaluate_async(lambda: template.evaluate(None, {"param": param, "env": env}))
        except expr.ExpressionError as exc:
            raise ValidationFailed(f"parameter {path}: {exc.message}", details=exc.details) from None
        if result is expr.UNDEFINED:
            raise ValidationFailed(f"parameter {path}: the expression has no value")
        try:
            self._check_typed(row["type"], result, f"parameter {path}")
            self._check_constraints(
                jsonutil.loads(row["schema"]) if row["schema"] else None, row["pattern"], result, f"parameter {path}"
            )
        except AionixError as exc:
            raise ValidationFailed(f"{exc.message} (evaluated value)") from None
        return result

    async def list(self, tenant: str, prefix: str, *, limit: int, cursor: str | None, evaluate: bool) -> dict[str, Any]:
        base = normalize_prefix(prefix)
        rows = await self.store.fetch_all(
            "params.list_params",
            {
                "tenant": tenant,
                "prefix": base,
                "lo": base + "/",
                "hi": base + "0",
                "cursor": cursor,
                "limit": limit + 1,
            },
        )
        more = len(rows) > limit
        rows = rows[:limit]
        run = _Evaluation(tenant, False, None, CallContext(tenant=tenant), resolve_secrets=False)
        items = []
        for row in rows:
            item = self.info(row, [])
            if evaluate and row["dynamic"]:
                item["value"] = await self._evaluate_row(run, row)
                item["evaluated"] = True
            items.append(item)
        return {"items": items, "next_cursor": rows[-1]["path"] if more else None}

    async def tree(self, tenant: str, prefix: str, *, evaluate: bool) -> dict[str, Any]:
        """The subtree under `prefix` as a nested object of values. A path that has both a
        value and children keeps its own value under `"@value"`. `secret_ref` leaves show
        their TRN (a listing never resolves secrets)."""
        base = normalize_prefix(prefix)
        cap = self.config.max_tree_params
        rows = await self.store.fetch_all(
            "params.list_params",
            {"tenant": tenant, "prefix": base, "lo": base + "/", "hi": base + "0", "cursor": None, "limit": cap + 1},
        )
        if len(rows) > cap:
            raise field_error(
                "query.prefix", f"more than {cap} parameters under {base or '/'}: list them page by page instead"
            )
        run = _Evaluation(tenant, False, None, CallContext(tenant=tenant), resolve_secrets=False)
        root = _Node()
        for row in rows:
            if evaluate and row["dynamic"]:
                value = await self._evaluate_row(run, row)
            else:
                value = jsonutil.loads(row["value"])
            segments = [s for s in row["path"][len(base) :].split("/") if s]
            _place(root, segments, value)
        return {"prefix": base or "/", "count": len(rows), "tree": _plain(root, top=True)}

    async def versions(self, tenant: str, path: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        path = normalize_path(path)
        if await self.store.fetch_one("params.get_param", {"tenant": tenant, "path": path}) is None:
            raise NotFound(f"parameter {path} not found")
        before = int_cursor(cursor)
        rows = await self.store.fetch_all(
            "params.list_versions", {"tenant": tenant, "path": path, "cursor": before, "limit": limit + 1}
        )
        more = len(rows) > limit
        rows = rows[:limit]
        labels = await self._labels_by_version(tenant, path)
        items = [
            {
                "version": r["version"],
                "type": r["type"],
                "value": jsonutil.loads(r["value"]),
                "dynamic": bool(r["dynamic"]),
                "labels": labels.get(r["version"], []),
                "description": r["description"],
                "note": r["note"],
                "created_at": r["created_at"],
                "created_by": r["created_by"],
            }
            for r in rows
        ]
        return {"path": path, "items": items, "next_cursor": str(rows[-1]["version"]) if more else None}

    # ------------------------------------------------------------------ bus
    async def execute(self, target: trnlib.TRN, payload: Any, ctx: CallContext) -> Any:
        """Bus executor for `trn:paramstore:{tenant}:param/{path}`: `{"op": "get", "version"?}`."""
        if not isinstance(payload, dict) or payload.get("op") != "get":
            raise field_error("payload.op", 'must be "get"')
        version = payload.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise field_error("payload.version", "must be a positive integer")
        reader = payload.get("reader")
        return await self.value(
            target.tenant,
            "/" + target.path,
            version=version,
            ctx=ctx,
            reader=reader if isinstance(reader, str) else None,
        )

    async def resolve_metadata(self, target: trnlib.TRN) -> dict[str, Any] | None:
        row = await self.store.fetch_one("params.get_param", {"tenant": target.tenant, "path": "/" + target.path})
        if row is None:
            return None
        info = self.info(row, [])
        info.pop("value")
        return info


class _Node:
    __slots__ = ("children", "has_value", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.has_value = False
        self.value: Any = None


def _place(root: _Node, segments: list[str], value: Any) -> None:
    node = root
    for segment in segments:
        node = node.children.setdefault(segment, _Node())
    node.has_value = True
    node.value = value


def _plain(node: _Node, top: bool = False) -> Any:
    if not node.children and not top:
        return node.value
    out: dict[str, Any] = {name: _plain(child) for name, child in node.children.items()}
    if node.has_value:
        out[ROOT_KEY] = node.value
    return out
