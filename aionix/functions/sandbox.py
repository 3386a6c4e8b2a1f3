"""The secured-subprocess model: what the host lets us enforce, and the per-worker pieces.

At start `detect()` finds out what this host allows — dropping to unprivileged uids (only when
the server runs as root), a network namespace, cgroups v1 or v2 controllers — and reports it
as the confinement level shown in `/healthz`. Each worker then gets its own uid (so that
`RLIMIT_NPROC` counts only its processes and `kill(-1)` run as that uid reaps exactly its
orphans), its own cgroup where available (memory, pids, cpu), and a private directory.
The confinement itself is applied inside the child by `aionix.functions.worker` before any
user code is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("aionix.functions")

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: uids one server claims at a time; enough for three runtimes' pools at `max_workers` <= 120
UID_BLOCK = 384


class NoSandboxUid(OSError):
    """No unprivileged uid is free for a new worker."""


V1_CONTROLLERS = ("memory", "pids", "cpu")
#: the CPU weight of the cgroup that holds every worker, beside the server's own group: that of
#: one task at nice 10 (the kernel's weight table: 110 against 1024 at nice 0; cgroup v2's
#: cpu.weight is on a scale where 100 is nice 0). The workers' own niceness counts only inside
#: that group, so without it a worker in its own cgroup would take the CPU as the server does.
V1_WORKER_CPU_SHARES = 110
V2_WORKER_CPU_WEIGHT = 11


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


@dataclass
class Cgroup:
    """One worker's cgroup (a directory per v1 controller, or one v2 directory)."""

    version: str
    dirs: list[Path]

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return found

    def oom_killed(self) -> bool:
        """True when the kernel's OOM killer acted (or the limit was hit) in this cgroup."""
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (d / name).read_text()
                except OSError:
                    continue
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill", "oom") and value.strip().isdigit() and int(value) > 0:
                        return True
            try:
                if int((d / "memory.failcnt").read_text()) > 0:
                    return True
            except (OSError, ValueError):
                pass
        return False

    def kill(self) -> None:
        if self.version == "v2":
            _write(self.dirs[0] / "cgroup.kill", "1")
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        for d in self.dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


@dataclass
class Confinement:
    """What this host lets the server enforce on user code."""

    root: bool
    uid_drop: bool
    netns: bool
    mountns: bool
    cgroups: str
    cgroup_bases: dict[str, Path] = field(default_factory=dict)
    #: each worker is PID 2 of its own PID namespace with its own /proc (needs `mountns`)
    pidns: bool = False
    uid_base: int = 61000
    uid_count: int = 4096
    sandbox_dir: Path = Path(tempfile.gettempdir())
    #: the seccomp deny-list filter is applied in every worker (libseccomp found and working)
    seccomp: bool = False
    seccomp_library: str | None = None
    #: size of a worker's private /tmp (a tmpfs, with `mountns`)
    tmp_bytes: int = 128 << 20
    #: workers can get a CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us)
    cpu_quota: bool = False
    _free_uids: list[int] = field(default_factory=list)
    _serial: int = 0
    _block_fd: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "uid_drop": self.uid_drop,
            "netns": self.netns,
            "private_tmp": self.mountns,
            "pid_namespace": self.pidns,
            "cgroups": self.cgroups,
            "cgroup_controllers": sorted(self.cgroup_bases)
            if self.cgroups == "v1"
            else (["memory", "pids", *(["cpu"] if self.cpu_quota else [])] if self.cgroups == "v2" else []),
            # a module's runtime.resources.cpu as a cgroup CPU quota (else only the CPU-time rlimit)
            "cpu_quota": self.cpu_quota,
            "rlimits": ["as", "cpu", "nproc", "nofile", "fsize", "core"],
            "seccomp": self.seccomp,
            "seccomp_library": self.seccomp_library,
            "tmp_max_bytes": self.tmp_bytes if self.mountns else None,
        }

    # ------------------------------------------------------------------ uids
    def _claim_block(self) -> None:
        """Claim a block of `UID_BLOCK` uids for this server, exclusively among every server on
        the host (a lock file per block, held until the process ends), and kill whatever a
        crashed previous owner left running under them."""
        import fcntl

        lock_dir = Path(tempfile.gettempdir()) / "aionix-fn-uids"
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        for block in range(max(1, self.uid_count // UID_BLOCK)):
            fd = os.open(lock_dir / f"{self.uid_base}-{block}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._block_fd = fd
            first = self.uid_base + block * UID_BLOCK
            uids = range(first, first + min(UID_BLOCK, self.uid_count))
            for pid in uid_processes(*uids):  # one pass over /proc for the whole block
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self._free_uids = list(reversed(uids))
            return
        raise NoSandboxUid(
            f"every block of {UID_BLOCK} sandbox uids in [functions] uid_base..uid_base+uid_count "
            f"({self.uid_base}..{self.uid_base + self.uid_count - 1}) is in use by other servers"
        )

    def acquire_uid(self) -> int | None:
        """A uid no other live worker (of any server on this host) runs as."""
        if not self.uid_drop:
            return None
        if self._block_fd is None:
            self._claim_block()
        if not self._free_uids:
            raise NoSandboxUid(
                f"all {UID_BLOCK} sandbox uids of this server are in use (lower [functions] max_workers)"
            )
        return self._free_uids.pop()

    def release_uid(self, uid: int | None) -> None:
        if uid is not None and uid not in self._free_uids:
            self._free_uids.insert(0, uid)

    # ------------------------------------------------------------------ cgroups
    def create_cgroup(self, memory_bytes: int | None, pids_max: int | None, cpu_quota: float | None) -> Cgroup | None:
        if self.cgroups == "none":
            return None
        self._serial += 1
        name = f"w{self._serial}"
        dirs: list[Path] = []
        try:
            if self.cgroups == "v2":
                d = self.cgroup_bases["v2"] / name
                d.mkdir()
                dirs.append(d)
                if memory_bytes:
                    _write(d / "memory.max", str(memory_bytes))
                    _write(d / "memory.swap.max", "0")
                if pids_max:
                    _write(d / "pids.max", str(pids_max))
                if cpu_quota and not _write(d / "cpu.max", f"{max(1000, int(cpu_quota * 100000))} 100000"):
                    log.warning("could not set a worker's cpu.max (the CPU-time rlimit still applies)")
            else:
                for controller, base in self.cgroup_bases.items():
                    d = base / name
                    d.mkdir()
                    dirs.append(d)
                    if controller == "memory" and memory_bytes:
                        _write(d / "memory.limit_in_bytes", str(memory_bytes))
                        _write(d / "memory.memsw.limit_in_bytes", str(memory_bytes))
                    elif controller == "pids" and pids_max:
                        _write(d / "pids.max", str(pids_max))
                    elif controller == "cpu" and cpu_quota:
                        _write(d / "cpu.cfs_period_us", "100000")
                        if not _write(d / "cpu.cfs_quota_us", str(max(1000, int(cpu_quota * 100000)))):
                            log.warning("could not set a worker's cpu.cfs_quota_us (the CPU-time rlimit still applies)")
        except OSError as exc:
            log.warning("could not create a worker cgroup: %s", exc)
            Cgroup(self.cgroups, dirs).remove()
            return None
        return Cgroup(self.cgroups, dirs)

    def cleanup(self) -> None:
        for base in self.cgroup_bases.values():
            if base.exists():
                for child in base.iterdir():
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    base.rmdir()
        shutil.rmtree(self.sandbox_dir, ignore_errors=True)


def _mountns_works() -> bool:
    probe = (
        "import ctypes,sys; c = ctypes.CDLL(None, use_errno=True); "
        "sys.exit(0 if c.unshare(0x00020000) == 0 and c.mount(None, b'/', None, ctypes.c_ulong(16384 | (1 << 18)), None) == 0 else 1)"
    )
    if getattr(sys, "frozen", False):
        # the single executable has no `-c`; both namespaces need the same privilege
        return _netns_works()
    try:
        return subprocess.run([sys.executable, "-I", "-c", probe], timeout=20, capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _pidns_works() -> bool:
    """A worker can be PID 1 of its own PID namespace with a fresh /proc (the probe is the
    worker's own entry point, so the single executable answers it too)."""
    import json

    spec = json.dumps({"mode": "pidns-probe"})
    command = (
        [sys.executable, "--worker", spec]
        if getattr(sys, "frozen", False)
        else [sys.executable, "-I", "-m", "aionix.functions.worker", spec]
    )
    try:
        return subprocess.run(command, timeout=20, capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _remove_stale(parent: Path) -> None:
    """Sandbox directories and cgroups left by servers that died without cleaning up."""
    stale = []
    for root in (parent, *(CGROUP_ROOT / c for c in V1_CONTROLLERS), CGROUP_ROOT):
        with contextlib.suppress(OSError):
            for entry in root.glob("aionix-fn-*"):
                pid = entry.name.rsplit("-", 1)[-1]
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    stale.append(entry)
    for entry in stale:
        if str(entry).startswith(str(CGROUP_ROOT)):
            with contextlib.suppress(OSError):  # another server may remove it first
                for child in list(entry.glob("w*")):
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                entry.rmdir()
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _seccomp_works() -> str | None:
    """libseccomp's version when a worker can load the filter here, else None: a probe
    process applies it exactly as a worker does and must then see unshare fail with EPERM."""
    import json

    spec = json.dumps({"mode": "seccomp-probe", "seccomp": True, "work_dir": "/"})
    if getattr(sys, "frozen", False):
        command = [sys.executable, "--worker", spec]
    else:
        command = [sys.executable, "-I", "-m", "aionix.functions.worker", spec]
    try:
        if subprocess.run(command, timeout=20, capture_output=True).returncode != 0:
            return None
        import ctypes

        lib = ctypes.CDLL("libseccomp.so.2")

        class Version(ctypes.Structure):
            _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

        lib.seccomp_version.restype = ctypes.POINTER(Version)
        v = lib.seccomp_version().contents
        return f"libseccomp {v.major}.{v.minor}.{v.micro}"
    except (OSError, AttributeError, subprocess.SubprocessError):
        return None


def _netns_works() -> bool:
    probe = "import ctypes,sys; sys.exit(0 if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) == 0 else 1)"
    try:
        # the single executable has no `-c`: it answers the same probe as `aionix --netns-probe`
        command = (
            [sys.executable, "--netns-probe"] if getattr(sys, "frozen", False) else [sys.executable, "-I", "-c", probe]
        )
        return subprocess.run(command, timeout=20, capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _setup_cgroups(tag: str, wanted: str) -> tuple[str, dict[str, Path]]:
    if wanted == "off":
        return "none", {}
    v2_root = CGROUP_ROOT / "cgroup.controllers"
    if wanted in ("auto", "v2") and v2_root.exists():
        controllers = set(v2_root.read_text().split())
        if {"memory", "pids"} <= controllers:
            base = CGROUP_ROOT / tag
            try:
                base.mkdir(exist_ok=True)
                if _write(base / "cgroup.subtree_control", "+memory +pids" + (" +cpu" if "cpu" in controllers else "")):
                    _write(base / "cpu.weight", str(V2_WORKER_CPU_WEIGHT))  # where the parent delegates cpu
                    return "v2", {"v2": base}
                base.rmdir()
            except OSError:
                pass
    if wanted in ("auto", "v1"):
        bases: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            root = CGROUP_ROOT / controller
            if not (root / "cgroup.procs").exists() or (root / "cgroup.controllers").exists():
                continue
            base = root / tag
            try:
                base.mkdir(exist_ok=True)
                bases[controller] = base
                if controller == "cpu":
                    _write(base / "cpu.shares", str(V1_WORKER_CPU_SHARES))
            except OSError:
                continue
        if "memory" in bases or "pids" in bases:
            return "v1", bases
        for base in bases.values():
            with contextlib.suppress(OSError):
                base.rmdir()
    return "none", {}


def _cpu_controller(kind: str, bases: dict[str, Path]) -> bool:
    if kind == "v1":
        return "cpu" in bases
    if kind == "v2":
        try:
            return "cpu" in (bases["v2"] / "cgroup.subtree_control").read_text().split()
        except OSError:
            return False
    return False


def detect(
    *,
    uid_base: int,
    uid_count: int,
    cgroups: str,
    network_namespace: bool,
    sandbox_parent: str,
    private_tmp: bool = True,
    seccomp: bool = True,
    tmp_bytes: int = 128 << 20,
) -> Confinement:
    """Probe the host once at start (blocking; call from a thread)."""
    root = os.geteuid() == 0
    tag = f"aionix-fn-{os.getpid()}"
    parent = Path(sandbox_parent or tempfile.gettempdir())
    _remove_stale(parent)
    sandbox = parent / tag
    shutil.rmtree(sandbox, ignore_errors=True)
    sandbox.mkdir(parents=True, mode=0o711)
    os.chmod(sandbox, 0o711)
    (sandbox / "code").mkdir(mode=0o711)
    (sandbox / "workers").mkdir(mode=0o711)
    kind, bases = _setup_cgroups(tag, cgroups) if root else ("none", {})
    library = _seccomp_works() if seccomp else None
    mountns = private_tmp and root and _mountns_works()
    return Confinement(
        root=root,
        uid_drop=root,
        netns=network_namespace and root and _netns_works(),
        mountns=mountns,
        pidns=mountns and _pidns_works(),
        cgroups=kind,
        cgroup_bases=bases,
        cpu_quota=_cpu_controller(kind, bases),
        uid_base=uid_base,
        uid_count=uid_count,
        sandbox_dir=sandbox,
        seccomp=library is not None,
        seccomp_library=library,
        tmp_bytes=tmp_bytes,
    )


async def kill_uid(uid: int) -> None:
    """SIGKILL every process running as `uid`: `kill(-1)` from a process with that uid is
    atomic against forks, so a fork bomb cannot outrun it."""
    for _ in range(3):
        # a plain subprocess in a thread: uvloop's subprocess support has no user/group
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            await asyncio.to_thread(
                subprocess.run,
                ["/bin/sh", "-c", "kill -9 -1"],  # the shell builtin: no procps needed
                user=uid,
                group=uid,
                extra_groups=[],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
            )
        if not uid_processes(uid):
            return
        await asyncio.sleep(0.02)
    for pid in uid_processes(uid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def uid_processes(*uids: int) -> list[int]:
    """The live (not zombie) processes running as any of `uids`, from one pass over /proc."""
    wanted = set(uids)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid not in wanted:
                    continue
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != b"Z":
                found.append(int(entry))
    return found


def uid_task_count(uid: int) -> int:
    """Processes and threads running as `uid` (what RLIMIT_NPROC counts)."""
    total = 0
    for pid in uid_processes(uid):
        try:
            total += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
    return total
