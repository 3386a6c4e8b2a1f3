"""`email`: send text/HTML mail with attachments through an SMTP connection (STARTTLS,
implicit TLS or plain) with aiosmtplib (`pip install 'aionix[smtp]'`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params, require_module
from aionix.errors import field_error


class SmtpConnection(ConnectionConfig):
    host: str = Field(..., min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="default 587 (starttls), 465 (tls) or 25 (plain)")
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str | None = None
    password_secret: str | None = Field(None, description="CredVault credential holding the password")
    from_address: str | None = Field(None, description="default From")
    verify_tls: bool = True
    ca_file: str | None = Field(None, description="PEM bundle to trust instead of the system's")
    allow_hosts: list[str] = Field(default_factory=list, description="SSRF guard exceptions (admin only)")


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(..., min_length=1, max_length=255)
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    content_type: str = Field("application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")


Addresses = str | list[str]


def _addresses(value: Addresses | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    return [a.strip() for a in items if a and a.strip()]


class SendParams(Params):
    to: Addresses
    cc: Addresses | None = None
    bcc: Addresses | None = None
    subject: str = Field("", max_length=998)
    text: str | None = None
    html: str | None = None
    from_address: str | None = Field(None, alias="from", description="defaults to the connection's from_address")
    reply_to: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _valid(cls, v: Addresses | None) -> Addresses | None:
        for address in _addresses(v):
            if "@" not in address or any(c in address for c in "\r\n"):
                raise ValueError(f"{address!r} is not an e-mail address")
        return v

    @model_validator(mode="after")
    def _body(self) -> SendParams:
        if not _addresses(self.to):
            raise ValueError("to: at least one recipient")
        if self.text is None and self.html is None:
            raise ValueError("give text or html (or both)")
        return self


def build_message(p: SendParams, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(_addresses(p.to))
    if p.cc:
        msg["Cc"] = ", ".join(_addresses(p.cc))
    if p.reply_to:
        msg["Reply-To"] = p.reply_to
    msg["Subject"] = p.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    for key, value in p.headers.items():
        if any(c in key + value for c in "\r\n"):
            raise field_error(f"parameters.headers.{key}", "must not contain line breaks")
        msg[key] = value
    if p.text is not None:
        msg.set_content(p.text)
        if p.html is not None:
            msg.add_alternative(p.html, subtype="html")
    else:
        msg.set_content(p.html or "", subtype="html")
    for i, att in enumerate(p.attachments):
        if att.encoding == "base64":
            try:
                data = base64.b64decode(att.content, validate=True)
            except (binascii.Error, ValueError):
                raise field_error(f"parameters.attachments.{i}.content", "is not valid base64") from None
        else:
            data = att.content.encode("utf-8")
        maintype, subtype = att.content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=att.filename)
    return msg


def _tls_context(c: SmtpConnection) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=c.ca_file) if c.ca_file else ssl.create_default_context()
    if not c.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected to the vetted address (aiosmtplib then speaks SMTP over it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except TimeoutError:
        sock.close()
        raise KIND.error("Timeout", f"connecting to {address}:{port} took longer than {timeout:g} s") from None
    except OSError as exc:
        sock.close()
        raise KIND.error("ConnectionError", f"{address}:{port}: {exc.strerror or exc}") from None
    return sock


async def _client(conn: Any, timeout: float) -> Any:
    aiosmtplib = require_module(KIND)
    c: SmtpConnection = conn.config
    port = c.port or {"starttls": 587, "tls": 465, "plain": 25}[c.security]
    ctx = _tls_context(c) if c.security != "plain" else None
    address = await conn.service.vet_endpoint(conn, c.host, port)
    sock = await _connect(address, port, timeout)
    return aiosmtplib.SMTP(
        hostname=c.host,  # TLS verifies the certificate against the configured name
        sock=sock,  # connected to the vetted address: never a second lookup
        timeout=timeout,
        use_tls=c.security == "tls",
        start_tls=c.security == "starttls",
        tls_context=ctx,
    )


async def _deliver(
    conn: Any, timeout: float, msg: EmailMessage | None, recipients: list[str]
) -> tuple[dict[str, Any], str]:
    import aiosmtplib

    c: SmtpConnection = conn.config
    client = await _client(conn, timeout)
    try:
        await client.connect()
        if c.username:
            password = await conn.secret(c.password_secret) if c.password_secret else ""
            await client.login(c.username, str(password))
        if msg is None:
            await client.noop()
            return {}, "ok"
        errors, response = await client.send_message(msg, recipients=recipients)
        return errors, response
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise KIND.error("AuthError", exc.message) from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise KIND.error("Rejected", "; ".join(f"{r.recipient}: {r.message}" for r in exc.recipients)) from None
    except aiosmtplib.SMTPTimeoutError as exc:
        raise KIND.error("Timeout", str(exc)) from None
    except aiosmtplib.SMTPConnectError as exc:
        raise KIND.error("ConnectionError", str(exc)) from None
    except aiosmtplib.SMTPServerDisconnected as exc:
        raise KIND.error("ConnectionError", str(exc)) from None
    except aiosmtplib.SMTPException as exc:
        raise KIND.error("Error", str(exc)) from None
    except OSError as exc:
        raise KIND.error("ConnectionError", str(exc)) from None
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except Exception:
                client.close()


async def run_send(call: Invocation) -> dict[str, Any]:
    p: SendParams = call.params
    conn = call.connection
    assert conn is not None
    sender = p.from_address or conn.config.from_address
    if not sender:
        raise field_error("parameters.from", "required: the connection has no from_address")
    msg = build_message(p, sender)
    recipients = _addresses(p.to) + _addresses(p.cc) + _addresses(p.bcc)
    errors, response = await _deliver(conn, call.timeout, msg, recipients)
    rejected = {addr: str(err) for addr, err in errors.items()}
    return {
        "message_id": msg["Message-ID"],
        "accepted": [r for r in recipients if r not in rejected],
        "rejected": rejected,
        "response": response,
    }


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    await _deliver(conn, min(settings.timeout_seconds, 15), None, [])
    return {"ok": True, "detail": f"{conn.config.host}: connected{' and logged in' if conn.config.username else ''}"}


KIND = ConnectorKind(
    name="email",
    title="E-mail over SMTP",
    error_prefix="Email",
    connection_model=SmtpConnection,
    requires_connection=True,
    default_operation="send",
    extra="smtp",
    module="aiosmtplib",
    operations={
        "send": Operation(
            "send",
            "Send a text and/or HTML message with attachments",
            SendParams,
            {
                "type": "object",
                "properties": {
                    "message_id": {"type": "string"},
                    "accepted": {"type": "array"},
                    "rejected": {"type": "object"},
                },
            },
            run_send,
        ),
    },
    test=test_connection,
    examples=[{"connection": "mail", "to": "ops@example.com", "subject": "Daily report", "text": "All good."}],
)
