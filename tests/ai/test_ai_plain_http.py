"""The small HTTP/1.1 client for `http://` providers, against an asyncio server in the test that
answers in each framing (Content-Length, chunked, until close) and closes kept-alive
connections when told: connections are reused, a stale one is replaced, and no header can
carry a line break."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from aionix.ai.policy import parse
from aionix.ai.providers import Provider, ProviderFailure
from aionix.bus import CallContext

SSE = b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n'


async def _server(framing: list[str]) -> tuple[asyncio.Server, list[int]]:
    """Answers each request with the next framing of `framing`; `close-after` answers with a
    Content-Length and then closes the kept-alive connection. Counts connections."""
    seen = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                mode = framing.pop(0)
                if mode == "chunked":
                    half = len(SSE) // 2
                    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (SSE[:half], SSE[half:]))
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n")
                elif mode == "eof":
                    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + SSE)
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(SSE) + SSE)
                await writer.drain()
                if mode == "close-after":
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def _provider(port: int, allow: str = "127.0.0.1") -> Provider:
    ps = parse(
        {
            "models.yml": f"providers:\n  p: {{kind: openai, location: local, base_url: 'http://127.0.0.1:{port}/v1', allow_hosts: [{allow}]}}\n"
        }
    )
    return Provider("p", ps.models.providers["p"], SimpleNamespace(bus=None))


async def _call(prov: Provider, key: str | None = None) -> list[tuple]:
    return [
        item async for item in prov.stream("m", [{"role": "user", "content": "x"}], 10, key, CallContext(tenant="t"))
    ]


def test_framings_reuse_and_a_stale_connection():
    async def main() -> None:
        server, seen = await _server(["length", "chunked", "close-after", "length", "eof", "length"])
        port = server.sockets[0].getsockname()[1]
        prov = _provider(port)
        assert prov._plain is not None
        try:
            for _ in range(2):  # Content-Length, then chunked: one connection
                assert await _call(prov) == [("token", "Hi"), ("usage", 3, 1)]
            assert seen[0] == 1
            assert (await _call(prov))[-1] == ("usage", 3, 1)  # the server closes it afterwards
            await asyncio.sleep(0.05)
            assert (await _call(prov))[-1] == ("usage", 3, 1)  # a new connection, not a failure
            assert seen[0] == 2
            assert (await _call(prov))[-1] == ("usage", 3, 1)  # until close: not kept
            assert (await _call(prov))[-1] == ("usage", 3, 1)
            assert seen[0] == 3
        finally:
            await prov.close()
            server.close()

    asyncio.run(main())


def test_a_header_with_a_line_break_is_never_sent():
    async def main() -> None:
        server, seen = await _server(["length"])
        port = server.sockets[0].getsockname()[1]
        try:
            prov = _provider(port)
            with pytest.raises(ProviderFailure, match="LocalProtocolError"):
                await _call(prov, key="sk\r\nX-Evil: 1")
            assert seen[0] == 0
            await prov.close()
        finally:
            server.close()

    asyncio.run(main())
    assert issubclass(httpx.LocalProtocolError, httpx.HTTPError)


def test_h11_skips_an_interim_answer_and_refuses_what_is_not_http():
    """h11 parses the answers: a `100 Continue` before the real answer is skipped (the hand-written
    parser took it for the status), an answer that is not HTTP fails the call, and a header name
    that is not a token (here one holding a colon) is refused before anything is sent."""

    async def main() -> None:
        answers = [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(SSE) + SSE,
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        ]
        seen = [0]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen[0] += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        prov = _provider(server.sockets[0].getsockname()[1])
        try:
            assert await _call(prov) == [("token", "Hi"), ("usage", 3, 1)]
            with pytest.raises(ProviderFailure, match="RemoteProtocolError"):
                await _call(prov)
            assert seen[0] == 2
            assert prov._plain is not None
            with pytest.raises(httpx.LocalProtocolError):
                await prov._plain.post(
                    f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", b"{}", {"X-A:b": "1"}, 5, 5, 5
                )
            assert seen[0] == 2
        finally:
            await prov.close()
            server.close()

    asyncio.run(main())
