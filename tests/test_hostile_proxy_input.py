"""Requests a provider would accept, or a hostile client would send, never become a 500 or a lost row:
deep JSON, bytes that are not UTF-8 in headers, dot segments in paths, framing headers smuggled through
fallbacks, and a slow stream the client abandons.

Some of these cannot be sent by aiohttp's client, which normalises paths and encodes headers as UTF-8:
``raw_call`` writes the request itself over a socket.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream
from feedgate.appkeys import WRITER
from feedgate.config import load_settings
from feedgate.errors import ConfigError


async def raw_call(
    url: str, method: str, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request exactly as given; the status and the body (read to the connection's end)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: " + parts.netloc.encode(), b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    if body or method == "POST":
        head.append(b"Content-Type: application/json")
        head.append(b"Content-Length: " + str(len(body)).encode())
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: hostile"}]})


async def test_a_stream_request_nested_300_deep_is_proxied_and_logged(gateway: Gateway) -> None:
    deep = b'{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "echo: deep"}], '
    deep += b'"metadata_x": ' + b"[" * 300 + b"]" * 300 + b"}"
    status, body = await raw_call(gateway.url, "POST", b"/v1/chat/completions", [], deep)
    assert status == 200 and b"deep" in body
    await gateway.settled()
    rows = await gateway.app[WRITER].store.query("SELECT request_id, status FROM requests")
    assert [row["status"] for row in rows] == [200]


async def test_a_cache_seed_that_is_not_utf8_is_proxied_and_cached(gateway: Gateway, fake: FakeUpstream) -> None:
    headers = [(b"Helicone-Cache-Enabled", b"true"), (b"Helicone-Cache-Seed", b"caf\xe9-\xff")]
    for _ in range(2):
        status, body = await raw_call(gateway.url, "POST", b"/v1/chat/completions", headers, CHAT)
        assert status == 200 and orjson.loads(body)["choices"][0]["message"]["content"] == "hostile"
        await gateway.settled()
    assert len(fake.received) == 1  # the second call was a cache hit


async def test_a_user_id_that_is_not_utf8_is_logged_not_lost(gateway: Gateway) -> None:
    headers = [(b"Helicone-User-Id", b"caf\xe9"), (b"Helicone-Property-Team", b"\xffteam")]
    status, _ = await raw_call(gateway.url, "POST", b"/v1/chat/completions", headers, CHAT)
    assert status == 200
    await gateway.settled()
    rows = await gateway.app[WRITER].store.query("SELECT user_id, properties_json FROM requests")
    assert rows[0]["user_id"] == "caf\ufffd" and orjson.loads(rows[0]["properties_json"])["team"] == "\ufffdteam"
    assert gateway.app[WRITER].stats.dropped_build_error == 0


async def test_auth_headers_that_are_not_utf8_are_a_401(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(auth={"keys": ["fg-key"]})
    status, body = await raw_call(gateway.url, "GET", b"/v1/request/r1/feedback", [(b"Authorization", b"Bearer \xff")])
    assert status == 401 and orjson.loads(body) == {"data": None, "error": "invalid feedgate key"}
    status, body = await raw_call(
        gateway.url, "POST", b"/v1/chat/completions", [(b"Helicone-Auth", b"Bearer \xfe")], CHAT
    )
    assert status == 401 and orjson.loads(body)["error"]["code"] == "invalid_key"


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/request/../../etc/passwd/feedback",
        b"/v1/chat/../../admin/secret",
        b"/v1/%2e%2e/admin",
        b"/v1/./chat/completions",
        b"/groq/../../admin/secret",
    ],
)
async def test_paths_with_dot_segments_are_refused_before_any_upstream_call(
    make_gateway: GatewayFactory, fake: FakeUpstream, upstream_url: str, path: bytes
) -> None:
    gateway = await make_gateway(
        providers=[{"name": "groq", "kind": "openai-compatible", "base_url": f"{upstream_url}/openai", "api_key": "gk"}]
    )
    status, body = await raw_call(gateway.url, "POST", path, [], CHAT)
    assert status == 400 and "'.' or '..' segments" in body.decode()
    assert fake.received == []


async def test_fallback_headers_cannot_smuggle_framing_headers(
    make_gateway: GatewayFactory, other: FakeUpstream, other_url: str, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(proxy={"allowed_target_origins": [other_url]})
    smuggled = {"Transfer-Encoding": "chunked", "Host": "internal.example", "Content-Length": "5", "X-Team": "a"}
    fallbacks = orjson.dumps([{"target-url": other_url, "headers": smuggled}]).decode()
    async with http.post(
        f"{gateway.v1}/chat/completions",
        data=CHAT,
        headers={"Helicone-Fallbacks": fallbacks, "Content-Type": "application/json"},
    ) as answer:
        assert answer.status == 200
    sent = other.last
    assert sent.header("X-Team") == "a" and sent.header("Transfer-Encoding") is None
    assert sent.header("Host") == urlsplit(other_url).netloc and sent.header("Content-Length") == str(len(CHAT))


def test_providers_cannot_configure_framing_headers() -> None:
    with pytest.raises(ConfigError, match="connection or framing header"):
        load_settings(
            environ={},
            overrides={
                "providers": [
                    {"name": "x", "kind": "openai-compatible", "base_url": "http://x", "headers": {"Host": "y"}}
                ]
            },
        )


async def test_a_slow_stream_the_client_abandons_is_logged_as_abandoned(
    tmp_path: Path, make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A stream long enough to fill the socket buffers of a client that stops reading: the gateway's writes
    # pause; then the client goes away. aiohttp reports that as a plain ConnectionError("Connection lost").
    piece = b"data: " + b"x" * 64_000 + b"\n\n"

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(2000):
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        gateway = await make_gateway(openai={"base_url": f"http://127.0.0.1:{runner.addresses[0][1]}"})
        parts = urlsplit(gateway.url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        body = orjson.dumps({"model": "gpt-4o-mini", "stream": True, "messages": []})
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        request_id = next(
            line.split(b": ")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"helicone-id")
        )
        await reader.read(100_000)
        await asyncio.sleep(0.5)  # stop reading: the buffers fill and the gateway's writes pause
        writer.transport.abort()
        with caplog.at_level(logging.ERROR):
            row = await gateway.row(request_id.decode())
        assert row["status"] == 200 and row["error_type"] == "client_disconnected"
        signals = await gateway.app[WRITER].store.query(
            "SELECT signal FROM feedback_events WHERE target_id = ?", (request_id.decode(),)
        )
        assert [s["signal"] for s in signals] == ["abandoned"]
        assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_nul_in_a_logged_text_field_keeps_the_row_on_both_stores(
    kind: str, make_gateway: GatewayFactory, request: pytest.FixtureRequest
) -> None:
    database = {}
    if kind == "postgres":  # asked for here, so the SQLite case runs (and this one skips) without PostgreSQL
        database = {"url": request.getfixturevalue("pg_schemas").new_url()}
    gateway = await make_gateway(database=database) if database else await make_gateway()
    body = orjson.dumps(
        {"model": "gpt-4o-mini\u0000x", "user": "a\u0000b", "messages": [{"role": "user", "content": "echo: nul"}]}
    )
    status, _ = await raw_call(gateway.url, "POST", b"/v1/chat/completions", [], body)
    assert status == 200
    await gateway.settled()
    rows = await gateway.app[WRITER].store.query("SELECT user_id, model, request_model, request_body FROM requests")
    assert rows[0]["user_id"] == "a\ufffdb" and bytes(rows[0]["request_body"]) == body  # the body as sent
    assert rows[0]["model"] == rows[0]["request_model"] == "gpt-4o-mini\ufffdx"
    assert gateway.app[WRITER].stats.dropped_store_error == 0
