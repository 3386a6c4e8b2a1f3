"""`aio admin`: backup, restore, migrate-store, audit, doctor."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import typer

from aionix.cli.client import EXIT_FAILED, EXIT_USAGE, CLIError
from aionix.cli.state import state

app = typer.Typer(help="Administration: online backup, offline restore, audit trail.", no_args_is_help=True)


@app.command("backup")
def backup(ctx: typer.Context, file: Path = typer.Argument(..., help="where to write the backup")) -> None:
    """Take a consistent online backup of the whole database (needs a cross-tenant admin key)."""
    st = state(ctx)
    response = st.client.request("GET", "/api/v1/admin/backup", raw=True)
    tmp = file.with_name(file.name + ".partial")
    tmp.unlink(missing_ok=True)
    # the backup holds every tenant's data (sealed secrets, API key hashes): owner-only, 0600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(response.content)
        out.flush()
        os.fsync(out.fileno())
    check = sqlite3.connect(tmp)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        check.close()
    if ok != "ok":
        tmp.unlink()
        raise CLIError(f"the backup failed its integrity check: {ok}", EXIT_FAILED)
    tmp.replace(file)
    if not st.quiet:
        print(f"backup written to {file} ({file.stat().st_size} bytes)")


@app.command("restore")
def restore(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="a backup made by `aio admin backup`"),
    data_dir: Path = typer.Option(Path("./data"), "--data-dir", help="the server's data dir"),
) -> None:
    """Restore a backup into a data dir while the server is stopped (the current database is
    kept as aionix.db.before-restore)."""
    if not file.is_file():
        raise CLIError(f"{file}: no such file", EXIT_USAGE)
    conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.execute("SELECT version FROM schema_version").fetchall()
    except sqlite3.Error as exc:
        raise CLIError(f"{file} is not an Aionix backup: {exc}", EXIT_USAGE) from None
    finally:
        conn.close()
    if ok != "ok":
        raise CLIError(f"{file} failed its integrity check: {ok}", EXIT_USAGE)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "aionix.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CLIError(f"a server is running on {data_dir}: stop it first", EXIT_FAILED) from None
        db = data_dir / "aionix.db"
        if db.exists():
            shutil.copy2(db, data_dir / "aionix.db.before-restore")
        for suffix in ("-wal", "-shm"):
            (data_dir / f"aionix.db{suffix}").unlink(missing_ok=True)
        shutil.copy2(file, db)
    finally:
        os.close(fd)
    if not state(ctx).quiet:
        print(f"restored {file} into {db}")


@app.command("migrate-store")
def migrate_store(
    ctx: typer.Context,
    to: str = typer.Option(..., "--to", help="postgresql://USER@HOST:PORT/DATABASE, or sqlite:DATA_DIR"),
    source: str = typer.Option(
        "./data", "--from", help="a data dir (sqlite:DATA_DIR or DATA_DIR), or postgresql://USER@HOST:PORT/DATABASE"
    ),
    password_file: Path = typer.Option(
        None, "--password-file", help="the PostgreSQL password (default: AIONIX_DATABASE_PASSWORD)"
    ),
) -> None:
    """Copy a whole store, offline, into an empty one: a SQLite data dir into PostgreSQL, or
    back. Secrets are copied sealed: the target needs the same master key (the data dir's
    master.key file or AIONIX_MASTER_KEY). Stop the server first; a non-empty target is refused."""
    from aionix.errors import AionixError
    from aionix.store.migrate import Endpoint, run

    password = os.environ.get("AIONIX_DATABASE_PASSWORD") or None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CLIError(f"--password-file: cannot read {password_file}: {exc.strerror}", EXIT_USAGE) from None
    try:
        src, dst = Endpoint.parse(source, password), Endpoint.parse(to, password)
    except AionixError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    locks: list[int] = []
    try:
        for ep in (src, dst):  # a server running on a SQLite side holds its data dir's lock
            if ep.kind == "sqlite" and ep.db_file.parent.is_dir():
                fd = os.open(ep.db_file.parent / "aionix.lock", os.O_RDWR | os.O_CREAT, 0o600)
                locks.append(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise CLIError(f"a server is running on {ep.db_file.parent}: stop it first", EXIT_FAILED) from None
        try:
            copied = run(src, dst)
        except AionixError as exc:
            raise CLIError(str(exc), EXIT_FAILED) from None
        except Exception as exc:  # the database refused or is unreachable
            raise CLIError(f"migrate-store failed: {exc}", EXIT_FAILED) from None
    finally:
        for fd in locks:
            os.close(fd)
    st = state(ctx)
    if st.output in ("json", "yaml"):
        st.emit({"from": src.describe(), "to": dst.describe(), "rows": copied})
    elif not st.quiet:
        print(f"copied {sum(copied.values())} rows in {len(copied)} tables from {src.describe()} to {dst.describe()}")
        print("secrets stay sealed: start the server on the new store with the same master key")


audit_app = typer.Typer(
    help="The audit trail: list it (no subcommand), verify its hash chain, export it.", invoke_without_command=True
)
app.add_typer(audit_app, name="audit")


@audit_app.callback()
def audit(
    ctx: typer.Context,
    action: str = typer.Option(None, "--action"),
    since: float = typer.Option(None, "--since", help="Unix time"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """The tenant's audit trail, newest first (or a subcommand: verify, export)."""
    if ctx.invoked_subcommand is not None:
        return
    st = state(ctx)
    page = st.client.get("/api/v1/audit", params={"action": action, "since": since, "limit": limit, "cursor": cursor})
    st.emit(
        page,
        columns=["id", "ts", "key_id", "action", "status"],
        wide_columns=["id", "ts", "key_id", "ip", "action", "resource", "status"],
    )


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="the whole report as JSON (same as -o json), for scripts"),
) -> None:
    """Check the server and explain what to fix: config, data dir and free space, WAL and
    checkpoints, quick_check, last backup, master key, clock skew, trigger outbox and targets,
    stuck executions, confinement and runtimes. Exit 1 when any check finds a problem
    (warnings alone exit 0)."""
    st = state(ctx)
    if as_json:
        st.output = "json"
    report = st.client.get("/api/v1/admin/doctor")
    if st.output in ("json", "yaml"):
        st.emit(report)
    elif "checks" in report:
        marks = {"ok": "ok     ", "warn": "WARN   ", "problem": "PROBLEM"}
        for c in report["checks"]:
            if st.quiet and c["status"] == "ok":
                continue
            where = f" [{c['resource']}]" if c.get("resource") else ""
            print(f"{marks.get(c['status'], c['status'])} {c['check']}: {c['message']}{where}")
            if c["status"] != "ok" and c.get("fix"):
                print(f"        fix: {c['fix']}")
        if not st.quiet:
            n_warn = sum(1 for c in report["checks"] if c["status"] == "warn")
            print(f"{len(report['problems'])} problem(s), {n_warn} warning(s)")
    elif not report["problems"]:
        if not st.quiet:
            print("no problems found")
    else:
        for p in report["problems"]:
            print(
                f"{p['check']}: {p.get('resource') or p.get('tenant') or ''}\n  problem: {p['problem']}\n  fix: {p['fix']}"
            )
    if report["problems"]:
        # (a CLIError: `run()` drives click with standalone_mode=False, where typer.Exit's code is lost)
        raise CLIError(f"doctor found {len(report['problems'])} problem(s)", EXIT_FAILED)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Verify the audit hash chain (every tenant's, with a cross-tenant admin key): names each
    edited, deleted or forged row; exit 1 when any is found."""
    st = state(ctx)
    result = st.client.get("/api/v1/audit/verify")
    if st.output in ("json", "yaml") or st.quiet:
        st.emit(result)
    else:
        for chain in result["chains"]:
            print(
                f"chain {chain['tenant'] or '(tenant-less)'}: {chain['rows']} rows, {chain['checkpoints']} checkpoints"
            )
        for p in result["problems"]:
            print(f"PROBLEM {p['kind']} tenant={p['tenant'] or '-'} id={p['id']} seq={p['seq']}: {p['message']}")
        if result["unchained_rows"]:
            print(f"{result['unchained_rows']} rows predate the chain (not verifiable)")
        print("OK: the audit trail verifies" if result["ok"] else "FAILED: the audit trail does not verify")
    if not result["ok"]:
        raise typer.Exit(EXIT_FAILED)


def _when(value: str | None) -> float | None:
    """Unix time, an ISO 8601 date/time (UTC unless it says), or a relative `7d`/`12h`."""
    import datetime as dt
    import re
    import time

    if value is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", value)
    if m:
        return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CLIError(f"{value!r}: not a time (Unix time, ISO 8601 or 7d/12h)", EXIT_USAGE) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    since: str = typer.Option(None, "--since", help="Unix time, ISO 8601, or 7d / 12h ago"),
    until: str = typer.Option(None, "--until", help="same forms; exclusive"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
    to: str = typer.Option(None, "--to", help="a FILE, or s3://CONNECTION/prefix (default: stdout)"),
    all_tenants: bool = typer.Option(False, "--all-tenants", help="cross-tenant admins: every tenant"),
) -> None:
    """Export the audit trail, oldest first, streamed: JSON Lines or CSV, to stdout, a file, or
    S3 through a connection (the server writes objects of about 1 MiB under the prefix)."""
    import csv
    import json

    if fmt not in ("jsonl", "csv"):
        raise CLIError("--format must be jsonl or csv", EXIT_USAGE)
    st = state(ctx)
    params = {"since": _when(since), "until": _when(until), "all_tenants": all_tenants or None}
    if to is not None and to.startswith("s3://"):
        body = {
            "to": to,
            "format": fmt,
            "all_tenants": all_tenants,
            **{k: v for k, v in params.items() if v is not None},
        }
        st.emit(st.client.post("/api/v1/audit/export", body), columns=["key", "size"])
        return
    from aionix.iam.audit import EXPORT_FIELDS_CHAIN

    out = open(to, "w", encoding="utf-8", newline="") if to else sys.stdout  # noqa: SIM115
    rows = 0
    try:
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(EXPORT_FIELDS_CHAIN)
        query = {k: v for k, v in params.items() if v is not None}
        with st.client.http.stream("GET", "/api/v1/audit/export", params=query, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                st.client.request("GET", "/api/v1/audit/export", params=query)  # raises the CLI error
            for line in response.iter_lines():
                if not line:
                    continue
                rows += 1
                if writer is None:
                    out.write(line + "\n")
                else:
                    row = json.loads(line)
                    details = row.get("details")
                    if details is not None and not isinstance(details, str):
                        row["details"] = json.dumps(details, separators=(",", ":"))
                    writer.writerow([row.get(f) for f in EXPORT_FIELDS_CHAIN])
    finally:
        if to:
            out.close()
    if to and not st.quiet:
        print(f"exported {rows} rows to {to}", file=sys.stderr)
