"""How the upstream client reads answers (proxy/upstream_conn.py): interim answers, stray bytes, a quiet
upstream, HEAD, and a large stream to a slow client. Each upstream here writes raw HTTP, so every byte the
gateway sees is the test's choice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp import web

from conftest import Chat, Gateway, gateway_settings, start_gateway

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": f"chatcmpl-{text}",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


def json_answer(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
        0,
    )
    await reader.readexactly(length)
    return head


@asynccontextmanager
async def raw_upstream(answer: Answer, connections: list[int]) -> AsyncIterator[str]:
    """An upstream that runs ``answer`` for each request on a connection, until the gateway closes it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                try:
                    await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                await answer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def gateway_for(stack: AsyncExitStack, tmp_path: Path, url: str, **server: object) -> Gateway:
    settings = gateway_settings(tmp_path, url, server=server) if server else gateway_settings(tmp_path, url)
    return await start_gateway(stack, settings)


async def test_interim_answers_before_the_real_one_are_skipped(tmp_path: Path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        writer.write(json_answer(completion("after-hints")))
        await writer.drain()

    connections: list[int] = []
    async with raw_upstream(answer, connections) as url, AsyncExitStack() as stack:
        gateway = await gateway_for(stack, tmp_path, url)
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(**CHAT)
            assert raw.status_code == 200 and raw.parse().choices[0].message.content == "after-hints"
        row = await gateway.row(raw.headers["helicone-id"])
        assert row["status"] == 200 and row["total_tokens"] == 4
        assert len(connections) == 1  # the connection stays usable after an interim answer


async def test_an_upstream_that_answers_twice_loses_its_connection(tmp_path: Path) -> None:
    # A second, unasked-for answer behind the real one must never reach the next caller on that connection.
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(json_answer(completion("asked")) + json_answer(completion("stray")))
        await writer.drain()

    connections: list[int] = []
    async with raw_upstream(answer, connections) as url, AsyncExitStack() as stack:
        gateway = await gateway_for(stack, tmp_path, url)
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        for _ in range(3):
            reply = await client.chat.completions.create(**CHAT)
            assert reply.choices[0].message.content == "asked"
            await asyncio.sleep(0.05)  # let the stray answer arrive while the connection is idle
        assert len(connections) == 3


async def test_upstream_going_quiet_mid_stream_is_logged_as_a_timeout(tmp_path: Path) -> None:
    event = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"so far"},"finish_reason":null}]}\n\n'  # noqa: E501

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await writer.drain()
        await asyncio.sleep(3)

    connections: list[int] = []
    async with raw_upstream(answer, connections) as url, AsyncExitStack() as stack:
        gateway = await gateway_for(stack, tmp_path, url, upstream_read_timeout_s=0.3)
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        stream = await client.chat.completions.create(**CHAT, stream=True)
        request_id = stream.response.headers["helicone-id"]
        received = []
        with pytest.raises(openai.APIError):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content)
        assert received == ["so far"]
        row = await gateway.row(request_id)
        assert row["error_type"] == "upstream_timeout" and row["response_body"] == event


async def test_head_request_is_answered_without_a_body(tmp_path: Path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1234\r\n\r\n")
        await writer.drain()

    connections: list[int] = []
    async with raw_upstream(answer, connections) as url, AsyncExitStack() as stack:
        gateway = await gateway_for(stack, tmp_path, url)
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.head(f"{gateway.v1}/models", timeout=aiohttp.ClientTimeout(total=5)) as r:
                    assert r.status == 200 and r.headers["Content-Length"] == "1234" and await r.read() == b""
                    request_id = r.headers["Helicone-Id"]
        row = await gateway.row(request_id)
        assert row["method"] == "HEAD" and row["status"] == 200 and row["error_type"] is None


async def test_a_large_stream_to_a_stalled_client_holds_the_upstream_back(tmp_path: Path) -> None:
    # 48 MiB, while the client stops reading for a while: the gateway must pause the upstream rather than
    # buffer the whole answer in memory, and must then deliver (and log) every byte, in order. The stall is
    # longer than the read timeout: waiting on our own client is not the upstream going quiet.
    pieces = [f"data: {i:06d} {'x' * 4000}\n\n".encode() for i in range(12_000)]
    written = [0]

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            written[0] += 1
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with AsyncExitStack() as stack, aiohttp.ClientSession() as http:
            gateway = await gateway_for(stack, tmp_path, url, upstream_read_timeout_s=0.5)
            async with http.post(f"{gateway.v1}/chat/completions", json={**CHAT, "stream": True}) as r:
                received = bytearray(await r.content.read(256 * 1024))
                await asyncio.sleep(1.0)
                # Socket buffers on both sides hold some megabytes; the gateway itself holds about one.
                assert written[0] < len(pieces) * 3 // 4, "the gateway read the whole answer into memory"
                while block := await r.content.read(1 << 20):
                    received += block
            assert bytes(received) == b"".join(pieces)
            row = await gateway.row(r.headers["Helicone-Id"])
            assert row["response_body"] == bytes(received) and row["error_type"] is None
    finally:
        await runner.cleanup()
