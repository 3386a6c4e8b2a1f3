"""`aio lsp`: the language server for workflow files, on stdin/stdout (any LSP editor)."""

from __future__ import annotations

import typer

from aionix.cli.client import EXIT_USAGE, CLIError
from aionix.cli.state import state


def lsp(ctx: typer.Context) -> None:
    """Start the language server for *.flow.yaml, *.flow.json and *.asl.json on stdio (editors run it).

    Diagnostics, completion, hover, definition, symbols, formatting and code lenses; with a profile
    (or --url/--api-key) it also completes the server's TRNs and runs Validate/Run/Open in Studio.
    """
    try:
        from aionix.lsp.server import main
    except ModuleNotFoundError as exc:
        if exc.name not in ("pygls", "lsprotocol") and not (exc.name or "").startswith(("pygls.", "lsprotocol.")):
            raise
        raise CLIError("the language server needs pygls: pip install 'aionix[lsp]'", EXIT_USAGE) from None
    from aionix.lsp.remote import Remote

    st = state(ctx)
    main(Remote(st.url, st.api_key, st.profile))
