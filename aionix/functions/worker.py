"""The function worker: a child process that confines itself, then runs user code.

Started by the server as `python -I -m aionix.functions.worker SPEC_JSON` (a frozen build
dispatches `--worker` to `main`). Before any user code is loaded it joins its cgroups, enters
a new network namespace when asked, sets its rlimits, drops to its own unprivileged uid and
asks for SIGKILL when the server dies. Then either:

- `python` mode: imports the handler once and answers JSON-line requests on a private pipe
  (`{"id", "event", "context"}` → `{"id", "ok", "result"|"error", "stdout", "stderr", ...}`),
  each invocation in a fresh empty working directory with stdout/stderr captured to files;
- `exec` mode: replaces itself with another program (the Deno runtime) under the same
  confinement.

Only the standard library is imported here, and nothing heavy.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOEXEC = 8
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PRIVATE_TMP = "/tmp"
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
#: entries of the worker's own directory that survive between invocations
KEPT = {".code", ".bin", ".stdout", ".stderr"}
#: system calls user code never needs, denied with EPERM (seccomp, where libseccomp exists):
#: namespaces, mounts, tracing other processes, kernel keyrings, eBPF, modules, kexec, ...
SECCOMP_DENY = (
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount",
    "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "pidfd_getfd", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl", "open_by_handle_at",
    "name_to_handle_at", "lookup_dcookie", "iopl", "ioperm", "vhangup", "syslog", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "nfsservctl", "uselib",
)  # fmt: skip
#: clone() flags that create namespaces (denied like unshare); clone3 hides its flags in memory,
#: so it answers ENOSYS and libc falls back to clone
CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)


def _reachable_by_others(path: str) -> bool:
    import stat

    current = os.path.abspath(path)
    if not os.stat(current).st_mode & stat.S_IROTH:
        return False
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while True:
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def _keep_import_path(hidden_tmp: bool) -> None:
    """The interpreter may live where the unprivileged uid cannot look (a pyenv under /root),
    or under the /tmp that the private mount will hide (a single executable's archive): keep
    such import paths open and import through `/proc/self/fd/N` instead."""
    kept, moved = [], {}
    tmp = PRIVATE_TMP + os.sep
    for entry in sys.path:
        under_tmp = hidden_tmp and os.path.abspath(entry or ".").startswith(tmp)
        if entry and os.path.exists(entry) and (under_tmp or not _reachable_by_others(entry)):
            fd = os.open(entry, os.O_RDONLY)
            moved[os.path.abspath(entry)] = f"/proc/self/fd/{fd}"
            kept.append(moved[os.path.abspath(entry)])
        else:
            kept.append(entry)
    sys.path[:] = kept
    sys.path_importer_cache.clear()
    bundle = getattr(sys, "_MEIPASS", None)  # the single executable finds modules relative to it
    if bundle and os.path.abspath(bundle) in moved:
        from aionix.frozen import bundle_moved

        bundle_moved(moved[os.path.abspath(bundle)])
    # packages imported already (collections, encodings, ...) look up submodules in __path__
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if not isinstance(paths, list):
            continue
        for i, entry in enumerate(paths):
            for old, new in moved.items():
                if entry.startswith(old + os.sep):
                    paths[i] = new + entry[len(old) :]


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    import ctypes

    enc = lambda v: v.encode() if v is not None else None  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target} failed: {os.strerror(ctypes.get_errno())}")


def _private_tmp(libc, spec: dict) -> None:
    """A mount namespace where /tmp is this worker's own tmpfs of `tmp_bytes` (with the code
    read-only in /tmp/.code) and /var/tmp, /dev/shm are small private tmpfs: nothing shared to
    write to, nothing of the host's /tmp (other workers, data dirs under it) to see, and no
    way to fill the host's disk."""
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError("unshare(CLONE_NEWNS) failed")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    work, code = spec["work_dir"], spec["code_dir"]
    owner = spec.get("uid")
    options = f"size={int(spec.get('tmp_bytes') or 128 << 20)},mode=0700"
    if owner is not None:
        options += f",uid={owner},gid={owner}"
    _mount(libc, "tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, options)
    inner = os.path.join(work, ".code")
    os.mkdir(inner, 0o755)
    os.chmod(inner, 0o755)  # whatever the server's umask: the worker's uid must traverse it
    _mount(libc, code, inner, None, MS_BIND | MS_REC)
    _mount(libc, None, inner, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    command = spec.get("command") or []
    if command and os.path.isabs(command[0]) and os.path.realpath(command[0]).startswith(PRIVATE_TMP + "/"):
        # the program (e.g. a deno binary in a virtualenv under /tmp) would vanish behind the
        # private /tmp: keep it reachable as a read-only bind inside the worker's own directory
        real = os.path.realpath(command[0])
        bindir = os.path.join(work, ".bin")
        os.makedirs(bindir, 0o755, exist_ok=True)
        os.chmod(bindir, 0o755)  # (a umask of 077 made it root's alone: execve got EACCES)
        kept = os.path.join(bindir, os.path.basename(real))
        open(kept, "wb").close()
        _mount(libc, real, kept, None, MS_BIND)
        _mount(libc, None, kept, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        command[0] = kept
    _mount(libc, work, PRIVATE_TMP, None, MS_BIND | MS_REC)
    for extra in ("/var/tmp", "/dev/shm"):
        if os.path.isdir(extra):
            _mount(libc, "tmpfs", extra, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    new_code = os.path.join(PRIVATE_TMP, ".code")
    spec["command"] = [a.replace(code, new_code).replace(work, PRIVATE_TMP) for a in spec.get("command", [])]
    spec["work_dir"], spec["code_dir"] = PRIVATE_TMP, new_code
    os.environ["HOME"] = os.environ["TMPDIR"] = PRIVATE_TMP


def _egress_listener(fd: int, port: int) -> None:
    """Bring up the namespace's loopback, bind the egress proxy's listener on 127.0.0.1:`port`
    and hand it to the server over the socketpair `fd`: the server accepts on it and relays
    to granted hosts only. The worker keeps no copy, so user code cannot accept on it."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        flags = struct.unpack("16sH", fcntl.ioctl(ctl, SIOCGIFFLAGS, struct.pack("16sH", b"lo", 0)))[1]
        fcntl.ioctl(ctl, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    with socket.socket(fileno=fd) as channel:
        socket.send_fds(channel, [b"L"], [listener.fileno()])
    listener.close()


def _seccomp() -> None:
    """Load the deny-list filter through libseccomp (it handles each architecture's numbers
    and the x32 ABI) and set no_new_privs; it survives exec (Deno) and applies to every
    thread and child created afterwards."""
    import ctypes
    import errno

    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_void_p,
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM
    ctx = lib.seccomp_init(allow)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:

        def add(action: int, name: str, *cmps: ArgCmp) -> None:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:  # not a system call on this architecture
                return
            array = (ArgCmp * len(cmps))(*cmps) if cmps else None
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array)
            if rc < 0:
                raise OSError(-rc, f"seccomp rule for {name}: {os.strerror(-rc)}")

        for name in SECCOMP_DENY:
            add(deny, name)
        for flag in CLONE_NS_FLAGS:  # SCMP_CMP_MASKED_EQ on the flags argument
            add(deny, "clone", ArgCmp(0, 7, flag, flag))
        add(0x00050000 | errno.ENOSYS, "clone3")
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")
    finally:
        lib.seccomp_release(ctx)


def _relay_exit(status: int) -> None:
    """Exit the way a child ended: by its signal (told by a namespace init as 128 + signal,
    because an init cannot be killed by its own signals) or with its exit code."""
    import signal

    number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if not number and 128 < code < 128 + signal.NSIG:
        number = code - 128
    if number:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), number)
        code = 128 + number
    os._exit(code)


def _wait_for(child: int) -> int:
    """Reap children until `child` ends; its wait status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 1 << 8
        if pid == child:
            return status


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the server must see EOF on the pipes when the worker ends
        os.dup2(devnull, fd)
    os.close(devnull)


def _supervise(child: int, parent_pid: int | None) -> None:
    """The process outside the new PID namespace: it waits for the namespace's init and exits
    the way the worker did, so the server sees the worker's status. Killing this process's
    group (the server does) kills all three."""
    import signal

    _libc().prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(child, signal.SIGKILL)
        os._exit(1)
    _detach_stdio()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: os.kill(child, signal.SIGKILL))
    _relay_exit(_wait_for(child))


def _pid_namespace(libc, spec: dict) -> None:
    """Continue as PID 2 of a new PID namespace with its own /proc: user code sees only its
    own processes (no command line or environment of the host's). `unshare(CLONE_NEWPID)`
    applies to children only, so the worker forks: the parent stays outside as a supervisor,
    the first child is the namespace's init (PID 1, which the kernel shields from signals
    such as SIGXCPU, so it runs no user code; when it exits every process inside dies), and
    its child goes on to become the worker."""
    import signal

    if libc.unshare(CLONE_NEWPID) != 0:
        raise OSError("unshare(CLONE_NEWPID) failed")
    alive_r, alive_w = os.pipe()
    init = os.fork()
    if init:
        os.close(alive_r)
        _supervise(init, spec.get("parent_pid"))
    os.close(alive_w)
    _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if _supervisor_gone(alive_r):  # the supervisor's pid is not visible from here
        os._exit(1)
    os.close(alive_r)
    worker = os.fork()
    if worker:
        _detach_stdio()
        _relay_as_init(_wait_for(worker))
    spec["in_pidns"] = True


def _relay_as_init(status: int) -> None:
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    os._exit(code if os.WIFSIGNALED(status) or os.WIFEXITED(status) else 1)


def _supervisor_gone(fd: int) -> bool:
    import select

    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)  # EOF: the supervisor (and so the server's child) is gone


def pidns_probe() -> int:
    """Exit status 0 when a worker could have a PID namespace with its own /proc here."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        return 1
    try:
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    except OSError:
        return 1
    if libc.unshare(CLONE_NEWPID) != 0:
        return 1
    child = os.fork()
    if child == 0:
        try:
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os._exit(0 if os.getpid() == 1 and os.listdir("/proc") else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    return 0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1


def confine(spec: dict) -> None:
    """Apply the sandbox described by `spec` to this process (irreversibly)."""
    from aionix.priority import yield_cpu  # the standard library only

    yield_cpu()  # user code runs below the server (its children inherit it)
    for procs in spec.get("cgroup_procs", []):
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    libc = _libc() if (spec.get("netns") or spec.get("mountns") or spec.get("uid") is not None) else None
    if spec.get("netns") and libc.unshare(CLONE_NEWNET) != 0:
        raise OSError("unshare(CLONE_NEWNET) failed")
    if spec.get("egress_fd") is not None:
        _egress_listener(spec["egress_fd"], spec["egress_port"])
    uid = spec.get("uid")
    if uid is not None or spec.get("mountns"):
        _keep_import_path(bool(spec.get("mountns")))
    if spec.get("mountns"):
        _private_tmp(libc, spec)
        if spec.get("pidns"):
            _pid_namespace(libc, spec)
    limits = spec.get("rlimits", {})
    for name, value in limits.items():
        which = getattr(resource, "RLIMIT_" + name.upper())
        resource.setrlimit(which, (value, value))
    os.umask(0o077)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        # setuid made us non-dumpable, which hides /proc/self/fd (the import path) from us.
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # orphans of user code re-parent to the worker, which reaps (and kills) them
    (libc or _libc()).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if libc is not None:
        import signal

        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if spec.get("in_pidns"):
            if os.getppid() != 1:  # the namespace's init is gone
                os._exit(1)
        elif os.getppid() != spec.get("parent_pid", os.getppid()):
            os._exit(1)
    os.chdir(spec["work_dir"])
    if spec.get("seccomp"):
        _seccomp()  # last: the steps above need mount, unshare and setuid


class Context:
    """The `context` argument of a handler, like AWS Lambda's."""

    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)
        self.aws_request_id = data.get("invocation_id")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))

    def __getitem__(self, key: str):
        return self.__dict__[key]

    def __repr__(self) -> str:
        return f"Context({self.function_name}:{self.function_version}, {self.invocation_id})"


def _error(exc: BaseException) -> dict:
    import traceback

    trace = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"errorType": type(exc).__name__, "errorMessage": str(exc), "trace": [line.rstrip("\n") for line in trace]}


def _read_capped(path: str, cap: int) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError:
        return ""
    text = data[:cap].decode("utf-8", "replace")
    return text + ("\n[output truncated]" if len(data) > cap else "")


def _still_fresh(path: str) -> bool:
    """An invocation that left its directory empty and unchanged hands the next one an
    equally fresh directory (removing and re-creating it costs milliseconds on a busy disk)."""
    try:
        st = os.stat(path)
        return (st.st_mode & 0o7777) == 0o700 and st.st_uid == os.getuid() and not os.listdir(path)
    except OSError:
        return False


def _reap(wait: float = 0.0) -> None:
    """Collect exited children; with `wait`, give killed ones that long to finish dying."""
    deadline = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] != b"Z":
            found.append(int(entry))
    return found


def _kill_leftovers(own_uid: bool) -> None:
    """Kill whatever the invocation left running. With its own uid, `kill(-1)` reaches every
    other process of that uid at once (a fork bomb cannot outrun it); otherwise the worker, a
    child subreaper, kills its descendants as they re-parent to it."""
    if own_uid:
        try:
            os.kill(-1, 9)
        except OSError:
            pass
        _reap(wait=0.5)
        return
    for _ in range(50):
        _reap(wait=0.05)
        children = _children()
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, 9)
            except OSError:
                pass


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _threads_left(baseline: int) -> bool:
    """Whether the invocation left threads running (a joined thread may take a moment to go)."""
    deadline = time.monotonic() + 0.1
    while _thread_count() > baseline:
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.002)
    return False


def _tasks_left(loop) -> bool:
    """Cancel what an async handler left on its event loop; True if something would not stop."""
    import asyncio

    pending = asyncio.all_tasks(loop)
    if not pending:
        return False
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=0.2))
    return any(not t.done() for t in pending)


def _fresh_loop(loop):
    """The event loop for the next invocation. One whose default executor ran (`to_thread`,
    `run_in_executor(None, …)`) is replaced: the executor's idle threads exit at once, so an
    async handler that used them keeps its warm worker; a thread still busy counts as left."""
    import asyncio

    executor = getattr(loop, "_default_executor", None)
    if executor is None:
        return loop
    executor.shutdown(wait=False)
    loop.close()
    return asyncio.new_event_loop()


def _empty_dirs(base: str, keep: set[str], extra: tuple[str, ...]) -> None:
    """Remove what the invocation left in the worker's own directory (its /tmp) and in the
    private /var/tmp and /dev/shm, so the next invocation starts from the same state."""
    import shutil

    for root, kept in ((base, keep), *((d, set()) for d in extra)):
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for name in entries:
            if name in kept:
                continue
            path = os.path.join(root, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _load_handler(spec: dict):
    import importlib

    sys.path.insert(0, spec["code_dir"])
    module_name, _, attr = spec["handler"].rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise AttributeError(f"handler {attr!r} is not a function in module {module_name!r}")
    return handler


def serve_python(spec: dict) -> None:
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    base = spec["work_dir"]
    out_path, err_path = os.path.join(base, ".stdout"), os.path.join(base, ".stderr")
    cap = int(spec.get("log_max_bytes", 65536))

    def capture() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for path, fd in ((out_path, 1), (err_path, 2)):
            new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(new, fd)
            os.close(new)

    def collected() -> tuple[str, str]:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        return _read_capped(out_path, cap), _read_capped(err_path, cap)

    def send(message: dict) -> None:
        try:
            data = json.dumps(message, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            message.pop("result", None)
            message["ok"] = False
            message["error"] = {
                "errorType": "Runtime.ResponseSerialization",
                "errorMessage": f"the handler's result is not JSON: {exc}",
                "trace": [],
            }
            data = json.dumps(message, default=str).encode()
        proto_out.write(data + b"\n")

    capture()
    # what the invocation loop needs is loaded before `ready` (part of the cold start, bounded by
    # limits.init_timeout_seconds): the invocation timeout starts at the handler's call
    import asyncio
    import inspect
    import shutil

    loop = asyncio.new_event_loop()
    try:
        handler = _load_handler(spec)
        init_error = None
    except BaseException as exc:  # any failure of user init code is reported
        handler, init_error = None, _error(exc)
    out, err = collected()
    send({"ready": init_error is None, "error": init_error, "stdout": out, "stderr": err})
    if init_error is not None:
        return

    own_uid = spec.get("uid") is not None
    cpu_limit = spec.get("cpu_seconds")
    private = ("/var/tmp", "/dev/shm") if spec.get("mountns") else ()
    run_dir = None
    # threads the handler's module started at import belong to its warm state, like Lambda's
    # init phase; any more after an invocation retire the worker
    baseline_threads = _thread_count()
    for serial, line in enumerate(proto_in, 1):
        request = json.loads(line)
        if run_dir is None:
            run_dir = os.path.join(base, f"run-{serial}")
            os.mkdir(run_dir, 0o700)
        os.chdir(run_dir)
        os.environ["TMPDIR"] = run_dir
        os.environ["HOME"] = run_dir
        if cpu_limit:
            used = resource.getrusage(resource.RUSAGE_SELF)
            soft = int(used.ru_utime + used.ru_stime + cpu_limit) + 1
            hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
            resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        capture()
        started = time.perf_counter()
        response: dict = {"id": request["id"]}
        fatal = False
        try:
            result = handler(request["event"], Context(request["context"]))
            if inspect.isawaitable(result):
                result = loop.run_until_complete(result)
            response.update(ok=True, result=result)
        except MemoryError as exc:
            fatal = True
            response.update(ok=False, error=_error(exc), memory=True)
        except BaseException as exc:  # handler failures are data
            fatal = isinstance(exc, (SystemExit, KeyboardInterrupt))
            response.update(ok=False, error=_error(exc))
        response["duration_ms"] = (time.perf_counter() - started) * 1000
        try:
            leftover = _tasks_left(loop)
            loop = _fresh_loop(loop)
        except BaseException:  # a task that fails while being cancelled: the loop is unreliable
            leftover = True
        response["stdout"], response["stderr"] = collected()
        response["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.chdir(base)
        _kill_leftovers(own_uid)
        # a thread cannot be killed: a worker with one left over is not reused
        if leftover or _threads_left(baseline_threads):
            fatal = response["retired"] = True
        response["fatal"] = fatal
        try:
            send(response)
        except MemoryError:
            proto_out.write(
                json.dumps(
                    {
                        "id": request["id"],
                        "ok": False,
                        "memory": True,
                        "fatal": True,
                        "error": {"errorType": "MemoryError", "errorMessage": "out of memory", "trace": []},
                    }
                ).encode()
                + b"\n"
            )
        if fatal:
            os._exit(0)  # leftover threads would keep a normal exit waiting
        # after answering: removing a directory can cost milliseconds on a busy disk
        if not _still_fresh(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir = None
        _empty_dirs(base, KEPT | ({os.path.basename(run_dir)} if run_dir else set()), private)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m aionix.functions.worker SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    if spec["mode"] == "pidns-probe":
        return pidns_probe()
    if spec["mode"] == "wasm":
        # wasmtime's native library loads while every path is still reachable (a single
        # executable's bundle lives under the /tmp that the private mount hides)
        from aionix.functions import wasm_worker
    confine(spec)
    if spec["mode"] == "wasm":
        wasm_worker.serve_wasm(spec)
        return 0
    if spec["mode"] == "seccomp-probe":  # the server's start-up check: is the filter in force?
        libc = _libc()
        import ctypes

        return 0 if libc.unshare(0x10000000) != 0 and ctypes.get_errno() == 1 else 3
    if spec["mode"] == "exec":
        command = spec["command"]
        os.execve(command[0], command, dict(os.environ))
    serve_python(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
