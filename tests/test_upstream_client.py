"""The upstream client (proxy/upstream.py): connection reuse, TLS, and answers framed every way HTTP allows."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import openai
import pytest
from aiohttp import web

from conftest import Chat, Gateway, gateway_settings, start_gateway
from fakes import FakeUpstream, openai_app
from feedgate.upstream.client import UpstreamClient
from serving import wait_ready
from tcpproxy import free_port

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: pooled"}]}


async def test_calls_share_one_upstream_connection(gateway: Gateway, fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as client:
        for _ in range(4):
            await client.chat.completions.create(**CHAT)
        stream = await client.chat.completions.create(**CHAT, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "pooled"
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    assert len(fake.received) == 6
    assert len({r.peer for r in fake.received}) == 1, "each call opened a new upstream connection"


async def test_concurrent_calls_get_their_own_connections_then_reuse_them(gateway: Gateway, fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as client:
        answers = await asyncio.gather(
            *(client.chat.completions.create(**CHAT, extra_headers={"X-Fake-Behavior": "slow:100"}) for _ in range(3))
        )
        assert [a.choices[0].message.content for a in answers] == ["pooled"] * 3
        first_wave = {r.peer for r in fake.received}
        assert len(first_wave) == 3
        for _ in range(3):
            await client.chat.completions.create(**CHAT)
    assert {r.peer for r in fake.received[3:]} <= first_wave


async def test_upstream_closing_an_idle_connection_costs_no_call(tmp_path: Path, fake: FakeUpstream) -> None:
    # The upstream drops keep-alive connections after 50 ms; the next call must open a fresh one, not fail.
    runner = web.AppRunner(openai_app(fake), access_log=None, keepalive_timeout=0.05)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with AsyncExitStack() as stack:
            gateway = await start_gateway(stack, gateway_settings(tmp_path, url))
            client = await stack.enter_async_context(
                openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
            )
            await client.chat.completions.create(**CHAT)
            await asyncio.sleep(0.3)
            answer = await client.chat.completions.create(**CHAT)
            assert answer.choices[0].message.content == "pooled"
            assert len({r.peer for r in fake.received}) == 2
    finally:
        await runner.cleanup()


async def test_idle_connections_are_closed_once_the_keepalive_has_passed(fake: FakeUpstream) -> None:
    runner = web.AppRunner(openai_app(fake), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = UpstreamClient(connect_timeout_s=5, read_timeout_s=10, keepalive_s=0.2)
    body = json.dumps(CHAT).encode()
    try:
        answers = await asyncio.gather(
            *(
                client.request("POST", url, "/v1/chat/completions", {"Content-Type": "application/json"}, body)
                for _ in range(3)
            )
        )
        for answer in answers:
            assert answer.status == 200 and b"pooled" in await answer.read()
            answer.release()
        assert runner.server is not None and len(runner.server.connections) == 3  # kept for reuse
        await asyncio.sleep(0.7)  # no traffic: after the keep-alive they are closed, not left open
        assert runner.server.connections == []
    finally:
        await client.close()
        await runner.cleanup()


async def _serve_raw(answer: bytes) -> tuple[asyncio.Server, str]:
    """A server that reads one request and sends ``answer`` as is, then closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_answer_delimited_by_closing_the_connection(tmp_path: Path) -> None:
    # No Content-Length and no chunked framing: the body is whatever arrives until the upstream closes.
    completion = {
        "id": "chatcmpl-eof",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "till eof"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    body = json.dumps(completion).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    server, url = await _serve_raw(head + body)
    async with server, AsyncExitStack() as stack:
        gateway = await start_gateway(stack, gateway_settings(tmp_path, url))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        raw = await client.chat.completions.with_raw_response.create(**CHAT)
        assert raw.parse().choices[0].message.content == "till eof"
        row = await gateway.row(raw.headers["helicone-id"])
        assert row["response_body"] == body and row["total_tokens"] == 5 and row["status"] == 200


async def test_malformed_answer_is_a_502_and_logged(tmp_path: Path) -> None:
    server, url = await _serve_raw(b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n{}")
    async with server, AsyncExitStack() as stack:
        gateway = await start_gateway(stack, gateway_settings(tmp_path, url))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(**CHAT)
        assert caught.value.status_code == 502
        row = await gateway.row(caught.value.response.headers["helicone-id"])
        assert row["error_type"] == "upstream_unreachable" and "malformed" in row["error_message"]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_upstream(fake: FakeUpstream, certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    runner = web.AppRunner(openai_app(fake), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_https_upstream_verified_against_the_system_trust_store(
    tmp_path: Path,
    tls_upstream: str,
    fake: FakeUpstream,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SSL_CERT_FILE is how an operator adds a private CA; OpenSSL reads it for the default trust store.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    async with AsyncExitStack() as stack:
        gateway = await start_gateway(stack, gateway_settings(tmp_path, tls_upstream))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        for _ in range(2):
            stream = await client.chat.completions.create(**CHAT, stream=True)
            assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "pooled"
        assert len({r.peer for r in fake.received}) == 1  # TLS connections are pooled too


async def test_https_upstream_with_an_untrusted_certificate_is_refused(
    tmp_path: Path, tls_upstream: str, fake: FakeUpstream
) -> None:
    async with AsyncExitStack() as stack:
        gateway = await start_gateway(stack, gateway_settings(tmp_path, tls_upstream))
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        )
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(**CHAT)
        assert caught.value.status_code == 502
        assert "certificate" in caught.value.message.lower()
        assert not fake.received


async def test_served_gateway_streams_from_an_https_upstream(
    tmp_path: Path, tls_upstream: str, fake: FakeUpstream, certificate: tuple[Path, Path]
) -> None:
    # The real process runs on uvloop, whose TLS transport is not asyncio's: streams, pooling and a large
    # answer read in pieces must work there too.
    port = free_port()
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(certificate[0]),
        "FEEDGATE_OPENAI_BASE_URL": tls_upstream,
        "FEEDGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedgate", "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        async with openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0
        ) as client:
            for _ in range(2):
                stream = await client.chat.completions.create(**CHAT, stream=True)
                assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "pooled"
            # About 1.5 MB of JSON: many TLS records, read in many pieces.
            embedded = await client.embeddings.create(model="text-embedding-3-small", input=["x"] * 300, dimensions=256)
            assert len(embedded.data) == 300 and all(len(e.embedding) == 256 for e in embedded.data)
            assert len({r.peer for r in fake.received}) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
