"""The one file (`make binary`: scripts/onefile-stub.sh + the onedir tarball) unpacks once into
a private per-user cache and execs the program there: a second start unpacks nothing, first
starts side by side are safe, a cache directory that is not the user's alone is not used, and
where no cache is writable it runs from a temporary directory that it removes."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from binproc import build_and_install

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_and_install(tmp_path_factory.mktemp("onefile"))


def payload_line(binary: Path) -> int:
    with open(binary, "rb") as f:
        for line in f:
            if line.startswith(b"PAYLOAD_LINE="):
                return int(line.split(b"=")[1])
    raise AssertionError("no PAYLOAD_LINE in the stub")


def stub_only(binary: Path, into: Path) -> Path:
    """The stub without its payload: it can only start from a cache unpacked before."""
    lines = binary.read_bytes().split(b"\n")[: payload_line(binary) - 1]
    target = into / "aionix"
    target.write_bytes(b"\n".join(lines) + b"\n")
    target.chmod(0o755)
    return target


def version(binary: Path, home: Path, tmpdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"HOME": str(home), "TMPDIR": str(tmpdir), "PATH": "/usr/bin:/bin", **env}
    return subprocess.run([str(binary), "--version"], env=environ, capture_output=True, text=True, timeout=300)


def cache_dirs(home: Path) -> list[Path]:
    root = home / ".cache" / "aionix"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_the_second_start_reuses_the_cache(binary: Path, tmp_path: Path) -> None:
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    first = version(binary, home, tmpdir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("aionix ") and "single executable" in first.stdout
    [cached] = cache_dirs(home)  # <payload hash>, no staging directory left
    assert len(cached.name) == 16 and not cached.name.startswith(".")
    for d in (home / ".cache", home / ".cache" / "aionix", cached):
        assert d.stat().st_mode & 0o777 == 0o700 and d.stat().st_uid == os.geteuid()
    assert os.access(cached / "aionix" / "aionix", os.X_OK)
    inode = cached.stat().st_ino
    # a copy without the payload starts as well: nothing is unpacked again
    again = version(stub_only(binary, tmp_path), home, tmpdir)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout and again.stderr == ""
    assert cache_dirs(home) == [cached] and cached.stat().st_ino == inode
    assert list(tmpdir.iterdir()) == []


def test_first_starts_side_by_side_leave_one_cache(binary: Path, tmp_path: Path) -> None:
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: version(binary, home, tmpdir), range(3)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len({r.stdout for r in results}) == 1
    [cached] = cache_dirs(home)
    assert os.access(cached / "aionix" / "aionix", os.X_OK)
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("tamper", ["group-writable", "world-writable-parent", "symlink", "foreign-owner"])
def test_a_cache_not_the_users_alone_is_not_used(binary: Path, tmp_path: Path, tamper: str) -> None:
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    assert version(binary, home, tmpdir).returncode == 0
    [cached] = cache_dirs(home)
    if tamper == "group-writable":
        cached.chmod(0o770)
    elif tamper == "world-writable-parent":
        cached.parent.chmod(0o777)
    elif tamper == "symlink":
        elsewhere = tmp_path / "elsewhere"
        cached.rename(elsewhere)
        cached.symlink_to(elsewhere)
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        os.chown(cached, 65534, 65534)
    # the stub alone cannot use it: it refuses rather than running that directory's program
    refused = version(stub_only(binary, tmp_path), home, tmpdir)
    assert refused.returncode != 0 and "not using" in refused.stderr
    # the whole file runs from a private temporary directory instead, removed afterwards
    fallback = version(binary, home, tmpdir)
    assert fallback.returncode == 0, fallback.stderr
    assert "not using" in fallback.stderr and "single executable" in fallback.stdout
    assert list(tmpdir.iterdir()) == []


def test_without_a_writable_cache_it_runs_from_a_temporary_directory(binary: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = version(binary, not_a_dir, tmpdir)
    assert result.returncode == 0, result.stderr
    assert "single executable" in result.stdout
    assert list(tmpdir.iterdir()) == []
    # XDG_CACHE_HOME wins over HOME
    cache = tmp_path / "xdg"
    assert version(binary, not_a_dir, tmpdir, XDG_CACHE_HOME=str(cache)).returncode == 0
    assert [p.parent.name for p in (cache / "aionix").iterdir()] == ["aionix"]


def test_the_cli_name_and_exit_status_pass_through(binary: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    aio = binary.parent / "aio"  # the symlink install() made
    for tmp_home in (str(home), str(tmp_path / "no-such" / "file")):
        if tmp_home != str(home):
            (tmp_path / "no-such").write_text("")  # a file: no cache, the temporary fallback
        environ["HOME"] = tmp_home
        ok = subprocess.run([str(aio), "--help"], env=environ, capture_output=True, text=True, timeout=300)
        assert ok.returncode == 0 and "Usage: aio" in ok.stdout, ok.stderr
        bad = subprocess.run([str(aio), "no-such-command"], env=environ, capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2, bad.stderr


def test_a_server_run_from_the_temporary_directory_stops_on_sigterm_and_cleans_up(binary: Path, tmp_path: Path) -> None:
    """Without a cache the stub stays as the program's parent: SIGTERM to it (what a container
    runtime or a service manager sends) reaches the server, which stops cleanly, and the
    temporary directory is removed."""
    import signal
    import time

    import httpx

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmp_path / "file").write_text("")
    port_file = tmp_path / "port"
    environ = {
        "HOME": str(tmp_path / "file"),
        "TMPDIR": str(tmpdir),
        "PATH": "/usr/bin:/bin",
        "AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    command = [str(binary), "--port", "0", "--port-file", str(port_file), "--data-dir", str(tmp_path / "data")]
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not port_file.is_file() or not port_file.read_text().endswith("\n"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        port = int(port_file.read_text())
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        [unpacked] = [p for p in tmpdir.iterdir() if p.name.startswith("aionix.")]
        assert (unpacked / "aionix" / "aionix").is_file()
        proc.send_signal(signal.SIGTERM)  # to the stub, not to the group
        assert proc.wait(60) == 0, (tmp_path / "server.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert "aionix stopped" in (tmp_path / "server.log").read_text()
    # the unpacked program is gone (the functions service's own aionix-fn-* sandbox directory in
    # TMPDIR is its business: removed by the next start when left behind)
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("aionix.")] == []


def test_the_program_keeps_the_callers_umask(binary: Path, tmp_path: Path) -> None:
    """The stub unpacks under umask 077 but hands the caller's umask back to the program: the
    server makes directories its function workers (other uids) must traverse (a Deno binary
    kept reachable in the worker's /tmp/.bin got EACCES under 077)."""
    import time

    home = tmp_path / "home"
    home.mkdir()
    port_file = tmp_path / "port"
    environ = {
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "AIONIX_SECURITY_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    command = [str(binary), "--port", "0", "--port-file", str(port_file), "--data-dir", str(tmp_path / "data")]
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(
            command, env=environ, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(0o022)
        )
    try:
        deadline = time.monotonic() + 120
        while not port_file.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        status = Path(f"/proc/{proc.pid}/status").read_text()  # exec: the stub's pid is the server's
        [umask] = [line.split()[1] for line in status.splitlines() if line.startswith("Umask:")]
        assert umask == "0022", status
        assert os.readlink(f"/proc/{proc.pid}/exe").startswith(str(home / ".cache" / "aionix"))
    finally:
        proc.terminate()
        proc.wait(60)
