"""The container: `Dockerfile` (debian:bookworm-slim, the single executable, a non-root user, a
/data volume, a HEALTHCHECK on /healthz) and `deploy/compose.yaml` (one node with a volume).

Where podman (Debian's package) can run containers here, the image is built and run: healthy by
its own HEALTHCHECK, serving on the published port as the non-root user, its data on the volume
surviving a new container. Where it cannot, the test says why and runs the image's entrypoint the
way the container would instead: the same command and environment, as the same non-root uid, on
a private /data-like directory, probed by the Dockerfile's own HEALTHCHECK command."""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from pathlib import Path

import httpx
import yaml
from serverproc import free_port

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "tests" / "binary"))
from binproc import build_and_install  # noqa: E402

BASE = "docker.io/library/debian:bookworm-slim"


def dockerfile() -> dict[str, list[str]]:
    """Instructions of the Dockerfile: {INSTRUCTION: [argument text, ...]} (continuations joined)."""
    out: dict[str, list[str]] = {}
    logical = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        word, _, rest = logical.strip().partition(" ")
        out.setdefault(word.upper(), []).append(rest.strip())
        logical = ""
    return out


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def healthcheck_command() -> list[str]:
    [spec] = dockerfile()["HEALTHCHECK"]
    return exec_form(spec[spec.index("CMD") + 3 :].strip())


def test_dockerfile_and_compose_describe_one_slim_non_root_node_with_a_volume() -> None:
    d = dockerfile()
    assert d["FROM"] == ["debian:bookworm-slim"]
    assert d["COPY"] == ["dist/aionix /usr/local/bin/aionix"]
    [user] = d["USER"]
    assert user not in ("root", "0") and 'useradd --system --uid "${AIONIX_UID}"' in " ".join(d["RUN"])
    assert exec_form(d["VOLUME"][0]) == ["/data"]
    assert exec_form(d["ENTRYPOINT"][0]) == ["/usr/local/bin/aionix"]
    cmd = exec_form(d["CMD"][0])
    assert cmd[cmd.index("--data-dir") + 1] == "/data" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert "/healthz" in " ".join(healthcheck_command()) and d["EXPOSE"] == ["53000"]
    # the build context is the executable alone
    ignore = [x for x in (ROOT / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert ignore == ["*", "!dist/aionix"]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    [service] = compose["services"].values()
    assert (ROOT / "deploy" / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
        ROOT / "Dockerfile"
    )
    [volume] = service["volumes"]
    source, target = volume.split(":")
    assert target == "/data" and source in compose["volumes"]
    assert service["ports"] == ["127.0.0.1:53000:53000"]
    assert "chmod 0700 /data" in " ".join(d["RUN"])


# ---------------------------------------------------------------------- podman
def _podman_flags() -> list[str]:
    """Ulimits within the hard limits a sandbox may set (podman's defaults exceed them and the
    runtime's setrlimit fails)."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    flags = [f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}"]
    return flags


def container_runtime() -> tuple[list[str] | None, str]:
    """(the podman command line to use, "") or (None, why no container can run here). crun
    refuses hosts with hybrid cgroups; runc (also Debian's) runs there."""
    podman = shutil.which("podman")
    if podman is None:
        return None, "podman is not installed (scripts/system-deps.sh installs it)"
    made = subprocess.run([str(ROOT / "scripts" / "container-base.sh")], capture_output=True, text=True, timeout=1200)
    if made.returncode != 0:
        return None, f"no {BASE} base image could be pulled or built: {made.stderr[-1500:]}"
    reasons = []
    for runtime in ([], ["--runtime", "runc"]):
        if runtime and shutil.which("runc") is None:
            continue
        cmd = [podman, *runtime]
        probe = subprocess.run(
            [*cmd, "run", "--rm", *_podman_flags(), BASE, "true"], capture_output=True, text=True, timeout=120
        )
        if probe.returncode == 0:
            return cmd, ""
        reasons.append(f"{' '.join(cmd)}: {probe.stderr.strip()[-500:]}")
    return None, "podman cannot start a container here: " + " | ".join(reasons)


def run_as_in_the_container(tmp_path: Path) -> None:
    """The image's ENTRYPOINT + CMD, environment, user and /data, without a container runtime:
    the same binary as the same non-root uid on a private 0700 data dir; the Dockerfile's
    HEALTHCHECK command says healthy while it serves and unhealthy once it is gone."""
    d = dockerfile()
    uid = 10001 if os.geteuid() == 0 else os.geteuid()
    # outside pytest's 0700 tmp tree: the unprivileged uid must reach the binary and its data
    root = Path(tempfile.mkdtemp(prefix="aionix-image-"))
    root.chmod(0o755)
    try:
        _serve_as_in_the_container(d, uid, root, tmp_path)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve_as_in_the_container(d: dict[str, list[str]], uid: int, root: Path, tmp_path: Path) -> None:
    binary = build_and_install(root / "usr-local-bin")
    data = root / "data"
    data.mkdir(mode=0o700)
    os.chown(data, uid, uid)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    port = free_port()
    env = {"HOME": str(data), "PATH": "/usr/bin:/bin"}
    for spec in d["ENV"]:
        key, _, value = spec.partition("=")
        # the image's paths, here under `root` (removed afterwards): /data, the unpacking cache in /tmp
        env[key] = f"{root}{value}" if value.startswith("/tmp/") else value.replace("/data", str(data))
    argv = [str(binary), *exec_form(d["CMD"][0])]
    argv = [
        str(data) if a == "/data" else str(port) if a == "53000" else "127.0.0.1" if a == "0.0.0.0" else a for a in argv
    ]
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if os.geteuid() == 0 else []
    probe = [a.replace("/53000", f"/{port}") for a in healthcheck_command()]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*drop, *argv], cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            if subprocess.run([*drop, *probe], capture_output=True, timeout=10).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the HEALTHCHECK never passed:\n" + (tmp_path / "server.log").read_text())
        # the executable unpacked itself into the image's cache (XDG_CACHE_HOME) and runs from there
        assert Path(f"/proc/{proc.pid}/exe").resolve().is_relative_to(root / "tmp" / "aionix-cache")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert f"Uid:\t{uid}\t{uid}" in status
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        # the data and the first admin key's profile are on the volume, the server's alone
        assert (data / "aionix.db").stat().st_uid == uid and (data / "master.key").stat().st_mode & 0o077 == 0
        profile = tomllib.loads((data / "credentials").read_text())
        assert profile["default"]["api_key"].startswith("aio_")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert subprocess.run([*drop, *probe], capture_output=True, timeout=10).returncode != 0


def test_entrypoint_and_healthcheck_as_the_container_runs_them(tmp_path: Path) -> None:
    run_as_in_the_container(tmp_path)


def test_image_builds_and_runs_with_podman(tmp_path: Path) -> None:
    podman, why = container_runtime()
    if podman is None:
        print(f"no container runtime works here ({why}); checking the image's entrypoint without one")
        run_as_in_the_container(tmp_path)
        return
    build_and_install(tmp_path / "bin")  # dist/aionix is current
    tag = f"localhost/aionix-test:{uuid.uuid4().hex[:8]}"
    name, volume = f"aionix-test-{uuid.uuid4().hex[:8]}", f"aionix-test-data-{uuid.uuid4().hex[:8]}"
    flags = _podman_flags()

    def pm(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*podman, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"podman {shlex.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    pm("build", "--format", "docker", "--pull=never", *flags, "-t", tag, ".", timeout=900)
    try:
        image = json.loads(pm("image", "inspect", tag).stdout)[0]
        assert image["Config"]["User"] == "aionix" and "/data" in image["Config"]["Volumes"]
        assert "/healthz" in " ".join(image["Healthcheck"]["Test"])
        port = free_port()

        def start() -> None:
            pm("run", "-d", "--name", name, *flags, "-p", f"127.0.0.1:{port}:53000", "-v", f"{volume}:/data", tag)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                # podman runs the HEALTHCHECK from a systemd timer where there is one: ask it now
                if pm("healthcheck", "run", name, check=False).returncode == 0:
                    return
                time.sleep(0.5)
            raise AssertionError("never healthy:\n" + pm("logs", name, check=False).stdout[-4000:])

        start()
        assert pm("inspect", name, "--format", "{{.State.Health.Status}}").stdout.strip() == "healthy"
        assert pm("exec", name, "id", "-u").stdout.strip() == "10001"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        key = tomllib.loads(pm("exec", name, "cat", "/data/credentials").stdout)["default"]["api_key"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.put("/api/v1/params/kept", json={"value": "on the volume"}).status_code in (200, 201)
        # a new container on the same volume has the same data and key
        pm("rm", "-f", "-t", "20", name, timeout=60)
        start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get("/api/v1/params/kept").json()["value"] == "on the volume"
        pm("stop", "-t", "20", name, timeout=60)
        logs = pm("logs", name).stdout + pm("logs", name).stderr
        assert "listening on http://0.0.0.0:53000" in logs
    finally:
        pm("rm", "-f", "-t", "5", name, timeout=60, check=False)
        pm("volume", "rm", "-f", volume, timeout=60, check=False)
        pm("rmi", "-f", tag, timeout=60, check=False)
