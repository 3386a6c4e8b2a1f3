"""The language server for workflow files (`aio lsp`): `analysis` (diagnostics, references,
symbols, formatting), `complete`, `positions` (JSON pointer ⇄ line/column in YAML and JSON),
`remote` (the Aionix server behind a profile) and `server` (the LSP wiring, pygls)."""
