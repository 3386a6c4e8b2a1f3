"""`aio admin`: backup, restore, audit, doctor."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
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


@app.command("audit")
def audit(
    ctx: typer.Context,
    action: str = typer.Option(None, "--action"),
    since: float = typer.Option(None, "--since", help="Unix time"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """The tenant's audit trail, newest first."""
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
