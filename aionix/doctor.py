"""`aio admin doctor`: what an operator should look at, each with its explanation and way out.

Every check yields findings `{check, status, message, fix, tenant?, resource?, details?}` where
`status` is `ok`, `warn` (worth a look, nothing is broken) or `problem` (broken now or at the next
start; `aio admin doctor` exits 1). The server-wide checks live here and run for a cross-tenant
admin only (they describe the host, not a tenant); each service adds its own through a
`doctor(tenant)` method (`tenant` None: every tenant), whose findings default to `problem`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import stat
import time
import weakref
from pathlib import Path
from typing import Any

from aionix import jsonutil

log = logging.getLogger("aionix.doctor")

#: meta key of the last backup taken through `GET /api/v1/admin/backup`
BACKUP_META = "last_backup"
#: thresholds (bytes / seconds); module constants so that operators can read them in one place
FREE_WARN_BYTES = 1 << 30
FREE_PROBLEM_BYTES = 256 << 20
WAL_WARN_BYTES = 256 << 20
WAL_PROBLEM_BYTES = 2 << 30
BACKUP_WARN_SECONDS = 7 * 86400
CLOCK_SKEW_SECONDS = 5.0

#: the service sections and the attribute of each service that holds its validated config
SERVICE_CONFIG_ATTRS = {
    "stepflow": "config",
    "params": "config",
    "vault": "config",
    "connectors": "settings",
    "functions": "cfg",
    "triggers": "cfg",
}

# when the WAL was last seen fully checkpointed, per runtime
_last_checkpoint: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def finding(
    check: str,
    status: str,
    message: str,
    fix: str | None = None,
    *,
    tenant: str | None = None,
    resource: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "check": check,
        "status": status,
        "message": message,
        "fix": fix,
        "tenant": tenant,
        "resource": resource,
        "details": details,
    }


def _normalize(item: dict[str, Any]) -> dict[str, Any]:
    """A service finding in the older shape (`problem`, no `status`) as a check."""
    return finding(
        item["check"],
        item.get("status") or "problem",
        item.get("message") or item.get("problem") or "",
        item.get("fix"),
        tenant=item.get("tenant"),
        resource=item.get("resource"),
        details=item.get("details"),
    )


async def run(rt: Any, tenant: str | None, *, server_wide: bool) -> dict[str, Any]:
    """The report: `ok` (no problem), `problems` (the problem findings, in the shape the route
    has always had) and `checks` (every finding, ok and warn included)."""
    checks: list[dict[str, Any]] = []
    if server_wide:
        checks.extend(await core_checks(rt))
    for name, service in rt.services.items():
        method = getattr(service, "doctor", None)
        if method is None:
            continue
        try:
            found = [_normalize(f) for f in await method(tenant)]
        except Exception as exc:
            log.exception("the %s doctor check failed", name)
            found = [finding(name, "problem", f"the {name} checks failed: {exc}", "see the server log")]
        checks.extend(found or [finding(name, "ok", f"{name}: nothing to fix")])
    problems = [
        {
            "check": c["check"],
            "tenant": c["tenant"],
            "resource": c["resource"],
            "problem": c["message"],
            "fix": c["fix"] or "",
        }
        for c in checks
        if c["status"] == "problem"
    ]
    return {"ok": not problems, "problems": problems, "checks": checks}


async def core_checks(rt: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for check in (
        config_check,
        data_dir_check,
        wal_check,
        integrity_check,
        backup_check,
        master_key_check,
        clock_check,
    ):
        try:
            out.extend(await check(rt))
        except Exception as exc:
            log.exception("doctor check %s failed", check.__name__)
            out.append(
                finding(
                    check.__name__.removesuffix("_check").replace("_", "-"),
                    "problem",
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    "see the server log",
                )
            )
    return out


# ---------------------------------------------------------------------- config
async def config_check(rt: Any) -> list[dict[str, Any]]:
    """The configuration as the next start would read it (the file may have changed since this
    start), the service sections against their models, and settings that weaken a promise."""
    from aionix import config as configlib
    from aionix.errors import ConfigError

    out: list[dict[str, Any]] = []
    file = rt.config.config_file
    source = f"the config file {file}" if file else "the environment"
    try:
        fresh = configlib.load(file, env=dict(os.environ))
        for section, attr in SERVICE_CONFIG_ATTRS.items():
            service = rt.services.get(section)
            current = getattr(service, attr, None) if service is not None else None
            if current is not None:
                fresh.service_section(section, type(current))
    except ConfigError as exc:
        out.append(
            finding(
                "config",
                "problem",
                f"{source} no longer loads, so the next start will fail: {exc.message}",
                "correct the key it names (config.toml documents every key), then run `aio admin doctor` again",
            )
        )
        fresh = None
    if fresh is not None:
        if fresh.database.synchronous != "FULL":
            out.append(
                finding(
                    "config",
                    "warn",
                    f"database.synchronous is {fresh.database.synchronous}: a power loss may lose the last "
                    "commits that callers were told had succeeded",
                    'set database.synchronous = "FULL" (the default) unless losing recent commits is acceptable',
                    resource="database.synchronous",
                )
            )
        if (fresh.functions or {}).get("allow_unconfined_net"):
            out.append(
                finding(
                    "config",
                    "warn",
                    "functions.allow_unconfined_net is true: where workers get no network namespace, a "
                    "permissions.net grant opens the whole network to that function",
                    "run the server as root with [functions] network_namespace so grants go through the "
                    "egress proxy, then set allow_unconfined_net = false",
                    resource="functions.allow_unconfined_net",
                )
            )
    triggers = rt.services.get("triggers")
    legacy = getattr(getattr(triggers, "box", None), "legacy_key_path", None)
    if legacy is not None and Path(legacy).exists():
        out.append(
            finding(
                "config",
                "warn",
                f"{legacy} is the webhook secrets key of an older version; secrets are now sealed under the "
                "master key and the file is no longer read once they moved",
                f"after a start that logged the move, delete {legacy}",
                resource=str(legacy),
            )
        )
    if not out:
        out.append(finding("config", "ok", f"{source} loads without errors and keeps every default promise"))
    return out


# ---------------------------------------------------------------------- data dir
async def data_dir_check(rt: Any) -> list[dict[str, Any]]:
    data: Path = rt.config.data_dir
    out: list[dict[str, Any]] = []
    try:
        st = data.stat()
    except OSError as exc:
        return [finding("data-dir", "problem", f"{data}: {exc.strerror}", "restore the data dir and restart")]
    mode = stat.S_IMODE(st.st_mode)
    if not os.access(data, os.W_OK | os.X_OK):
        out.append(
            finding(
                "data-dir",
                "problem",
                f"{data} is not writable by the server (uid {os.getuid()}, mode {mode:o}): new files (backups "
                "of a restore, the lock, a rotated master key) cannot be made",
                f"chown {os.getuid()} {data} && chmod 700 {data}",
                resource=str(data),
            )
        )
    if mode & 0o077:
        out.append(
            finding(
                "data-dir",
                "problem",
                f"{data} has mode {mode:o}: other users of the host can reach the database and the master key",
                f"chmod 700 {data}",
                resource=str(data),
                details={"mode": f"{mode:o}"},
            )
        )
    db = data / "aionix.db"
    for path in (db, data / "aionix.db-wal"):
        try:
            owner = path.stat().st_uid
        except FileNotFoundError:
            continue
        if owner != os.geteuid():
            out.append(
                finding(
                    "data-dir",
                    "problem",
                    f"{path} belongs to uid {owner}, not to the server's uid {os.geteuid()}",
                    f"chown {os.geteuid()} {path}",
                    resource=str(path),
                )
            )
    usage = await asyncio.to_thread(shutil.disk_usage, data)
    free = usage.free
    details = {"free_bytes": free, "total_bytes": usage.total}
    if free < FREE_PROBLEM_BYTES:
        out.append(
            finding(
                "disk-space",
                "problem",
                f"only {free >> 20} MiB free under {data}: commits fail once the disk is full",
                "free space on that filesystem or move the data dir to a larger one",
                resource=str(data),
                details=details,
            )
        )
    elif free < FREE_WARN_BYTES:
        out.append(
            finding(
                "disk-space",
                "warn",
                f"{free >> 20} MiB free under {data}",
                "free space on that filesystem before it fills",
                resource=str(data),
                details=details,
            )
        )
    else:
        out.append(finding("disk-space", "ok", f"{free >> 30} GiB free under {data}", details=details))
    if not any(f["check"] == "data-dir" for f in out):
        out.append(finding("data-dir", "ok", f"{data} is owned and writable by the server, mode {mode:o}"))
    return out


# ---------------------------------------------------------------------- the database
def _sqlite_path(rt: Any) -> Path | None:
    return getattr(rt.store, "path", None) if getattr(rt.store, "dialect", "") == "sqlite" else None


async def wal_check(rt: Any) -> list[dict[str, Any]]:
    """The WAL's size, and a passive checkpoint (what SQLite runs on its own every 1000 pages):
    frames it cannot copy back are held by a reader's old snapshot."""
    path = _sqlite_path(rt)
    if path is None:
        return await _postgres_wal(rt)
    wal = Path(str(path) + "-wal")

    def checkpoint() -> tuple[int, int, int]:
        conn = sqlite3.connect(path, timeout=1.0)
        try:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(frames), int(done)
        finally:
            conn.close()

    busy, frames, done = await asyncio.to_thread(checkpoint)
    size = wal.stat().st_size if wal.exists() else 0
    now = time.time()
    if not busy and frames == done:
        _last_checkpoint[rt] = now
    last = _last_checkpoint.get(rt)
    details = {
        "wal_bytes": size,
        "wal_frames": frames,
        "checkpointed_frames": done,
        "last_full_checkpoint": last,
    }
    out: list[dict[str, Any]] = []
    if size >= WAL_PROBLEM_BYTES:
        out.append(
            finding(
                "wal",
                "problem",
                f"the WAL is {size >> 20} MiB: reads slow down and the disk fills",
                "find what holds a long read (an open `sqlite3` shell, a stuck backup) and end it; the next "
                "checkpoint then resets the WAL",
                resource=str(wal),
                details=details,
            )
        )
    elif size >= WAL_WARN_BYTES:
        out.append(
            finding(
                "wal",
                "warn",
                f"the WAL is {size >> 20} MiB",
                "see that no reader holds a snapshot for long",
                resource=str(wal),
                details=details,
            )
        )
    if busy or frames != done:
        since = f"last complete one {now - last:.0f} s ago" if last else "none complete since this server started"
        out.append(
            finding(
                "wal",
                "warn",
                f"a checkpoint could copy {done} of {frames} WAL frames back ({since}): a reader holds an old snapshot",
                "end long-running readers of the database file",
                resource=str(wal),
                details=details,
            )
        )
    if not out:
        out.append(
            finding("wal", "ok", f"the WAL is {size >> 10} KiB and was fully checkpointed just now", details=details)
        )
    return out


async def _postgres_wal(rt: Any) -> list[dict[str, Any]]:
    """The PostgreSQL equivalent: the server answers and commits are durable (synchronous_commit)."""
    info = getattr(rt.store, "server_info", None)
    if info is None:
        return [finding("wal", "ok", "not applicable: the store is not SQLite")]
    row = await info()
    details = {"server": row["version"], "synchronous_commit": row["synchronous_commit"], "size_bytes": row["size"]}
    if row["synchronous_commit"] in ("off", "local"):
        return [
            finding(
                "wal",
                "warn",
                f"PostgreSQL runs with synchronous_commit={row['synchronous_commit']}: an acknowledged write can be "
                "lost in a crash",
                "set synchronous_commit = on (the store asks for it per session; a server or role setting overrides)",
                details=details,
            )
        ]
    return [
        finding(
            "wal",
            "ok",
            f"PostgreSQL store ({str(row['version']).split(' on ')[0]}, synchronous_commit="
            f"{row['synchronous_commit']}, {int(row['size']) >> 20} MiB): its WAL is the server's",
            details=details,
        )
    ]


async def integrity_check(rt: Any) -> list[dict[str, Any]]:
    path = _sqlite_path(rt)
    if path is None:
        return [finding("quick-check", "ok", "not applicable: the store is PostgreSQL (its server checks its pages)")]

    def quick_check() -> list[str]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            return [r[0] for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
        finally:
            conn.close()

    started = time.perf_counter()
    result = await asyncio.to_thread(quick_check)
    took = time.perf_counter() - started
    if result == ["ok"]:
        return [finding("quick-check", "ok", f"PRAGMA quick_check found nothing wrong ({took:.2f} s)")]
    return [
        finding(
            "quick-check",
            "problem",
            f"PRAGMA quick_check reports damage: {'; '.join(result[:5])}",
            "stop the server and restore the last good backup (`aio admin restore FILE --data-dir DIR`)",
            resource=str(path),
            details={"messages": result},
        )
    ]


async def record_backup(rt: Any, principal: Any) -> None:
    """Called by the backup route once a backup file is complete."""
    value = {"ts": time.time(), "key_id": getattr(principal, "key_id", None)}
    await rt.store.execute("core.put_meta", {"key": BACKUP_META, "value": jsonutil.dumps(value).decode()})


async def backup_check(rt: Any) -> list[dict[str, Any]]:
    if _sqlite_path(rt) is None:
        return [
            finding(
                "backup",
                "ok",
                "not applicable: the store is PostgreSQL; back it up with pg_dump or the server's own "
                "backups (point-in-time recovery), and keep the master key beside them",
            )
        ]
    row = await rt.store.fetch_one("core.get_meta", {"key": BACKUP_META})
    fix = "take one: `aio admin backup FILE` (a cross-tenant admin key), for example from cron every night"
    if row is None:
        return [finding("backup", "warn", "no backup was ever taken through the API (`aio admin backup`)", fix)]
    taken = jsonutil.loads(row["value"])
    age = time.time() - float(taken["ts"])
    details = {"last_backup": taken["ts"], "age_seconds": round(age, 1), "key_id": taken.get("key_id")}
    if age > BACKUP_WARN_SECONDS:
        return [finding("backup", "warn", f"the last backup is {age / 86400:.1f} days old", fix, details=details)]
    return [finding("backup", "ok", f"the last backup was taken {_ago(age)} ago", details=details)]


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ---------------------------------------------------------------------- master key
async def master_key_check(rt: Any) -> list[dict[str, Any]]:
    vault = rt.services.get("vault")
    master = getattr(vault, "master", None)
    if vault is None or master is None:
        return [finding("master-key", "problem", "the vault has no master key loaded", "see the server log")]
    key_file: Path = vault.key_file
    out: list[dict[str, Any]] = []
    details = {"source": master.source, "key_file": str(key_file)}
    if master.source == "file":
        try:
            st = key_file.stat()
        except OSError as exc:
            return [
                finding(
                    "master-key",
                    "problem",
                    f"the master key file {key_file} is gone ({exc.strerror}): the next start cannot open any secret",
                    "put the key file back from a safe copy (mode 0600), or start with AIONIX_MASTER_KEY",
                    resource=str(key_file),
                    details=details,
                )
            ]
        mode = stat.S_IMODE(st.st_mode)
        details["mode"] = f"{mode:o}"
        if mode & 0o077:
            out.append(
                finding(
                    "master-key",
                    "problem",
                    f"the master key file {key_file} has mode {mode:o}: other users can read it, and the next "
                    "start refuses it",
                    f"chmod 600 {key_file}",
                    resource=str(key_file),
                    details=details,
                )
            )
        if not mode & stat.S_IRUSR or st.st_uid != os.geteuid():
            out.append(
                finding(
                    "master-key",
                    "problem",
                    f"the master key file {key_file} (uid {st.st_uid}, mode {mode:o}) is not readable by the "
                    f"server's uid {os.geteuid()}: the next start fails",
                    f"chown {os.geteuid()} {key_file} && chmod 600 {key_file}",
                    resource=str(key_file),
                    details=details,
                )
            )
    elif key_file.exists():
        out.append(
            finding(
                "master-key",
                "warn",
                f"the master key comes from {master.describe()}, yet a key file {key_file} lies in the data dir",
                f"if it is an old key no secret needs, delete {key_file}",
                resource=str(key_file),
                details=details,
            )
        )
    pending = Path(str(key_file) + ".next")
    if pending.exists():
        out.append(
            finding(
                "master-key",
                "warn",
                f"{pending} is left from an interrupted master key rotation",
                "restart the server: it finishes or discards the rotation",
                resource=str(pending),
                details=details,
            )
        )
    if not out:
        where = (
            f"{master.describe()} (mode {details.get('mode', '-')})" if master.source == "file" else master.describe()
        )
        out.append(finding("master-key", "ok", f"the master key comes from {where}", details=details))
    return out


# ---------------------------------------------------------------------- clock
async def clock_check(rt: Any) -> list[dict[str, Any]]:
    """The store's newest write times against this clock: a clock that went back makes timers
    and schedules late and orders new history before old."""
    row = await rt.store.fetch_one("doctor.last_writes") or {}
    stamps = {k: float(v) for k, v in row.items() if v is not None}
    now = time.time()
    if not stamps:
        return [finding("clock", "ok", "the store has no writes to compare the clock with yet")]
    table, newest = max(stamps.items(), key=lambda kv: kv[1])
    ahead = newest - now
    details = {"now": now, "newest_write": newest, "table": table, "skew_seconds": round(ahead, 3)}
    if ahead > CLOCK_SKEW_SECONDS:
        return [
            finding(
                "clock",
                "problem",
                f"the store holds a write ({table}) {ahead:.0f} s in this host's future: the clock went back "
                "(or the database came from a host whose clock ran ahead); timers and schedules fire late",
                "sync the clock (chrony/systemd-timesyncd); if it is right now, the skew ends once time "
                "passes the newest write",
                details=details,
            )
        ]
    return [finding("clock", "ok", f"the newest write ({table}) is {max(-ahead, 0):.0f} s old", details=details)]
