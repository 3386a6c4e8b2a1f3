"""The one entry point's dispatch, from source (no build needed): the name `aio` and the `aio`
subcommand run the CLI, `--version` names the commit and the runtimes, `--worker` and
`--netns-probe` are answered before the server's imports, and the frozen-only helpers do
nothing outside the binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aionix import frozen

REPO = Path(__file__).resolve().parents[2]


def run_entry(argv0: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `aionix.server.main()` with `sys.argv[0]` set to `argv0`."""
    code = f"import sys; sys.argv[0] = {argv0!r}; from aionix.server import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)


def test_the_name_aio_runs_the_cli() -> None:
    for argv0 in ("/usr/local/bin/aio", "aio"):
        result = run_entry(argv0, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: aio" in result.stdout


def test_the_aio_subcommand_runs_the_cli_and_other_names_serve() -> None:
    result = run_entry("/opt/aionix", "aio", "--help")
    assert result.returncode == 0 and "Usage: aio" in result.stdout
    # `aionix --help` is the server's own help, not the CLI's
    result = run_entry("/opt/aionix", "--help")
    assert result.returncode == 0 and "--data-dir" in result.stdout and "Usage: aio" not in result.stdout
    # a bad server flag is a usage error naming the flag
    result = run_entry("/opt/aionix", "--no-such-flag")
    assert result.returncode == 2 and "--no-such-flag" in result.stderr


def test_version_names_commit_and_runtimes_from_source() -> None:
    result = run_entry("aionix", "--version")
    assert result.returncode == 0, result.stderr
    head = result.stdout.splitlines()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if commit:
        assert f"commit {commit}" in head
    assert "from source" in head
    for name in ("python functions", "deno", "wasm", "cgroups", "network namespace"):
        assert f"  {name}: " in result.stdout


def test_worker_flag_is_dispatched_before_the_server_parser() -> None:
    # without a spec the worker prints its own usage (exit 2), not the server's argparse error
    result = run_entry("aionix", "--worker")
    assert result.returncode == 2
    assert "SPEC_JSON" in result.stderr and "--data-dir" not in result.stderr


def test_worker_does_not_import_the_server_stack() -> None:
    code = (
        "import sys; sys.argv[0] = 'aionix'\n"
        "from aionix import server\n"
        "import aionix.functions.worker as w\n"
        "w.main = lambda argv: print(sorted(m for m in ('uvicorn', 'starlette', 'pydantic', 'httpx') if m in sys.modules)) or 0\n"
        "sys.argv[1:] = ['--worker', '{}']\n"
        "sys.exit(server.main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().replace("'", '"')) == []


def test_netns_probe_answers_with_an_exit_status() -> None:
    result = run_entry("aionix", "--netns-probe")
    expected = 0 if os.geteuid() == 0 else 1
    if os.geteuid() == 0:
        # root may still lack CAP_SYS_ADMIN in a container: the probe must agree with unshare(1)
        unshare = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        expected = 0 if unshare.returncode == 0 else 1
    assert result.returncode == expected


def test_frozen_helpers_do_nothing_outside_the_binary(monkeypatch) -> None:
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", "/tmp/_MEIxyz")
    assert not frozen.is_frozen()
    assert frozen.bundle_dir() is None
    assert frozen.worker_env() == {}
    frozen.share_bundle()
    frozen.keep_archive_open()
    before = list(sys.meta_path)
    frozen.bundle_moved("/proc/self/fd/99")  # no bundle importer here: nothing changes
    assert sys.meta_path == before and not hasattr(sys, "_MEIPASS")


def test_git_commit_is_read_without_git(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert frozen._git_commit(tmp_path) == "0123456789ab"
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text("# pack-refs\nfedcba9876543210fedcba9876543210fedcba98 refs/heads/main\n")
    assert frozen._git_commit(tmp_path) == "fedcba987654"
    assert frozen._git_commit(tmp_path / "nowhere") is None


def test_print_config_prints_the_documented_defaults() -> None:
    import tomllib

    result = run_entry("aionix", "--print-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "config.toml").read_text(encoding="utf-8")
    assert tomllib.loads(result.stdout)["server"]["port"] == 53000
