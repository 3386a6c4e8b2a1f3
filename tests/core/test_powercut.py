"""RELIABILITY D1: acknowledged commits survive a power cut.

Python's `sqlite3` cannot load a custom VFS, so this test uses APSW with a shim VFS that
models a disk which loses every write not followed by an fsync: on `xSync` the file's bytes
become durable; a "power cut" puts every file back to its last durable bytes (and drops files
never synced, like the `-shm` index that SQLite rebuilds). It runs the store's own schema,
pragmas (WAL, the shipped `synchronous`) and transaction shape (`BEGIN IMMEDIATE` … `COMMIT`)
and counts acknowledged commits that vanish.
"""

import random
from pathlib import Path

import pytest

apsw = pytest.importorskip("apsw")

from aionix.config import DatabaseConfig  # noqa: E402
from aionix.store.queries import load_migrations  # noqa: E402


class Disk:
    def __init__(self) -> None:
        self.durable: dict[str, bytes | None] = {}

    def synced(self, filename: str) -> None:
        self.durable[filename] = Path(filename).read_bytes() if Path(filename).exists() else b""

    def power_cut(self) -> None:
        for filename, data in self.durable.items():
            if data is None:
                Path(filename).unlink(missing_ok=True)
            else:
                Path(filename).write_bytes(data)


def make_vfs(disk: Disk, name: str):
    class File(apsw.VFSFile):
        def __init__(self, inherit: str, filename, flags) -> None:
            super().__init__(inherit, filename, flags)
            self.path = filename.filename() if hasattr(filename, "filename") else str(filename)
            disk.durable.setdefault(self.path, None)

        def xSync(self, flags: int) -> None:
            super().xSync(flags)
            disk.synced(self.path)

    class VFS(apsw.VFS):
        def __init__(self) -> None:
            super().__init__(name, "")

        def xOpen(self, filename, flags):
            return File("", filename, flags)

        def xDelete(self, filename, syncdir):
            super().xDelete(filename, syncdir)
            disk.durable[filename] = None  # SQLite syncs the directory when it must

    return VFS()


def run_until_power_cut(tmp_path: Path, synchronous: str, seed: int) -> tuple[int, int]:
    """Commit rows one transaction each, acknowledging each after COMMIT returns; cut the power
    at a random moment; reopen; return (acknowledged, lost)."""
    disk = Disk()
    vfs_name = f"powercut-{synchronous}-{seed}"
    vfs = make_vfs(disk, vfs_name)
    db = str(tmp_path / f"p-{synchronous}-{seed}.db")
    conn = apsw.Connection(db, vfs=vfs_name)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA wal_autocheckpoint=1000")
    for migration in load_migrations("sqlite"):
        if migration.version == 1:
            conn.execute(migration.sql)
    rng = random.Random(seed)
    cut_after = rng.randint(50, 400)
    acknowledged = []
    for i in range(cut_after):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (f"k{i}", "v" * rng.randint(1, 300)))
        conn.execute("COMMIT")
        acknowledged.append(f"k{i}")
    # Power cut: the process and the page cache are gone; only synced bytes remain.
    disk.power_cut()
    conn.close()
    reopened = apsw.Connection(db)
    try:
        present = {row[0] for row in reopened.execute("SELECT key FROM meta")}
    except apsw.SQLError:  # nothing was ever synced: even the table is gone
        present = set()
    assert reopened.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    reopened.close()
    vfs.unregister()
    return len(acknowledged), sum(1 for k in acknowledged if k not in present)


def test_shipped_default_loses_no_acknowledged_commit_in_a_power_cut(tmp_path):
    assert DatabaseConfig().synchronous == "FULL"
    total = lost = 0
    for seed in range(5):
        acked, missing = run_until_power_cut(tmp_path, "FULL", seed)
        total += acked
        lost += missing
    assert total > 0 and lost == 0


def test_normal_is_the_documented_loss_window(tmp_path):
    """The opt-in: NORMAL does not fsync on commit, so a power cut loses the commits since the
    last checkpoint or sync — which is why it is not the default."""
    lost = sum(run_until_power_cut(tmp_path, "NORMAL", seed)[1] for seed in range(3))
    assert lost > 0
