"""`slack` and `discord`: incoming-webhook messages, sent through the `http` machinery and its
SSRF guard. The webhook URL is a secret, so a connection names it as a CredVault reference
(`webhook_url_secret`). Failures keep the `Http.*` names (`Http.Status.429`, `Http.Timeout`)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, model_validator

from aionix import jsonutil
from aionix.bus import BusError
from aionix.connectors.httpcall import HttpRequest, check_url, send, shown_url
from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params


class WebhookConnection(ConnectionConfig):
    webhook_url_secret: str = Field(..., description="CredVault credential holding the incoming-webhook URL")
    allow_hosts: list[str] = Field(default_factory=list, description="SSRF guard exceptions (admin only)")


class SlackMessage(Params):
    text: str | None = Field(None, max_length=40_000)
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    username: str | None = None
    icon_emoji: str | None = None
    channel: str | None = None
    thread_ts: str | None = None

    @model_validator(mode="after")
    def _something(self) -> SlackMessage:
        if not (self.text or self.blocks or self.attachments):
            raise ValueError("give text, blocks or attachments")
        return self


class DiscordMessage(Params):
    content: str | None = Field(None, max_length=2000)
    embeds: list[dict[str, Any]] | None = Field(None, max_length=10)
    username: str | None = None
    avatar_url: str | None = None
    tts: bool = False

    @model_validator(mode="after")
    def _something(self) -> DiscordMessage:
        if not (self.content or self.embeds):
            raise ValueError("give content or embeds")
        return self


async def _post(call: Invocation, payload: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    conn = call.connection
    assert conn is not None
    url = str(await conn.secret(conn.config.webhook_url_secret))
    check_url(url, "config.webhook_url_secret")
    req = HttpRequest(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        query=query,
        content=jsonutil.dumps(payload),
        timeout=call.timeout,
        max_bytes=min(65536, call.max_result_bytes),
        max_redirects=0,
        follow_redirects=False,
    )
    try:
        result = await send(conn.resource, req)
    except BusError as exc:
        # the webhook URL is the credential: keep it out of errors (and so out of histories)
        hidden = exc.cause.replace(shown_url(httpx.URL(url)), "<webhook URL>")
        raise BusError(
            exc.error,
            hidden,
            details={"status": (exc.details or {}).get("status")} if isinstance(exc.details, dict) else None,
        ) from None
    return {"status": result["status"], "body": result["body"]}


async def run_slack(call: Invocation) -> dict[str, Any]:
    return await _post(call, call.params.model_dump(exclude_none=True, exclude={"timeout"}), {})


async def run_discord(call: Invocation) -> dict[str, Any]:
    payload = call.params.model_dump(exclude_none=True, exclude={"timeout"})
    if not payload.get("tts"):
        payload.pop("tts", None)
    return await _post(call, payload, {"wait": "true"})


async def open_client(conn: Any) -> Any:
    return conn.service.http_client_for(conn.config.allow_hosts)


async def close_client(client: Any) -> None:
    await client.aclose()


_RESULT = {"type": "object", "properties": {"status": {"type": "integer"}, "body": {}}}

KINDS = [
    ConnectorKind(
        name="slack",
        title="Slack incoming webhook",
        error_prefix="Http",
        connection_model=WebhookConnection,
        requires_connection=True,
        default_operation="post",
        operations={
            "post": Operation("post", "Post a message (text, blocks, attachments)", SlackMessage, _RESULT, run_slack)
        },
        open=open_client,
        close=close_client,
        examples=[{"connection": "alerts", "text": "Order {% input.id %} shipped"}],
    ),
    ConnectorKind(
        name="discord",
        title="Discord webhook",
        error_prefix="Http",
        connection_model=WebhookConnection,
        requires_connection=True,
        default_operation="post",
        operations={
            "post": Operation("post", "Post a message (content, embeds)", DiscordMessage, _RESULT, run_discord)
        },
        open=open_client,
        close=close_client,
        examples=[{"connection": "ops-channel", "content": "Deploy finished"}],
    ),
]
