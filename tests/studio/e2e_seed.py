"""What the browser e2e (and `make screenshots`) needs on its server besides the Studio itself:
two agent modules — one signed with a trusted throwaway key (verified), one unsigned
(quarantined) — and an AI policy directory that does not exist yet (the server loads no policy,
so the Tasks page shows its 409; the browser run writes the files and reloads). The model provider is a stand-in
(tests/ai/standin.py: a local HTTP server speaking the OpenAI-compatible streaming wire format):
no real model can run here."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "ai"))
sys.path.insert(0, str(TESTS / "modules"))

import modpkg  # noqa: E402
from standin import StandIn  # noqa: E402


@contextmanager
def ai_env(root: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """(server env, e2e env): a policy directory still to be made and a running stand-in provider."""
    policies = root / "policies"
    standin = StandIn()
    try:
        yield (
            {"AIONIX_AI_POLICY_DIR": str(policies)},
            {"AIONIX_E2E_POLICY_DIR": str(policies), "AIONIX_E2E_STANDIN_PORT": str(standin.port)},
        )
    finally:
        standin.close()


def seed_modules(server: Any, root: Path) -> None:
    key, pub = modpkg.keypair("ecdsa")
    with server.client() as c:
        r = c.post("/api/v1/module-keys", json={"name": "studio-e2e", "public_key": pub})
        assert r.status_code == 201, r.text
        for name, signer in (("summarize-e2e", key), ("unsigned-e2e", None)):
            directory = modpkg.write_dir(root / "modules", modpkg.manifest(name))
            tar, _ = modpkg.build(directory, signer)
            r = c.post("/api/v1/modules", content=tar, headers={"Content-Type": "application/x-tar"})
            assert r.status_code == 201, r.text
            assert r.json()["state"] == ("verified" if signer else "quarantined"), r.text
