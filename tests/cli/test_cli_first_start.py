"""Issue 25 part 2: a failed first start must not break the CLI. The server binds its port before
it writes anything for the user, writes the CLI profile only once serving, never overwrites a
profile of another live server, and `aio login` / `aio profile` repair profiles."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx
import pytest
from serverproc import wait_for_port_file

from aionix.cli.main import run
from aionix.credentials import current_profile, load_profiles


@pytest.fixture
def aio(monkeypatch, capsys):
    for name in ("AIONIX_URL", "AIONIX_API_KEY", "AIONIX_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    def invoke(credentials, *args):
        monkeypatch.setenv("AIONIX_SECURITY_CREDENTIALS_FILE", str(credentials))
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def _whoami(url: str, key: str) -> dict:
    r = httpx.get(url + "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_busy_port_writes_nothing_then_a_start_on_port_0_keeps_the_live_profile(make_server, tmp_path, aio):
    live = make_server().start()  # the user's server; its first start wrote profile 'default'
    creds = live.credentials
    before = creds.read_bytes()
    env = live.env()
    new = tmp_path / "new"

    busy = subprocess.run(
        [sys.executable, "-m", "aionix", "--port", str(live.port), "--data-dir", str(new / "data"),
         "--port-file", str(tmp_path / "busy.port")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert busy.returncode == 2, busy.stderr
    assert busy.stderr.strip() == f"aionix: cannot listen on 127.0.0.1:{live.port}: Address already in use"
    assert busy.stdout == ""  # no key shown, no URL
    assert not new.exists() and not (tmp_path / "busy.port").exists()  # no data dir, database, key or port file
    assert creds.read_bytes() == before  # the profile is untouched and still works
    code, out, _ = aio(creds, "whoami", "-o", "json")
    assert code == 0 and json.loads(out)["key_id"] == _whoami(live.url, live.admin_key)["key_id"]

    new.mkdir()
    with open(new / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aionix", "--port", "0", "--data-dir", str(new / "data"),
             "--port-file", str(new / "port")],
            stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        port = wait_for_port_file(new / "port", proc, 60, (new / "server.log").read_text)
        url = f"http://127.0.0.1:{port}"
        assert port != live.port
        lines = [proc.stdout.readline().decode().rstrip("\n") for _ in range(3)]
        assert lines[0] == url  # the first line on standard output
        assert lines[1] == f"Aionix: saved the first admin key as profile 'default-2' in {creds} " + (
            "(not printed: standard output is not a terminal)"
        )
        assert f"profile 'default' points at a live server ({live.url})" in lines[2]
        assert "aio profile use default-2" in lines[2]
        profiles = load_profiles(creds)
        assert profiles["default"] == {"url": live.url, "api_key": live.admin_key}
        assert profiles["default-2"]["url"] == url
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        new_key = profiles["default-2"]["api_key"]
        assert _whoami(url, new_key)["role"] == "admin"

        code, out, _ = aio(creds, "--profile", "default-2", "whoami", "-o", "json")
        assert code == 0 and json.loads(out)["key_id"] == _whoami(url, new_key)["key_id"]
        code, out, _ = aio(creds, "profile", "use", "default-2")
        assert code == 0 and url in out
        code, out, _ = aio(creds, "status", "-o", "json")
        assert code == 0 and json.loads(out)["url"] == url
        code, out, _ = aio(creds, "profile", "list", "-o", "json")
        listed = json.loads(out)
        assert listed["current"] == "default-2"
        assert [(p["name"], p["url"], p["current"]) for p in listed["items"]] == [
            ("default", live.url, ""),
            ("default-2", url, "*"),
        ]
        assert all(new_key not in p["key"] and live.admin_key not in p["key"] for p in listed["items"])
        code, out, _ = aio(creds, "profile", "list")
        assert code == 0 and "default-2" in out and new_key not in out
    finally:
        proc.terminate()
        proc.wait(30)
    # a second start on the same data dir makes no key and leaves the profiles alone
    before = creds.read_bytes()
    again = subprocess.Popen(
        [sys.executable, "-m", "aionix", "--port", "0", "--data-dir", str(new / "data"),
         "--port-file", str(new / "port2")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        port = wait_for_port_file(new / "port2", again, 60, lambda: "")
        assert again.stdout.readline().decode() == f"http://127.0.0.1:{port}\n"
        assert creds.read_bytes() == before
    finally:
        again.terminate()
        again.wait(30)
    assert again.stdout.read().decode() == ""  # nothing else on standard output


def test_a_profile_for_the_same_address_is_replaced(make_server):
    srv = make_server().start()
    first = srv.admin_key
    srv.stop()
    for path in srv.data_dir.iterdir():  # a fresh data dir, started on the same address
        if path.is_file():
            path.unlink()
    srv.admin_key = None
    srv.start()
    assert srv.admin_key != first
    assert list(load_profiles(srv.credentials)) == ["default"]
    assert _whoami(srv.url, srv.admin_key)["role"] == "admin"


def test_login_checks_the_key_and_profiles_can_be_used_and_removed(server, admin, tmp_path, aio):
    creds = tmp_path / "cfg" / "credentials"
    code, _, err = aio(creds, "login", "--url", server.url, "--api-key", "aio_not-a-key")
    assert code == 3 and "401" in err
    assert not creds.exists()  # a failed login writes nothing
    code, _, err = aio(creds, "login", "--url", server.url)
    assert code == 2 and "--api-key" in err

    code, out, _ = aio(creds, "login", "--url", server.url + "/", "--api-key", server.admin_key)
    assert code == 0 and "saved profile 'default' (current)" in out and "as admin of tenant default" in out
    assert load_profiles(creds)["default"] == {"url": server.url, "api_key": server.admin_key}
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600

    viewer = admin.post("/api/v1/keys", json={"name": "login-viewer", "role": "viewer"}).json()
    code, out, _ = aio(creds, "login", "--url", server.url, "--api-key", viewer["key"], "--name", "ro")
    assert code == 0 and current_profile(creds) == "ro"
    code, out, _ = aio(creds, "whoami", "-o", "json")
    assert code == 0 and json.loads(out)["key_id"] == viewer["id"]
    code, out, _ = aio(creds, "profile", "use", "default")
    assert code == 0
    code, out, _ = aio(creds, "whoami", "-o", "json")
    assert json.loads(out)["role"] == "admin"
    code, _, err = aio(creds, "profile", "use", "missing")
    assert code == 4 and "no profile 'missing'" in err
    code, out, _ = aio(creds, "profile", "use", "ro")
    code, out, _ = aio(creds, "profile", "remove", "ro")
    assert code == 0 and "the current profile is 'default'" in out
    assert list(load_profiles(creds)) == ["default"] and current_profile(creds) == "default"
    code, _, err = aio(creds, "profile", "remove", "ro")
    assert code == 4
    code, out, _ = aio(creds, "-q", "login", "--url", server.url, "--api-key", viewer["key"], "--no-use", "--name", "v")
    assert code == 0 and out == "v\n" and current_profile(creds) == "default"
    assert os.path.exists(creds) and not list(creds.parent.glob("*.tmp"))


def test_a_port_file_that_cannot_be_written_is_refused_before_anything_is_created(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIONIX_")}
    env["AIONIX_SECURITY_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    result = subprocess.run(
        [sys.executable, "-m", "aionix", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--port-file", str(tmp_path / "missing" / "port")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"aionix: --port-file: the directory {tmp_path / 'missing'} does not exist or is not writable"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
