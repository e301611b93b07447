"""Helicone-Target-Url / -OpenAI-Api-Base, Helicone-Fallbacks and Helicone-Retry-*: where a call goes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import openai
import orjson
import pytest

from conftest import Chat, Gateway, GatewayFactory
from fakes import FakeUpstream

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: routed"}]}
AUTH = {"Authorization": "Bearer sk-client"}


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[int]]]:
    """A listening socket that counts the connections it accepts."""
    accepted: list[int] = []

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()
        await server.wait_closed()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def post(
    http: aiohttp.ClientSession, gateway: Gateway, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    async with http.post(f"{gateway.v1}/chat/completions", json=CHAT, headers={**AUTH, **headers}) as r:
        return r.status, dict(r.headers), await r.read()


async def test_allowed_target_url_gets_the_call(
    make_gateway: GatewayFactory, fake: FakeUpstream, other: FakeUpstream, other_url: str, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(proxy={"allowed_target_origins": [other_url]})
    for header in ("Helicone-Target-Url", "Helicone-OpenAI-Api-Base"):
        status, headers, body = await post(http, gateway, {header: other_url + "/ignored/path"})
        assert status == 200 and orjson.loads(body)["choices"][0]["message"]["content"] == "routed"
        assert other.last.path == "/v1/chat/completions"  # only the target's origin is used
        assert other.last.header("Authorization") == "Bearer sk-client"
        row = await gateway.row(headers["Helicone-Id"])
        assert row["target_url"] == other_url and row["provider"] == "openai"
    assert not fake.received


@pytest.mark.parametrize("header", ["Helicone-Target-Url", "Helicone-OpenAI-Api-Base"])
async def test_disallowed_target_never_reaches_a_socket(
    make_gateway: GatewayFactory,
    fake: FakeUpstream,
    other_url: str,
    listener: tuple[str, list[int]],
    http: aiohttp.ClientSession,
    header: str,
) -> None:
    target, accepted = listener
    gateway = await make_gateway(proxy={"allowed_target_origins": [other_url]})
    status, headers, body = await post(http, gateway, {header: target})
    assert status == 400
    error = orjson.loads(body)["error"]
    assert error["code"] == "target_not_allowed" and target in error["message"] and header in error["message"]
    assert headers["Helicone-Id"]
    # Also refused: not a URL at all, and another scheme.
    for bad in ("not a url", "file:///etc/passwd", "ftp://127.0.0.1/"):
        status, _, body = await post(http, gateway, {header: bad})
        assert status == 400 and orjson.loads(body)["error"]["code"] == "invalid_target_url"
    await asyncio.sleep(0.05)
    assert accepted == [] and not fake.received
    await gateway.settled()
    assert not await gateway.rows(headers["Helicone-Id"])  # refused before anything happened: nothing to log


async def test_retry_until_success(gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    headers = {
        "X-Fake-Behavior": "fail-times:2:503",
        "X-Fake-Key": "retry-1",
        "Helicone-Retry-Enabled": "true",
        "Helicone-Retry-Num": "3",
        "Helicone-Retry-Factor": "1",
        "Helicone-Retry-Min-Timeout": "10",
        "Helicone-Retry-Max-Timeout": "20",
    }
    status, response_headers, body = await post(http, gateway, headers)
    assert status == 200 and orjson.loads(body)["object"] == "chat.completion"
    assert len(fake.received) == 3
    assert not any(k.lower().startswith("helicone-") for k in fake.last.headers)
    row = await gateway.row(response_headers["Helicone-Id"])
    assert row["status"] == 200 and orjson.loads(row["properties_json"])["feedgate-retries"] == "2"


async def test_retry_gives_up_with_the_last_answer(gateway: Gateway, fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                **CHAT,
                extra_headers={
                    "X-Fake-Behavior": "fail-times:9:429,retry-after:0",
                    "X-Fake-Key": "retry-2",
                    "Helicone-Retry-Enabled": "true",
                    "Helicone-Retry-Num": "1",
                    "Helicone-Retry-Min-Timeout": "1",
                },
            )
    assert len(fake.received) == 2


async def test_no_retry_once_the_stream_started(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    body = {**CHAT, "stream": True}
    headers = {
        **AUTH,
        "X-Fake-Behavior": "reset-mid-stream",
        "Helicone-Retry-Enabled": "true",
        "Helicone-Retry-Min-Timeout": "1",
    }
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200
            await r.read()
    await gateway.settled()
    assert len(fake.received) == 1


async def test_no_retry_for_client_errors(gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession) -> None:
    status, _, _ = await post(
        http,
        gateway,
        {"X-Fake-Behavior": "status:400", "Helicone-Retry-Enabled": "true", "Helicone-Retry-Min-Timeout": "1"},
    )
    assert status == 400 and len(fake.received) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Helicone-Retry-Num", "many"),
        ("Helicone-Retry-Num", "2.5"),
        ("Helicone-Retry-Factor", "0"),
        ("Helicone-Retry-Max-Timeout", "-1"),
    ],
)
async def test_malformed_retry_parameter(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession, name: str, value: str
) -> None:
    status, _, body = await post(http, gateway, {"Helicone-Retry-Enabled": "true", name: value})
    assert status == 400 and name.lower() in orjson.loads(body)["error"]["message"]
    assert not fake.received


async def test_fallback_to_the_next_target(
    make_gateway: GatewayFactory,
    upstream_url: str,
    fake: FakeUpstream,
    other_url: str,
    other: FakeUpstream,
) -> None:
    down = closed_port_url()
    gateway = await make_gateway(proxy={"allowed_target_origins": [upstream_url, other_url, down]})
    fallbacks = [
        {
            "target-url": upstream_url,
            "headers": {"X-Fake-Behavior": "status:503"},
            "onCodes": [{"from": 500, "to": 599}],
        },
        {"target-url": down},
        {
            "target-url": other_url,
            "headers": {"Authorization": "Bearer sk-other"},
            "bodyKeyOverride": {"model": "gpt-4.1"},
        },
    ]
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-client", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            **CHAT,
            extra_headers={"Helicone-Fallbacks": orjson.dumps(fallbacks).decode()},
        )
    completion = raw.parse()
    assert raw.headers["helicone-fallback-index"] == "2"
    assert completion.model == "gpt-4.1"
    assert len(fake.received) == 1 and fake.last.header("X-Fake-Behavior") == "status:503"
    assert other.last.header("Authorization") == "Bearer sk-other" and other.last.json["model"] == "gpt-4.1"
    row = await gateway.row(raw.headers["helicone-id"])
    assert row["target_url"] == other_url and row["status"] == 200 and row["model"] == "gpt-4.1"
    assert orjson.loads(row["properties_json"])["feedgate-fallback-index"] == "2"
    assert orjson.loads(row["request_body"])["model"] == "gpt-4o-mini"  # the log keeps what the client sent


async def test_fallback_keeps_an_answer_not_in_on_codes(
    make_gateway: GatewayFactory, upstream_url: str, other_url: str, other: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(proxy={"allowed_target_origins": [upstream_url, other_url]})
    fallbacks = [
        {"target-url": upstream_url, "headers": {"X-Fake-Behavior": "status:400"}, "onCodes": [429]},
        {"target-url": other_url},
    ]
    status, headers, _ = await post(http, gateway, {"Helicone-Fallbacks": orjson.dumps(fallbacks).decode()})
    assert status == 400 and headers["Helicone-Fallback-Index"] == "0" and not other.received


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not json", "not JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"headers": {}}]', "[0].target-url is required"),
        ('[{"target-url": "http://evil.example"}]', "not an allowed target"),
        ('[{"target-url": "ALLOWED", "onCodes": ["5xx"]}]', "[0].onCodes[0]"),
        ('[{"target-url": "ALLOWED", "bodyKeyOverride": [1]}]', "bodyKeyOverride must be an object"),
        # A header that would add lines of its own to the upstream request (request smuggling).
        ('[{"target-url": "ALLOWED", "headers": {"X-A": "1\\r\\nX-Evil: 2"}}]', "contains a line break"),
        ('[{"target-url": "ALLOWED", "headers": {"X-A: 1\\r\\nX-Evil": "2"}}]', "not a valid header name"),
    ],
)
async def test_malformed_fallbacks(
    make_gateway: GatewayFactory,
    upstream_url: str,
    fake: FakeUpstream,
    http: aiohttp.ClientSession,
    value: str,
    fragment: str,
) -> None:
    gateway = await make_gateway(proxy={"allowed_target_origins": [upstream_url]})
    status, _, body = await post(http, gateway, {"Helicone-Fallbacks": value.replace("ALLOWED", upstream_url)})
    assert status == 400 and fragment in orjson.loads(body)["error"]["message"]
    assert not fake.received


async def test_target_never_gets_the_configured_provider_key(
    make_gateway: GatewayFactory,
    upstream_url: str,
    fake: FakeUpstream,
    other_url: str,
    other: FakeUpstream,
    http: aiohttp.ClientSession,
) -> None:
    gateway = await make_gateway(
        providers=[{"name": "openai", "api_key": "sk-provider-secret", "headers": {"OpenAI-Organization": "org-1"}}],
        proxy={"allowed_target_origins": [upstream_url, other_url]},
        auth={"keys": ["fg-key"]},
    )
    headers = {"Authorization": "Bearer fg-key"}
    async with http.post(
        f"{gateway.v1}/chat/completions", json=CHAT, headers={**headers, "Helicone-Target-Url": other_url}
    ) as r:
        assert r.status == 200
    # The foreign target sees neither the provider's key and headers nor the client's feedgate key.
    assert other.last.header("Authorization") is None and other.last.header("OpenAI-Organization") is None
    async with http.post(
        f"{gateway.v1}/chat/completions", json=CHAT, headers={**headers, "Helicone-Target-Url": upstream_url}
    ) as r:
        assert r.status == 200
    # The provider's own origin named as a target is the provider: key and headers go along.
    assert fake.last.header("Authorization") == "Bearer sk-provider-secret"
    assert fake.last.header("OpenAI-Organization") == "org-1"
