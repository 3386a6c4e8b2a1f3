"""AI tasks: intents routed by policy to local or API model providers, metered and streamed."""
