"""Real database and mail servers from Debian's packages, started on free loopback ports in
temp dirs (scripts/system-deps.sh installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from serverproc import free_port


def _as(user: str, argv: list[str]) -> list[str]:
    """Run as `user` when we are root (database servers refuse to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *argv]
    return argv


def _chown(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text() if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s: {log.read_text() if log and log.exists() else ''}")


@dataclass
class Postgres:
    port: int
    user: str = "aionix"
    password: str = "pg-secret-pw"
    database: str = "aionix"
    root: Path = field(default_factory=Path)

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run SQL over the server's unix socket; the unaligned output."""
        argv = [
            pg_bin("psql"),
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database or self.database,
            "-At",
            "-c",
            sql,
        ]
        return subprocess.run(_as("postgres", argv), check=True, capture_output=True, text=True, timeout=60).stdout

    def stop(self) -> None:
        subprocess.run(
            _as("postgres", [pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    return shutil.which(name) or name


def start_postgres(*, fsync: bool = False) -> Postgres:
    """A private PostgreSQL server; `fsync=False` (tests) skips the disk flushes, `fsync=True`
    (benchmarks) is a durable server as shipped."""
    root = Path(tempfile.mkdtemp(prefix="aionix-pg-"))
    _chown(root, "postgres")
    pw = root / "pw"
    pg = Postgres(port=free_port(), root=root)
    pw.write_text(pg.password)
    _chown(pw, "postgres")
    subprocess.run(
        _as(
            "postgres",
            [
                pg_bin("initdb"),
                "-D",
                str(root / "data"),
                "-U",
                pg.user,
                f"--pwfile={pw}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
    subprocess.run(
        _as(
            "postgres",
            [
                pg_bin("pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "log"),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        ),
        check=True,
        capture_output=True,
        timeout=90,
    )
    subprocess.run(
        _as("postgres", [pg_bin("createdb"), "-h", str(root), "-p", str(pg.port), "-U", pg.user, pg.database]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pg


@dataclass
class Redis:
    port: int
    password: str
    proc: subprocess.Popen
    root: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_redis(password: str = "redis-secret-pw") -> Redis:
    root = Path(tempfile.mkdtemp(prefix="aionix-redis-"))
    port = free_port()
    log = root / "log"
    argv = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        password,
        "--dir",
        str(root),
        "--logfile",
        str(log),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, 30, proc, log)
    return Redis(port, password, proc, root)


def self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """aiosmtpd servers on loopback (STARTTLS, implicit TLS, plain) sharing one inbox."""

    cert: Path
    ports: dict[str, int]
    messages: list = field(default_factory=list)
    controllers: list = field(default_factory=list)
    user: str = "mailer"
    password: str = "smtp-secret-pw"

    def stop(self) -> None:
        for c in self.controllers:
            c.stop()


def start_smtp(root: Path) -> Mailbox:
    import ssl
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = self_signed(root)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox(cert=cert, ports={})

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "message": message_from_bytes(envelope.content, policy=policy.default),
                }
            )
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("reject"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == box.user and auth_data.password.decode() == box.password
        return AuthResult(success=ok, handled=False)

    common = {"hostname": "127.0.0.1", "authenticator": authenticator, "auth_exclude_mechanism": ["LOGIN"]}
    variants = {
        "starttls": Controller(
            Handler(), port=free_port(), tls_context=ctx, require_starttls=True, auth_require_tls=True, **common
        ),
        "tls": Controller(Handler(), port=free_port(), ssl_context=ctx, auth_require_tls=False, **common),
        "plain": Controller(Handler(), port=free_port(), auth_require_tls=False, **common),
    }
    for security, controller in variants.items():
        controller.start()
        box.controllers.append(controller)
        box.ports[security] = controller.port
    return box


@dataclass
class MariaDB:
    port: int
    proc: subprocess.Popen
    root: Path
    user: str = "aionix"
    password: str = "maria-secret-pw"
    database: str = "aionix"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_mariadb() -> MariaDB:
    root = Path(tempfile.mkdtemp(prefix="aionix-maria-"))
    data = root / "data"
    user = "mysql" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    _chown(root, "mysql")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db") or "mariadb-install-db"
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            f"--user={user}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = free_port()
    sock = root / "mysqld.sock"
    daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    argv = [
        daemon,
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={sock}",
        f"--user={user}",
        f"--pid-file={root / 'mysqld.pid'}",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=8M",
        "--skip-name-resolve",
        f"--log-error={root / 'error.log'}",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = MariaDB(port, proc, root)
    _wait_port(port, 60, proc, root / "error.log")
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    sql = f"CREATE DATABASE {db.database}; CREATE USER '{db.user}'@'%' IDENTIFIED BY '{db.password}'; GRANT ALL ON {db.database}.* TO '{db.user}'@'%'; FLUSH PRIVILEGES;"
    subprocess.run(
        [client, "--no-defaults", "-uroot", f"--socket={sock}", "-e", sql], check=True, capture_output=True, timeout=60
    )
    return db


@dataclass
class S3Server:
    url: str
    proc: subprocess.Popen
    access_key: str
    secret_key: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_s3() -> S3Server:
    """moto's server mode with authentication on: an IAM user with an access key and an S3
    policy is created by the first three (unauthenticated) calls; every later call must carry a
    valid SigV4 signature of that key."""
    import re
    import sys

    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3", "AWS_DEFAULT_REGION": "us-east-1"}
    moto = Path(sys.executable).with_name("moto_server")
    argv = [str(moto)] if moto.exists() else [sys.executable, "-m", "moto.server"]
    # port 0: the server binds a free port itself and names it (`Running on http://127.0.0.1:N`)
    # in its log, so no other program can take the port between a probe and the bind
    log = Path(tempfile.mkdtemp(prefix="aionix-moto-")) / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*argv, "-H", "127.0.0.1", "-p", "0"], stdout=subprocess.DEVNULL, stderr=out, env=env)
    deadline = time.monotonic() + 60
    while (found := re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"moto_server did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    port = int(found.group(1))
    _wait_port(port, 60, proc)
    url = f"http://127.0.0.1:{port}"
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="aionix")
    key = iam.create_access_key(UserName="aionix")["AccessKey"]
    policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    iam.put_user_policy(UserName="aionix", PolicyName="s3", PolicyDocument=policy)
    return S3Server(url, proc, key["AccessKeyId"], key["SecretAccessKey"])
