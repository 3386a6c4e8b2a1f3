"""Machine-native Aionix: the MCP server (`/mcp`, `aio mcp`), the runtime's capabilities and
pre-execution simulation (`/api/v1/runtime/...`), and the Copilot's controlled workflow edits
(`/api/v1/copilot/...`)."""
