"""A server with a worked AI policy set whose providers are local stand-ins (see standin.py)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serverproc import ServerProcess
from standin import StandIn

BEHAVIOURS = ("ok", "r429", "e500", "slow", "cut", "hang", "flood", "nousage")


def models_yml(local: int, api: int, dead: int) -> str:
    lines = [
        "providers:",
        "  ollama:",
        "    kind: ollama",
        "    location: local",
        f"    base_url: http://127.0.0.1:{local}",
        "    allow_hosts: [127.0.0.1]",
        "    first_byte_timeout_s: 1",
        "    retries: 2",
        "    breaker_failures: 1000",
        "  deadlocal:",
        "    kind: ollama",
        "    location: local",
        f"    base_url: http://127.0.0.1:{dead}",
        "    allow_hosts: [127.0.0.1]",
        "    first_byte_timeout_s: 1",
        "    breaker_failures: 1000",
        "  cloud:",
        "    kind: openai",
        "    location: api",
        f"    base_url: http://127.0.0.1:{api}/v1",
        "    allow_hosts: [127.0.0.1]",
        "    api_key_ref: cloud-key",
        "    first_byte_timeout_s: 1",
        "    retries: 2",
        "    breaker_failures: 1000",
        "  azure:",
        "    kind: azure",
        "    location: api",
        f"    base_url: http://127.0.0.1:{api}",
        "    allow_hosts: [127.0.0.1]",
        "    api_key_ref: cloud-key",
        '    api_version: "2024-06-01"',
        "    breaker_failures: 1000",
        "  tiny:",
        "    kind: openai",
        "    location: api",
        f"    base_url: http://127.0.0.1:{api}/v1",
        "    allow_hosts: [127.0.0.1]",
        "    max_concurrency: 1",
        "    queue_size: 1",
        "    breaker_failures: 1000",
        "  fn:",
        "    kind: function",
        "    location: local",
        "    target: 'trn:aionixfn:{tenant}:function/ai-local-fn'",
        "    timeout_s: 60",
        "models:",
        "  fn-model: {provider: fn, tier: tier0}",
        "  rtr-api: {provider: ollama, tier: tier0, model: router-api}",
        "  rtr-junk: {provider: ollama, tier: tier0, model: ok}",
        "  dead: {provider: deadlocal, tier: tier0, model: ok}",
        "  az-ok: {provider: azure, tier: tier1, model: ok, price_in_per_1k: 0.001, price_out_per_1k: 0.002}",
        "  tiny-hang: {provider: tiny, tier: tier1, model: hang}",
        "  premium: {provider: cloud, tier: tier2, model: ok, context: 100000, price_in_per_1k: 1.0, price_out_per_1k: 2.0}",
    ]
    for b in BEHAVIOURS:
        lines.append(f"  local-{b}: {{provider: ollama, tier: tier0, model: {b}}}")
        lines.append(
            f"  api-{b}: {{provider: cloud, tier: tier1, model: {b}, price_in_per_1k: 0.001, price_out_per_1k: 0.002}}"
        )
    return "\n".join(lines) + "\n"


def intents_yml() -> str:
    lines = ["intents:"]
    for b in BEHAVIOURS:
        lines += [
            f"  local-{b}:",
            "    privacy: local-only",
            f"    candidates: [local-{b}, api-ok]",
            "    prompt: 'Say: {text}'",
            f"  api-{b}:",
            "    privacy: allow-api",
            "    default_route: api",
            f"    candidates: [api-{b}]",
            "    prompt: 'Say: {text}'",
            f"  hybrid-{b}:",
            "    privacy: hybrid",
            "    default_route: hybrid",
            f"    candidates: [local-{b}, api-ok]",
            "    prompt: 'Say: {text}'",
            "    hybrid: {local_timeout_ms: 5000}",
        ]
    lines += [
        "  local-dead:",
        "    privacy: local-only",
        "    candidates: [dead, api-ok]",
        "    prompt: 'Say: {text}'",
        "  azure:",
        "    privacy: allow-api",
        "    default_route: api",
        "    candidates: [az-ok]",
        "    prompt: 'Say: {text}'",
        "  saturate:",
        "    privacy: allow-api",
        "    default_route: api",
        "    candidates: [tiny-hang]",
        "    prompt: 'Say: {text}'",
        "  premium:",
        "    privacy: allow-api",
        "    default_route: api",
        "    candidates: [premium]",
        "    prompt: 'Summarize: {text}'",
        "    max_tokens: 100000",
        "  routed:",
        "    privacy: allow-api",
        "    default_route: local",
        "    candidates: [local-ok, api-ok]",
        "    prompt: '{text}'",
        "    router_model: rtr-api",
        "  routed-private:",
        "    privacy: local-only",
        "    candidates: [local-ok, api-ok]",
        "    prompt: '{text}'",
        "    router_model: rtr-api",
        "  routed-junk:",
        "    privacy: allow-api",
        "    default_route: local",
        "    candidates: [local-ok, api-ok]",
        "    prompt: '{text}'",
        "    router_model: rtr-junk",
        "  fn-local:",
        "    privacy: local-only",
        "    candidates: [fn-model, api-ok]",
        "    prompt: '{text}'",
        "  fn-hybrid:",
        "    privacy: hybrid",
        "    default_route: hybrid",
        "    candidates: [fn-model, api-ok]",
        "    prompt: '{text}'",
        "    hybrid: {local_timeout_ms: 30000, min_confidence: 0.5}",
        "  schema:",
        "    candidates: [local-ok]",
        "    prompt: 'Summarize: {text}'",
        "    input_schema: {type: object, required: [text], properties: {text: {type: string, maxLength: 50}}}",
    ]
    return "\n".join(lines) + "\n"


POLICIES = textwrap.dedent(
    """\
    budget: {default_usd: 0.02, hard_cap_usd: 0.20}
    latency_ms: {local: 600, api: 2000, hybrid: 2300}
    providers: {allow: [], deny: []}
    fallback_order: [tier0, tier1, tier2]
    """
)


class AiEnv:
    def __init__(self, server: ServerProcess, policy_dir: Path, local: StandIn, api: StandIn) -> None:
        self.server = server
        self.policy_dir = policy_dir
        self.local = local
        self.api = api


def write_policy(policy_dir: Path, local: int, api: int, dead: int) -> None:
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "models.yml").write_text(models_yml(local, api, dead))
    (policy_dir / "intents.yml").write_text(intents_yml())
    (policy_dir / "policies.yml").write_text(POLICIES)
    (policy_dir / "modules.yml").write_text("modules: []\n")


@pytest.fixture(scope="module")
def ai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AiEnv]:
    yield from start_ai(tmp_path_factory, {})


def start_ai(tmp_path_factory: pytest.TempPathFactory, extra_env: dict[str, str]) -> Iterator[AiEnv]:
    """The AI server with the worked policy set (and `extra_env` on top of its environment)."""
    from serverproc import free_port

    root = tmp_path_factory.mktemp("ai-server")
    local, api = StandIn(), StandIn()
    policy_dir = root / "policies"
    write_policy(policy_dir, local.port, api.port, free_port())
    env = {
        "AIONIX_AI_POLICY_DIR": str(policy_dir),
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "100000",
        "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "100000",
        **extra_env,
    }
    server = ServerProcess(root, env=env).start()
    with server.client() as c:
        r = c.post("/api/v1/secrets", json={"name": "cloud-key", "type": "api_key", "value": "sk-standin-secret-123"})
        assert r.status_code == 201, r.text
    yield AiEnv(server, policy_dir, local, api)
    server.stop()
    local.close()
    api.close()
