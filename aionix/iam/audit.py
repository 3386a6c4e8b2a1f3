"""An audit trail you can trust: a hash chain per tenant, signed daily checkpoints, verification,
retention that keeps the chain verifiable, streamed export, and PII masking.

*Chain.* Every audit row is inserted by `core.insert_audit` (or `…_returning`), whose SQL
computes, in the writer's transaction, the row's `seq` (its chain's next number), `prev_hash`
(the hash of its chain's previous row, from `audit_heads`) and `hash` = SHA-256 over the previous
hash and the row's fields (`row_hash`). The writer is one thread, so the chain is serialised
without a lock. One chain per tenant; tenant-less rows (failed authentications, system events)
form the chain `''`. An aggregated failed-authentication row keeps counting in its `details`
after it is written, so its hash leaves `details` out.

*Checkpoints.* Once a day (UTC) each chain gets an `audit.checkpoint` row whose details name the
day, the last `seq` and `hash` before it, and an HMAC-SHA256 over them under the system key
`audit-checkpoint` (wrapped by the master key, `aionix/vault/systemkeys.py`). Anyone able to
write the database can recompute SHA-256 chains, but not these signatures: a history rewritten
before a checkpoint no longer matches it.

*Verification* walks each chain in order and names the first row whose hash, predecessor or
number is wrong (an edited row, a deleted one, a forged insert), checks every checkpoint's
signature, and compares the chain's end with `audit_heads` (a deleted tail).

*Retention* deletes whole days behind a checkpoint: the rows up to a checkpoint whose day is
older than `retention_days`; the kept checkpoint anchors the first remaining row.

*PII masking*: emails, card numbers (Luhn-checked) and phone numbers — or the patterns of
`[audit] pii_patterns` — are replaced with `[name]` in audit details (by the insert itself) and in
log lines (`aionix.log`), before they are written.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from aionix.runtime import Runtime

log = logging.getLogger("aionix.audit")

CHECKPOINT_ACTION = "audit.checkpoint"
SYSTEM_KEY = "audit-checkpoint"
#: rows whose details change after they are written (an aggregate): their hash leaves details out
MUTABLE_DETAILS = frozenset({"auth.failure"})
DAY = 86400

DEFAULT_PII_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "card": r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])",
    "phone": r"(?<![\w.+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w.])",
}


class AuditConfig(BaseModel):
    """`[audit]` in config.toml."""

    model_config = ConfigDict(extra="forbid")

    retention_days: float | None = Field(None, ge=1, le=36500)
    checkpoint_interval_seconds: float = Field(3600.0, ge=1, le=86400)
    pii_mask: bool = True
    pii_patterns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PII_PATTERNS))

    @field_validator("pii_patterns", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: name=regex;name=regex
            out = {}
            for part in value.split(";"):
                if part.strip():
                    name, _, rx = part.partition("=")
                    out[name.strip()] = rx
            value = out
        if isinstance(value, dict):
            for name, rx in value.items():
                if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", str(name)):
                    raise ValueError(f"{name!r}: a pattern's name is [a-z][a-z0-9_]*")
                try:
                    re.compile(rx)
                except (re.error, TypeError) as exc:
                    raise ValueError(f"{name}: not a regular expression: {exc}") from None
        return value


# ---------------------------------------------------------------------------- PII masking
def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class PiiMasker:
    def __init__(self, patterns: dict[str, str] | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.set(patterns if patterns is not None else DEFAULT_PII_PATTERNS)

    def set(self, patterns: dict[str, str]) -> None:
        self._patterns = [(name, re.compile(rx)) for name, rx in patterns.items()]
        # a cheap pre-filter: most text has no '@' and no run of 7 digits
        self._maybe = re.compile(r"@|\d[\d ().-]{6,}\d")

    def mask(self, text: str) -> str:
        if not self.enabled or not text or self._maybe.search(text) is None:
            return text
        for name, rx in self._patterns:
            if name == "card":

                def card(m: re.Match[str]) -> str:
                    digits = re.sub(r"[ -]", "", m.group(0))
                    return "[card]" if _luhn(digits) else m.group(0)

                text = rx.sub(card, text)
            else:
                text = rx.sub(f"[{name}]", text)
        return text


PII = PiiMasker()


def configure(config: AuditConfig) -> None:
    PII.enabled = config.pii_mask
    PII.set(config.pii_patterns)


def audit_config(rt: Runtime) -> AuditConfig:
    found = getattr(rt, "_audit_config", None)
    if found is None:
        found = rt.config.service_section("audit", AuditConfig)
        rt._audit_config = found  # type: ignore[attr-defined]
    return found


# ---------------------------------------------------------------------------- the chain
def row_hash(
    prev: str,
    seq: int,
    ts: float,
    tenant: str | None,
    key_id: str | None,
    ip: str | None,
    method: str | None,
    path: str | None,
    action: str,
    resource: str | None,
    status: int | None,
    details: str | None,
) -> str:
    if action in MUTABLE_DETAILS:
        details = None
    # ts as a float: the REAL column gives back 1000.0 for an integer bound as 1000
    body = orjson.dumps([prev, seq, float(ts), tenant, key_id, ip, method, path, action, resource, status, details])
    return hashlib.sha256(body).hexdigest()


def _sql_hash(*args: Any) -> str:
    return row_hash(*args)


def _sql_mask(details: str | None) -> str | None:
    return PII.mask(details) if isinstance(details, str) else details


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """The functions the audit insert uses (registered on every store connection)."""
    conn.create_function("aionix_audit_hash", 12, _sql_hash, deterministic=True)
    conn.create_function("aionix_pii_mask", 1, _sql_mask)


def _sign(key: bytes, chain: str, day: str, seq: int, head: str) -> str:
    msg = orjson.dumps(["aionix-audit-checkpoint-v1", chain, day, seq, head])
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


async def _checkpoint_key(rt: Runtime) -> bytes | None:
    vault = rt.services.get("vault")
    if vault is None:
        return None
    return await vault.system_keys.get(SYSTEM_KEY)


async def write_checkpoints(rt: Runtime, now: float | None = None) -> int:
    """Anchor the days that ended: in every chain with rows from before today (UTC) not yet
    covered, a checkpoint signing the last of them (`through_seq`, `through_hash`; `day` is the
    last day it covers). Returns how many were written."""
    key = await _checkpoint_key(rt)
    if key is None:
        return 0
    now = time.time() if now is None else now
    today_start = now - now % DAY

    def fn(tx: Any) -> int:
        written = 0
        for head in tx.fetch_all("audit_chain.heads"):
            chain = head["chain"]
            through = tx.fetch_one("audit_chain.last_before", {"chain": chain, "before": today_start})
            if through is None:
                continue
            last = tx.fetch_one("audit_chain.last_checkpoint", {"chain": chain, "action": CHECKPOINT_ACTION})
            if last is not None:
                d = orjson.loads(last["details"])
                if int(d.get("through_seq", 0)) >= through["seq"]:
                    continue
            day = _day(through["ts"])
            details = {
                "day": day,
                "through_seq": through["seq"],
                "through_hash": through["hash"],
                "kid": SYSTEM_KEY,
                "sig": _sign(key, chain, day, through["seq"], through["hash"]),
            }
            tx.execute(
                "core.insert_audit",
                {
                    "ts": now,
                    "tenant": head["chain"] or None,
                    "key_id": None,
                    "ip": None,
                    "method": None,
                    "path": None,
                    "action": CHECKPOINT_ACTION,
                    "resource": None,
                    "status": None,
                    "details": orjson.dumps(details).decode(),
                },
            )
            written += 1
        return written

    return await rt.store.transaction(fn)


async def prune(rt: Runtime, now: float | None = None) -> int:
    """Delete whole days behind a checkpoint: in each chain, the rows signed by the newest
    checkpoint older than the retention (the checkpoint itself stays, as the anchor)."""
    cfg = audit_config(rt)
    days = cfg.retention_days if cfg.retention_days is not None else rt.config.security.audit_retention_days
    now = time.time() if now is None else now
    cutoff = now - days * DAY

    def fn(tx: Any) -> int:
        deleted = 0
        for head in tx.fetch_all("audit_chain.heads"):
            cp = tx.fetch_one(
                "audit_chain.checkpoint_before",
                {"chain": head["chain"], "action": CHECKPOINT_ACTION, "before": cutoff},
            )
            if cp is None:
                continue
            through = int(orjson.loads(cp["details"])["through_seq"])
            deleted += tx.execute("audit_chain.delete_through", {"chain": head["chain"], "seq": through})
        deleted += tx.execute("core.prune_audit", {"before": cutoff})
        return deleted

    return await rt.store.transaction(fn)


async def maintain(rt: Runtime) -> None:
    """The background task: checkpoints, then pruning, every `checkpoint_interval_seconds`."""
    cfg = audit_config(rt)
    while True:
        try:
            await write_checkpoints(rt)
            await prune(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("audit checkpoint or pruning failed")
        await asyncio.sleep(cfg.checkpoint_interval_seconds)


# ---------------------------------------------------------------------------- verification
PAGE = 2000


async def verify(rt: Runtime, tenant: str | None = None) -> dict[str, Any]:
    """Walk every chain (or one tenant's) and report the first problem of each."""
    key = await _checkpoint_key(rt)
    heads = {h["chain"]: h for h in await rt.store.fetch_all("audit_chain.heads", {})}
    chains = sorted(heads) if tenant is None else [tenant]
    problems: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for chain in chains:
        result = await _verify_chain(rt, chain, heads.get(chain), key)
        summary.append(result)
        problems.extend(result.pop("problems"))
    unchained = await rt.store.fetch_one("audit_chain.count_unchained", {})
    return {
        "ok": not problems,
        "chains": summary,
        "problems": problems,
        "unchained_rows": int(unchained["n"]) if unchained else 0,
    }


async def _verify_chain(rt: Runtime, chain: str, head: dict[str, Any] | None, key: bytes | None) -> dict[str, Any]:
    problems: list[dict[str, Any]] = []

    def problem(row: dict[str, Any] | None, kind: str, message: str) -> None:
        if len(problems) < 20:
            problems.append(
                {
                    "tenant": chain or None,
                    "id": row["id"] if row else None,
                    "seq": row["seq"] if row else None,
                    "kind": kind,
                    "message": message,
                }
            )

    prev_hash: str | None = None
    prev_seq: int | None = None
    first = True
    rows_seen = 0
    checkpoints = 0
    anchors: dict[int, str] = {}  # through_seq -> through_hash of every signed checkpoint seen
    after = -1
    last_row: dict[str, Any] | None = None
    first_row: dict[str, Any] | None = None
    while True:
        rows = await rt.store.fetch_all("audit_chain.page", {"chain": chain, "after": after, "limit": PAGE})
        if not rows:
            break
        for row in rows:
            rows_seen += 1
            after = row["seq"]
            if row["action"] == CHECKPOINT_ACTION:
                checkpoints += 1
                _check_checkpoint(row, chain, key, anchors, problem)
            if first:
                first = False
                first_row = row
                if row["seq"] == 1 and row["prev_hash"] != "":
                    problem(row, "edited", f"row id {row['id']}: the first row of the chain has a predecessor hash")
            else:
                if row["seq"] != (prev_seq or 0) + 1:
                    problem(
                        row,
                        "deleted",
                        f"rows with seq {(prev_seq or 0) + 1}..{row['seq'] - 1} before row id {row['id']} are missing",
                    )
                if row["prev_hash"] != prev_hash:
                    problem(row, "edited", f"row id {row['id']}: its predecessor hash does not match the row before it")
            expect = row_hash(
                row["prev_hash"] or "",
                row["seq"],
                row["ts"],
                row["tenant"],
                row["key_id"],
                row["ip"],
                row["method"],
                row["path"],
                row["action"],
                row["resource"],
                row["status"],
                row["details"],
            )
            if not hmac.compare_digest(expect, row["hash"] or ""):
                problem(row, "edited", f"row id {row['id']} (seq {row['seq']}) was changed after it was written")
            prev_hash, prev_seq, last_row = row["hash"], row["seq"], row
    if first_row is not None and first_row["seq"] != 1 and anchors.get(first_row["seq"] - 1) != first_row["prev_hash"]:
        # pruned rows end where a signed checkpoint says: otherwise rows before this one are missing
        problem(first_row, "deleted", f"rows before seq {first_row['seq']} (id {first_row['id']}) are missing")
    if head is not None and (last_row is None or last_row["seq"] != head["seq"] or last_row["hash"] != head["hash"]):
        problem(
            last_row,
            "deleted",
            f"the chain ends at seq {last_row['seq'] if last_row else 0} but its head is seq {head['seq']} "
            f"(row id {head['id']}): its last rows were deleted",
        )
    for through_seq, through_hash in anchors.items():
        row = await rt.store.fetch_one("audit_chain.row_by_seq", {"chain": chain, "seq": through_seq})
        if row is not None and row["hash"] != through_hash:
            problem(row, "edited", f"row id {row['id']} no longer matches the signed checkpoint after it")
    return {"tenant": chain or None, "rows": rows_seen, "checkpoints": checkpoints, "problems": problems}


def _check_checkpoint(
    row: dict[str, Any], chain: str, key: bytes | None, anchors: dict[int, str], problem: Callable[..., None]
) -> None:
    try:
        d = orjson.loads(row["details"] or "{}")
        seq, head, day, sig = d["through_seq"], d["through_hash"], d["day"], d["sig"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        problem(row, "edited", f"checkpoint row id {row['id']} is malformed")
        return
    if key is not None and not hmac.compare_digest(_sign(key, chain, day, seq, head), str(sig)):
        problem(row, "forged", f"checkpoint row id {row['id']}: its signature does not verify")
        return
    anchors[int(seq)] = str(head)


# ---------------------------------------------------------------------------- export
EXPORT_FIELDS = ("id", "ts", "tenant", "key_id", "ip", "method", "path", "action", "resource", "status", "details")
EXPORT_FIELDS_CHAIN = (*EXPORT_FIELDS, "seq", "prev_hash", "hash")


async def export_rows(
    rt: Runtime, tenant: str | None, since: float | None, until: float | None
) -> AsyncIterator[dict[str, Any]]:
    """Rows of one tenant (None: every tenant) in id order, a page at a time."""
    after = 0
    while True:
        rows = await rt.store.fetch_all(
            "audit_chain.export_page",
            {
                "tenant": tenant,
                "all": int(tenant is None),
                "since": since,
                "until": until,
                "after": after,
                "limit": PAGE,
            },
        )
        if not rows:
            return
        for row in rows:
            after = row["id"]
            yield row
        if len(rows) < PAGE:
            return


async def export_lines(rows: AsyncIterator[dict[str, Any]], fmt: str) -> AsyncIterator[bytes]:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_FIELDS_CHAIN)
        yield buf.getvalue().encode()
        async for row in rows:
            buf.seek(0)
            buf.truncate()
            writer.writerow([row.get(f) for f in EXPORT_FIELDS_CHAIN])
            yield buf.getvalue().encode()
        return
    async for row in rows:
        out = {f: row.get(f) for f in EXPORT_FIELDS_CHAIN}
        if isinstance(out["details"], str):
            try:
                out["details"] = orjson.loads(out["details"])
            except orjson.JSONDecodeError:
                pass
        yield orjson.dumps(out) + b"\n"
