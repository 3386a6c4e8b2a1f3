"""The HTTP API: endpoint declarations, dispatch (auth, limits, idempotency, audit), OpenAPI."""
