"""gRPC `aion.v1.AionTasks` against the real server with a real grpcio client: auth failures,
roles, Submit (wait / not), Stream, StatusById, tenant isolation, bad input, and TLS. Providers
are the local stand-ins of standin.py (no real model runs here)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

grpc = pytest.importorskip("grpc")

from conftest import AiEnv, start_ai  # noqa: E402
from serverproc import free_port  # noqa: E402

from aionix.ai.grpc_pb import tasks_pb2 as pb  # noqa: E402
from aionix.ai.grpc_server import AionTasksStub  # noqa: E402


class GrpcEnv:
    def __init__(self, env: AiEnv, port: int) -> None:
        self.env = env
        self.port = port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = AionTasksStub(self.channel)

    def md(self, key: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {key or self.env.server.admin_key}"),)


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcEnv]:
    port = free_port()
    for env in start_ai(tmp_path_factory, {"AIONIX_AI_GRPC_PORT": str(port)}):
        genv = GrpcEnv(env, port)
        yield genv
        genv.channel.close()


def key(env: AiEnv, name: str, role: str, tenant: str | None = None) -> dict:
    with env.server.client() as c:
        r = c.post("/api/v1/keys", json={"name": name, "role": role, **({"tenant": tenant} if tenant else {})})
        assert r.status_code == 201, r.text
        return r.json()


def test_auth_failures_and_roles(g):
    req = pb.SubmitRequest(intent="api-ok", params={"text": "hi"}, wait=True)
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED and "missing API key" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(req, metadata=(("authorization", "Bearer aio_wrong"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        g.stub.StatusById(pb.StatusRequest(task_id="x"), metadata=(("authorization", "Basic x"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    viewer = key(g.env, "grpc-viewer", "viewer")
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(req, metadata=g.md(viewer["key"]), timeout=30)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED and "operator" in info.value.details()
    # x-api-key works as well
    env = g.stub.Submit(req, metadata=(("x-api-key", g.env.server.admin_key),), timeout=30)
    assert env.status == "OK"


def test_submit_wait_status_and_stream(g):
    env = g.stub.Submit(pb.SubmitRequest(intent="api-ok", params={"text": "hello"}, wait=True), metadata=g.md())
    assert env.status == "OK" and env.schema_version == "1.0" and env.intent == "api-ok"
    assert env.result.struct_value.fields["text"].string_value == "Hello from stand-in"
    assert env.engine.route == "api" and env.engine.provider == "cloud" and env.engine.reason
    assert env.usage.tokens_in == 12 and env.usage.tokens_out == 3 and env.usage.cost_usd > 0
    assert g.env.api.requests[-1]["body"]["messages"][-1]["content"] == "Say: hello"
    same = g.stub.StatusById(pb.StatusRequest(task_id=env.task_id), metadata=g.md())
    assert same.task_id == env.task_id and same.status == "OK"
    # the HTTP API sees the same task
    with g.env.server.client() as c:
        assert c.get(f"/api/v1/tasks/{env.task_id}").json()["status"] == "OK"

    running = g.stub.Submit(pb.SubmitRequest(intent="local-ok", params={"text": "s"}), metadata=g.md())
    assert running.status in ("RUNNING", "OK")
    events = list(g.stub.Stream(pb.StreamRequest(task_id=running.task_id), metadata=g.md(), timeout=60))
    kinds = [e.event for e in events]
    assert kinds.count("token") == 3 and kinds[-1] == "done", kinds
    assert [e.id for e in events] == sorted(e.id for e in events) and events[0].id == 1
    assert "".join(e.data.fields["text"].string_value for e in events if e.event == "token") == "Hello from stand-in"
    assert events[-1].envelope.status == "OK" and events[-1].envelope.task_id == running.task_id
    # resume after an event id, as SSE's Last-Event-ID
    rest = list(g.stub.Stream(pb.StreamRequest(task_id=running.task_id, after=2), metadata=g.md(), timeout=60))
    assert [e.id for e in rest] == [e.id for e in events if e.id > 2]


def test_bad_input_names_the_field(g):
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(pb.SubmitRequest(intent="no-such-intent", params={"text": "x"}), metadata=g.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "intent" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(pb.SubmitRequest(intent="api-ok", params={"text": "x"}, privacy="public"), metadata=g.md())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "privacy" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        g.stub.StatusById(pb.StatusRequest(task_id="nope"), metadata=g.md())
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # a task budget that no candidate fits: refused before any provider call
    calls = len(g.env.api.requests)
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Submit(
            pb.SubmitRequest(intent="premium", params={"text": "x" * 4000}, budget_usd=0.0001), metadata=g.md()
        )
    assert info.value.details().startswith("budget_exceeded")
    assert len(g.env.api.requests) == calls


def test_tenant_isolation(g):
    env = g.stub.Submit(pb.SubmitRequest(intent="api-ok", params={"text": "t"}, wait=True), metadata=g.md())
    other = key(g.env, "grpc-other", "admin", "grpc-other-tenant")
    for call in (
        lambda: g.stub.StatusById(pb.StatusRequest(task_id=env.task_id), metadata=g.md(other["key"])),
        lambda: list(g.stub.Stream(pb.StreamRequest(task_id=env.task_id), metadata=g.md(other["key"]))),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # the other tenant's own task is its own
    mine = g.stub.Submit(
        pb.SubmitRequest(intent="api-ok", params={"text": "u"}, wait=True), metadata=g.md(other["key"])
    )
    with g.env.server.client() as c:
        assert c.get(f"/api/v1/tasks/{mine.task_id}").status_code == 404


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(pkey, hashes.SHA256())
    )
    cert_path, key_path = tmp / "grpc.crt", tmp / "grpc.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls(tmp_path_factory: pytest.TempPathFactory):
    cert, pkey = _self_signed(tmp_path_factory.mktemp("tls"))
    port = free_port()
    extra = {
        "AIONIX_AI_GRPC_PORT": str(port),
        "AIONIX_AI_GRPC_TLS_CERT": str(cert),
        "AIONIX_AI_GRPC_TLS_KEY": str(pkey),
    }
    for env in start_ai(tmp_path_factory, extra):
        md = (("authorization", f"Bearer {env.server.admin_key}"),)
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{port}", creds) as ch:
            out = AionTasksStub(ch).Submit(
                pb.SubmitRequest(intent="api-ok", params={"text": "x"}, wait=True), metadata=md
            )
            assert out.status == "OK"
        # the port speaks TLS only: a plaintext client fails
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch, pytest.raises(grpc.RpcError) as info:
            AionTasksStub(ch).StatusById(pb.StatusRequest(task_id=out.task_id), metadata=md, timeout=5)
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert httpx.get(env.server.url + "/healthz").status_code == 200
