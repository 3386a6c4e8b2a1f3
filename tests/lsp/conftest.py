"""`aio lsp` as an editor runs it: a subprocess on stdio, driven by pytest-lsp's client, with the
shared real server behind it (AIONIX_URL/AIONIX_API_KEY, as a configured profile would give)."""

from __future__ import annotations

import sys

import pytest_asyncio
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lsp(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("lsp-home")
    env = {
        "AIONIX_URL": server.url,
        "AIONIX_API_KEY": server.admin_key,
        "AIONIX_SECURITY_CREDENTIALS_FILE": str(home / "credentials"),
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
    }
    config = ClientServerConfig(server_command=[sys.executable, "-m", "aionix.cli.main", "lsp"], server_env=env)
    client = await config.start()
    markdown = [t.MarkupKind.Markdown]
    capabilities = t.ClientCapabilities(
        window=t.WindowClientCapabilities(show_document=t.ShowDocumentClientCapabilities(support=True)),
        text_document=t.TextDocumentClientCapabilities(
            completion=t.CompletionClientCapabilities(
                completion_item=t.ClientCompletionItemOptions(documentation_format=markdown)
            ),
            hover=t.HoverClientCapabilities(content_format=markdown),
        ),
    )
    await client.initialize_session(t.InitializeParams(capabilities=capabilities))
    yield client
    await client.shutdown_session()
