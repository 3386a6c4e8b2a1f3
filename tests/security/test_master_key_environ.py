"""Issue 15, finding 8: the master key given in `AIONIX_MASTER_KEY` must not be readable from
`/proc/<server pid>/environ` (removing it from `os.environ` does not change the initial
environment block), and the first admin key is never written to a file others can read."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serverproc import wait_for_port_file


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


@pytest.mark.parametrize("variable", ["AIONIX_MASTER_KEY", "AIONIX_MASTER_PASSPHRASE"])
def test_master_key_is_not_in_the_serving_process_environ(make_server, variable):
    secret = (
        base64.b64encode(os.urandom(32)).decode()
        if variable == "AIONIX_MASTER_KEY"
        else "passphrase-" + os.urandom(8).hex()
    )
    srv = make_server(env={variable: secret}).start()
    pid = srv.proc.pid  # the re-exec keeps the pid: this is the process that serves
    environ = _environ(pid)
    assert secret.encode() not in environ
    assert f"{variable}=".encode() not in environ
    assert b"aionix" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert httpx.get(srv.url + "/healthz").json()["vault"]["master_key_source"] == (
        "env" if variable == "AIONIX_MASTER_KEY" else "passphrase"
    )
    with srv.client() as c:
        assert (
            c.post("/api/v1/secrets", json={"name": "db", "type": "password", "value": "s3cret-v"}).status_code == 201
        )
        assert c.post("/api/v1/secrets/db/reveal").json()["value"] == "s3cret-v"
    assert not (srv.data_dir / "master.key").exists()  # the key came from the variable, not a file
    srv.stop()
    srv.start()  # the same key, passed the same way, still opens the vault
    assert secret.encode() not in _environ(srv.proc.pid)
    with srv.client() as c:
        assert c.post("/api/v1/secrets/db/reveal").json()["value"] == "s3cret-v"


def test_a_wrong_master_key_still_fails_clearly_after_the_re_exec(make_server):
    key = base64.b64encode(os.urandom(32)).decode()
    srv = make_server(env={"AIONIX_MASTER_KEY": key}).start()
    srv.stop()
    srv.extra_env["AIONIX_MASTER_KEY"] = "not base64!"
    with pytest.raises(RuntimeError) as failed:
        srv.start()
    assert "AIONIX_MASTER_KEY is not valid base64" in str(failed.value)
    assert "not base64!" not in str(failed.value)


def test_first_admin_key_files_are_0600_even_with_umask_000(tmp_path):
    """The credentials profile (and its directory) are private whatever the umask; the key is not
    printed into a log that is not a terminal."""
    creds = tmp_path / "home" / ".config" / "aionix" / "credentials"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(creds)
    port_file = tmp_path / "port"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aionix",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=lambda: os.umask(0),
        )
    try:
        port = wait_for_port_file(port_file, proc, 60, log_path.read_text)
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
        key = creds.read_text().split('api_key = "')[1].split('"')[0]
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )
        assert key not in log_path.read_text()
        assert not list(creds.parent.glob("*.tmp"))
    finally:
        proc.terminate()
        proc.wait(30)


def test_without_a_writable_profile_the_key_goes_to_a_private_file_in_the_data_dir(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(blocker / "credentials")
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aionix",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        preexec_fn=lambda: os.umask(0),
    )
    try:
        port = wait_for_port_file(port_file, proc, 60, lambda: "")
        key_file = tmp_path / "data" / "initial-admin-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert (
            httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )
        assert proc.stdout.readline().decode() == f"http://127.0.0.1:{port}\n"
        assert str(key_file) in proc.stdout.readline().decode()
    finally:
        proc.terminate()
        proc.wait(30)
