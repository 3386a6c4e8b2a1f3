"""Fixtures of the modules tests: one private server, an admin client, a trusted ECDSA key."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

import modpkg as pkg
from serverproc import ServerProcess

CANARY = "mod-canary-" + uuid.uuid4().hex

#: the AI router's policy: the `summarize` intent's local route is the summarize_text module
AI_POLICY = {
    "models.yml": (
        "providers:\n"
        "  modules:\n"
        "    kind: function\n"
        "    location: local\n"
        "    target: 'trn:modules:{tenant}:module/summarize_text'\n"
        "    timeout_s: 60\n"
        "models:\n"
        "  summarizer: {provider: modules, tier: tier0}\n"
    ),
    "intents.yml": (
        "intents:\n  summarize:\n    privacy: local-only\n    candidates: [summarizer]\n    prompt: '{text}'\n"
    ),
    "policies.yml": "budget: {default_usd: 0.02, hard_cap_usd: 0.20}\nfallback_order: [tier0, tier1, tier2]\n",
    "modules.yml": "modules:\n  - {name: summarize_text, description: extractive summarizer (examples/modules)}\n",
}


@pytest.fixture(scope="session")
def mod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("modules-server")
    policy = root / "policies"
    policy.mkdir()
    for name, text in AI_POLICY.items():
        (policy / name).write_text(text)
    proc = ServerProcess(
        root,
        env={
            "MOD_TEST_CANARY": CANARY,
            "AIONIX_FUNCTIONS_POOL_SIZE": "1",
            "AIONIX_MODULES_BREAKER_FAILURES": "3",
            "AIONIX_MODULES_BREAKER_COOLDOWN_SECONDS": "2",
            "AIONIX_AI_POLICY_DIR": str(policy),
        },
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def mc(mod_server: ServerProcess) -> Iterator[httpx.Client]:
    with mod_server.client(timeout=120.0) as c:
        yield c


@pytest.fixture(scope="session")
def trusted(mod_server: ServerProcess) -> Any:
    """A signing key the server trusts (ECDSA P-256)."""
    key, pub = pkg.keypair("ecdsa")
    with mod_server.client() as c:
        r = c.post("/api/v1/module-keys", json={"name": "test-ecdsa", "public_key": pub})
        assert r.status_code == 201, r.text
    return key


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def install(client: httpx.Client, tar: bytes, expect: int = 201) -> dict[str, Any]:
    r = client.post("/api/v1/modules", content=tar, headers={"Content-Type": "application/x-tar"})
    assert r.status_code == expect, r.text
    return r.json()


EXAMPLE_PUB = Path(__file__).parents[2] / "examples" / "modules" / "keys" / "test-signing-key-DO-NOT-USE.pub"


@pytest.fixture(scope="session")
def example_key(mod_server: ServerProcess) -> str:
    """The examples' TEST-ONLY key, trusted as `examples-test`."""
    with mod_server.client() as c:
        r = c.post("/api/v1/module-keys", json={"name": "examples-test", "public_key": EXAMPLE_PUB.read_text()})
        assert r.status_code == 201, r.text
        again = c.post("/api/v1/module-keys", json={"name": "again", "public_key": EXAMPLE_PUB.read_text()})
        assert again.status_code == 409 and "already trusted" in again.text
    return "examples-test"
