"""AI tasks, against a real server process and an instant stand-in provider (a small asyncio
HTTP server in its own process that answers OpenAI-compatible streaming chat completions at
once; no real model runs here):

- router decision overhead, in process (p50/p99; target <= 1 ms)
- task submit -> first token over the stand-in, minus the stand-in's own first-token time
  (p50/p99; target <= 5 ms p50)
- tasks/s with 50 concurrent clients (non-streaming submits that wait for the answer)
- server memory per open SSE stream (200 tasks held open by a stand-in that never finishes)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.table import percentile, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import ServerProcess

ENV = {
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_KEY_BURST": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP": "1000000",
    "AIONIX_SECURITY_RATE_LIMIT_PER_IP_BURST": "1000000",
    "AIONIX_LOGGING_ACCESS_LOG": "false",
}
CLIENTS = 50
TASKS = 2000
STREAMS = 200


def _chunk(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"' + text.encode() + b'"}}]}\n\n'


BODY = (
    _chunk("Hello")
    + _chunk(" world")
    + b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\ndata: [DONE]\n\n'
)


async def _standin(port_file: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if b'"hang"' in body:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + _chunk("x")
                    )
                    await writer.drain()
                    await reader.read()  # until the client closes
                    return
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
                    + str(len(BODY)).encode()
                    + b"\r\n\r\n"
                    + BODY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def _policy(root: Path, port: int) -> Path:
    d = root / "policies"
    d.mkdir()
    (d / "models.yml").write_text(
        "providers:\n"
        "  standin:\n"
        "    kind: openai\n"
        "    location: local\n"
        f"    base_url: http://127.0.0.1:{port}/v1\n"
        "    allow_hosts: [127.0.0.1]\n"
        "    max_concurrency: 512\n"
        "    queue_size: 4096\n"
        "models:\n"
        "  instant: {provider: standin, tier: tier0, model: instant}\n"
        "  hang: {provider: standin, tier: tier0, model: hang}\n"
    )
    (d / "intents.yml").write_text(
        "intents:\n"
        "  summarize: {candidates: [instant], prompt: 'Summarize: {text}', max_tokens: 64}\n"
        "  hold: {candidates: [hang], prompt: 'Hold: {text}'}\n"
    )
    (d / "policies.yml").write_text("budget: {default_usd: 0.02, hard_cap_usd: 0.2}\n")
    return d


def _router_overhead() -> dict[str, float]:
    from aionix.ai.policy import parse
    from aionix.ai.router import decide

    ps = parse(
        {
            "models.yml": "providers:\n"
            "  l: {kind: ollama, location: local, base_url: 'http://127.0.0.1:1', allow_hosts: [127.0.0.1]}\n"
            "  o: {kind: openai, location: api, base_url: 'https://api.openai.com/v1', allow_hosts: [api.openai.com]}\n"
            "models:\n"
            "  llama: {provider: l, tier: tier0}\n"
            "  mini: {provider: o, tier: tier1, price_in_per_1k: 0.00015, price_out_per_1k: 0.0006}\n"
            "  big: {provider: o, tier: tier2, price_in_per_1k: 0.005, price_out_per_1k: 0.015}\n",
            "intents.yml": "intents:\n  s: {privacy: hybrid, default_route: hybrid, candidates: [llama, mini, big]}\n",
        }
    )
    spec = ps.intents.intents["s"]
    prompt = "Summarize this text. " * 50
    samples = []
    for _ in range(20000):
        t = time.perf_counter()
        decide(ps, {}, "s", spec, prompt, privacy=None, budget_usd=None, latency_ms=None, max_tokens=None)
        samples.append((time.perf_counter() - t) * 1e6)
    return {"router_decision_p50_us": percentile(samples, 50), "router_decision_p99_us": percentile(samples, 99)}


async def _first_token(client: httpx.AsyncClient, port: int) -> dict[str, float]:
    direct: list[float] = []
    via: list[float] = []
    async with httpx.AsyncClient() as raw:
        for _ in range(200):
            t = time.perf_counter()
            async with raw.stream(
                "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "instant", "stream": True}
            ) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        direct.append((time.perf_counter() - t) * 1000)
                        break
    for _ in range(200):
        t = time.perf_counter()
        r = await client.post("/api/v1/tasks", json={"intent": "summarize", "params": {"text": "x"}, "stream": True})
        task_id = r.json()["task_id"]
        async with client.stream("GET", f"/api/v1/tasks/{task_id}/stream") as s:
            async for line in s.aiter_lines():
                if line == "event: token":
                    via.append((time.perf_counter() - t) * 1000)
                    break
    d50 = percentile(direct, 50)
    return {
        "stand_in_first_token_p50_ms": d50,
        "submit_to_first_token_p50_ms": percentile(via, 50),
        "submit_to_first_token_p99_ms": percentile(via, 99),
        "first_token_overhead_p50_ms": percentile(via, 50) - d50,
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _throughput(client: httpx.AsyncClient, pid: int) -> dict[str, float]:
    cpu0 = _cpu_seconds(pid)
    done = 0
    failed = 0
    latencies: list[float] = []

    async def worker(n: int) -> None:
        nonlocal done, failed
        # one client (one kept-alive connection) per worker, as 50 separate clients would be: a
        # shared httpx pool of 50 connections costs the bench process O(connections²) per
        # request (httpcore), CPU taken from the server on this 2-core machine
        mine = httpx.AsyncClient(base_url=str(client.base_url), headers=client.headers, timeout=60)
        async with mine:
            await one(mine, n)

    async def one(client: httpx.AsyncClient, n: int) -> None:
        nonlocal done, failed
        for _ in range(n):
            t = time.perf_counter()
            try:
                r = await client.post("/api/v1/tasks", json={"intent": "summarize", "params": {"text": "y"}})
            except httpx.TransportError:  # a kept-alive connection the server closed as we reused it
                failed += 1
                continue
            if r.status_code == 200 and r.json()["status"] == "OK":
                done += 1
                latencies.append((time.perf_counter() - t) * 1000)
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(TASKS // CLIENTS) for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    cpu_ms = (_cpu_seconds(pid) - cpu0) * 1000 / max(1, done + failed)
    return {
        "server_cpu_ms_per_task": cpu_ms,
        "tasks_per_s_per_free_core": 1000 / cpu_ms if cpu_ms else 0.0,
        "tasks_per_s_50_clients": done / elapsed,
        "task_latency_p50_ms": percentile(latencies, 50),
        "task_latency_p99_ms": percentile(latencies, 99),
        "task_failures": failed,
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _streams(client: httpx.AsyncClient, pid: int) -> dict[str, float]:
    before = _rss_kb(pid)
    ids = []
    for _ in range(STREAMS):
        r = await client.post("/api/v1/tasks", json={"intent": "hold", "params": {"text": "z"}, "stream": True})
        ids.append(r.json()["task_id"])
    opened: list[Any] = []
    for task_id in ids:
        cm = client.stream("GET", f"/api/v1/tasks/{task_id}/stream")
        resp = await cm.__aenter__()
        opened.append((cm, resp))
    await asyncio.sleep(1.0)
    after = _rss_kb(pid)
    for task_id in ids:
        await client.post(f"/api/v1/tasks/{task_id}/cancel")
    for cm, _ in opened:
        await cm.__aexit__(None, None, None)
    return {"memory_per_open_stream_kb": (after - before) / STREAMS}


async def _bench(server: ServerProcess, port: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60, limits=limits) as client:
        figures = await _first_token(client, port)
        assert server.proc is not None
        figures.update(await _throughput(client, server.proc.pid))
        figures.update(await _streams(client, server.proc.pid))
    return figures


def run() -> dict[str, Any]:
    figures: dict[str, Any] = _router_overhead()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port_file = root / "standin.port"
        standin = subprocess.Popen(
            [sys.executable, "-m", "bench.ai", "--standin", str(port_file)], cwd=Path(__file__).parent.parent
        )
        try:
            deadline = time.monotonic() + 10
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("the stand-in provider did not start")
                time.sleep(0.02)
            port = int(port_file.read_text())
            policy = _policy(root, port)
            server = ServerProcess(root / "server", env={**ENV, "AIONIX_AI_POLICY_DIR": str(policy)}).start()
            try:
                figures.update(asyncio.run(_bench(server, port)))
            finally:
                server.stop()
        finally:
            standin.terminate()
            standin.wait(5)
    print_table(
        [
            ("router decision p50", figures["router_decision_p50_us"], "µs"),
            ("router decision p99", figures["router_decision_p99_us"], "µs"),
            ("stand-in first token p50 (direct)", figures["stand_in_first_token_p50_ms"], "ms"),
            ("submit → first token p50", figures["submit_to_first_token_p50_ms"], "ms"),
            ("submit → first token p99", figures["submit_to_first_token_p99_ms"], "ms"),
            ("first-token overhead p50", figures["first_token_overhead_p50_ms"], "ms"),
            (f"tasks/s ({CLIENTS} clients, wait for answer)", figures["tasks_per_s_50_clients"], "tasks/s"),
            ("task latency p50", figures["task_latency_p50_ms"], "ms"),
            ("task latency p99", figures["task_latency_p99_ms"], "ms"),
            ("task failures", figures["task_failures"], ""),
            ("server CPU per task", figures["server_cpu_ms_per_task"], "ms"),
            ("tasks/s one free core could serve (1000 / CPU ms)", figures["tasks_per_s_per_free_core"], "tasks/s"),
            ("server memory per open SSE stream", figures["memory_per_open_stream_kb"], "KiB"),
        ]
    )
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--standin":
        try:
            asyncio.run(_standin(sys.argv[2]))
        except KeyboardInterrupt:
            pass
    else:
        print(run())
        os._exit(0)
