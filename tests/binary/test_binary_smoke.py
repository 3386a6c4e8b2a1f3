"""The single executable as an air-gapped user runs it: `make binary` (cached on its inputs'
hash), the one file copied into an empty directory and run under `env -i` — no PATH, no
virtualenv. It serves the API and the Studio, is the CLI (as `aionix aio` and under the name
`aio`), runs a Python function in its own worker mode, and keeps its data and a running
execution across a SIGTERM and a restart."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from binproc import REPO, BinaryServer, build_and_install, install, run_bare

# the first run builds the binary (a few minutes on 2 cores); later runs reuse it
pytestmark = pytest.mark.timeout(1800)

FUNCTION = """\
import decimal
import hashlib


def handler(event, context):
    total = decimal.Decimal(str(event["x"])) * decimal.Decimal(str(event["factor"]))
    return {
        "token_sha256": hashlib.sha256(event["token"].encode()).hexdigest(),
        "total": str(total),
        "key": context.idempotency_key,
    }
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("offline-machine")
    build_and_install(home)
    assert sorted(p.name for p in home.iterdir()) == ["aio", "aionix"]
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[BinaryServer]:
    srv = BinaryServer(home)
    srv.start()
    yield srv
    srv.kill()


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_version_names_commit_and_the_runtimes_available(home: Path) -> None:
    result = run_bare(home, "aionix", "--version")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(r"aionix \S+ \(commit [0-9a-f]{7,40}(-dirty)?, single executable, Python 3\.\d+\.\d+\)", first)
    fields = dict(line.strip().split(": ", 1) for line in rest)
    assert fields["python functions"].startswith("yes")
    assert fields["wasm"].startswith("yes")
    # Deno is external: found or not, it is reported and not fatal
    assert fields["deno"].split()[0] in ("yes", "no")
    assert "cgroups" in fields and "network namespace" in fields


def test_the_documented_default_config_is_inside(home: Path) -> None:
    import tomllib

    result = run_bare(home, "aionix", "--print-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "config.toml").read_text(encoding="utf-8")
    assert tomllib.loads(result.stdout)["server"]["host"] == "127.0.0.1"


def test_cli_by_subcommand_and_by_its_own_name(home: Path) -> None:
    for args in (("aionix", "aio", "--help"), ("aio", "--help")):
        result = run_bare(home, *args)
        assert result.returncode == 0, result.stderr
        assert "Usage: aio" in result.stdout
        for group in ("wf", "fn", "sec", "param"):
            assert group in result.stdout
    bad = run_bare(home, "aio", "no-such-command")
    assert bad.returncode == 2


def test_serves_health_with_migrations_applied_and_data_in_cwd(server: BinaryServer) -> None:
    with server.client() as c:

        def probed() -> dict | None:
            # the functions service probes the host's confinement beside the start
            health = c.get("/healthz").json()
            return health if "python" in health.get("confinement", {}) else None

        health = wait_for(probed, 120, "the confinement probe")
    assert health["status"] == "ok" and health["store"] == "ok"
    assert health["confinement"]["python"]["available"] is True
    assert health["confinement"]["wasm"]["available"] is True
    assert (server.home / "data").is_dir()
    assert "applying migration 0001_core" in server.log()


def test_serves_the_studio_and_its_assets(server: BinaryServer) -> None:
    with server.client() as c:
        index = c.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert "Content-Security-Policy" in index.headers
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.text)
        assert assets, index.text[:500]
        for asset in assets:
            r = c.get(asset)
            assert r.status_code == 200, asset
            assert len(r.content) > 100
            assert "immutable" in r.headers["cache-control"]
        assert c.get("/assets/no-such-file.js").status_code == 404


def test_aio_talks_to_the_binary_server(home: Path, server: BinaryServer) -> None:
    result = run_bare(home, "aio", "--url", server.url, "status", "-o", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "ok" and status["role"] == "admin"


def test_wasm_functions_run_in_the_bundled_wasmtime(server: BinaryServer) -> None:
    wat = (REPO / "examples" / "functions" / "wasm-echo" / "echo.wat").read_text()
    name = f"echo-{uuid.uuid4().hex[:8]}"
    with server.client() as c:
        r = c.post("/api/v1/functions", json={"name": name, "runtime": "wasm", "code": {"source": wat}})
        assert r.status_code == 201, r.text
        record = c.post(f"/api/v1/functions/{name}/invoke", json={"hello": [1, 2, 3]}).json()
    assert record["status"] == "SUCCEEDED", record
    assert record["result"] == {"echo": {"hello": [1, 2, 3]}}


def test_deno_is_external_and_used_when_configured(home: Path, tmp_path: Path) -> None:
    import deno  # the `deno` extra ships the binary; the single executable does not

    other = tmp_path / "with-deno"
    install(home / "aionix", other)
    srv = BinaryServer(other, extra_env={"AIONIX_FUNCTIONS_DENO_PATH": deno.find_deno_bin()})
    srv.start()
    try:
        source = (REPO / "examples" / "functions" / "deno-hello" / "main.ts").read_text()
        with srv.client() as c:
            r = c.post(
                "/api/v1/functions",
                json={
                    "name": "hello",
                    "runtime": "deno",
                    "handler": "main.ts",
                    "code": {"source": source, "filename": "main.ts"},
                },
            )
            assert r.status_code == 201, r.text
            record = c.post("/api/v1/functions/hello/invoke", json={"name": "Ada", "message": "hi"}).json()
        assert record["status"] == "SUCCEEDED", record
        assert record["result"]["shout"] == "HI"
    finally:
        assert srv.stop() == 0, srv.log()[-3000:]


def test_secret_param_function_workflow_survive_sigterm_and_restart(home: Path, server: BinaryServer) -> None:
    tag = uuid.uuid4().hex[:8]
    secret_name, param_path, fn_name, wf_name = f"token-{tag}", f"smoke/{tag}/factor", f"calc-{tag}", f"flow-{tag}"
    canary = f"CANARY-{uuid.uuid4().hex}"
    with server.client() as c:
        r = c.post("/api/v1/secrets", json={"name": secret_name, "type": "password", "value": canary})
        assert r.status_code == 201, r.text
        r = c.put(f"/api/v1/params/{param_path}", json={"type": "number", "value": 3})
        assert r.status_code in (200, 201), r.text
        r = c.post(
            "/api/v1/functions",
            json={
                "name": fn_name,
                "runtime": "python",
                "handler": "main.handler",
                "code": {"source": FUNCTION, "filename": "main.py"},
            },
        )
        assert r.status_code == 201, r.text
        definition = {
            "entry": "Calc",
            "states": {
                "Calc": {
                    "type": "task",
                    "action": f"trn:aionixfn:default:function/{fn_name}",
                    "parameters": {
                        "token": "{% $secret.`" + secret_name + "` %}",
                        "factor": "{% $param('/" + param_path + "') %}",
                        "x": "{% input.x %}",
                    },
                    "next": "Pause",
                },
                "Pause": {"type": "wait", "seconds": 0, "next": "Done"},
                "Done": {"type": "succeed"},
            },
        }
        r = c.post("/api/v1/workflows", json={"name": wf_name, "definition": definition})
        assert r.status_code == 201, r.text
        # a second version whose wait is long enough to be interrupted by the restart
        definition["states"]["Pause"]["seconds"] = 4
        r = c.put(f"/api/v1/workflows/{wf_name}", json={"definition": definition})
        assert r.status_code == 200, r.text

        quick = c.post(
            f"/api/v1/workflows/{wf_name}/executions",
            json={"input": {"x": 14}, "mode": "sync", "version": 1, "wait_seconds": 120},
        ).json()
        assert quick["status"] == "SUCCEEDED", quick
        expected = {"token_sha256": hashlib.sha256(canary.encode()).hexdigest(), "total": "42"}
        assert {k: quick["output"][k] for k in expected} == expected
        assert quick["output"]["key"].startswith(quick["execution_id"] + ":Calc:")

        slow = c.post(f"/api/v1/workflows/{wf_name}/executions", json={"input": {"x": 5}, "mode": "async"}).json()
        assert slow["status"] == "RUNNING", slow

        def pausing() -> bool:
            events = c.get(f"/api/v1/executions/{slow['execution_id']}/history", params={"limit": 100}).json()["items"]
            return any(e["type"] == "StateEntered" and e["state"] == "Pause" for e in events)

        wait_for(pausing, 120, "the slow execution to reach its wait state")
    assert server.stop() == 0, server.log()[-3000:]

    server.start()
    with server.client() as c:
        assert c.get(f"/api/v1/secrets/{secret_name}").status_code == 200
        assert c.get(f"/api/v1/params/{param_path}").json()["value"] == 3
        assert c.get(f"/api/v1/functions/{fn_name}").json()["runtime"] == "python"
        kept = c.get(f"/api/v1/executions/{quick['execution_id']}").json()
        assert kept["status"] == "SUCCEEDED" and kept["output"] == quick["output"]

        def finished() -> dict | None:
            env = c.get(f"/api/v1/executions/{slow['execution_id']}").json()
            return env if env["status"] != "RUNNING" else None

        resumed = wait_for(finished, 120, "the interrupted execution to finish after the restart")
        assert resumed["status"] == "SUCCEEDED", resumed
        assert resumed["output"]["total"] == "15"
        assert resumed["output"]["token_sha256"] == expected["token_sha256"]
    log = server.log()
    assert canary not in log
    raw = b"".join(p.read_bytes() for p in (server.home / "data").glob("aionix.db*"))
    assert canary.encode() not in raw


def test_master_key_is_not_in_the_serving_process_environ(home: Path, tmp_path: Path) -> None:
    """The one file's stub execs the program unpacked in the user's cache (same pid), which
    re-executes itself without `AIONIX_MASTER_KEY` (same pid again): no process keeps the key in
    its environment."""
    import base64
    import os

    install(home / "aionix", tmp_path)
    key = base64.b64encode(os.urandom(32)).decode()
    srv = BinaryServer(tmp_path, extra_env={"AIONIX_MASTER_KEY": key})
    srv.start()
    try:
        assert srv.proc is not None
        serving = srv.proc.pid  # the stub and the server's re-exec replaced the started process
        assert Path(f"/proc/{serving}/exe").resolve().is_relative_to(tmp_path / ".cache" / "aionix")
        assert key.encode() not in Path(f"/proc/{serving}/environ").read_bytes()
        assert f"Started server process [{serving}]" in srv.log()
        with srv.client() as c:
            assert c.get("/healthz").json()["vault"]["master_key_source"] == "env"
            assert c.post("/api/v1/secrets", json={"name": "k", "type": "password", "value": "v-1"}).status_code == 201
            assert c.post("/api/v1/secrets/k/reveal").json()["value"] == "v-1"
        assert not (tmp_path / "data" / "master.key").exists()
    finally:
        srv.kill()
