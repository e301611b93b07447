"""Helicone's manual logging endpoints: reports become rows exactly like proxied calls."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Gateway, GatewayFactory
from feedgate.appkeys import STORE

CHAT_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CHAT_RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}
TIMING = {
    "startTime": {"seconds": 1_750_000_000, "milliseconds": 250},
    "endTime": {"seconds": 1_750_000_001, "milliseconds": 750},
    "timeToFirstToken": 400,
}


def log_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "providerRequest": {
            "url": "https://api.openai.com/v1/chat/completions",
            "json": CHAT_REQUEST,
            "meta": {"Helicone-User-Id": "meta-user", "Helicone-Property-Feature": "from-meta"},
        },
        "providerResponse": {"json": CHAT_RESPONSE, "status": 200, "headers": {"x-request-id": "req_up_1"}},
        "timing": TIMING,
    }
    body.update(changes)
    return body


async def send(
    http: aiohttp.ClientSession, gateway: Gateway, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, str | None, Any]:
    async with http.post(f"{gateway.url}{path}", data=orjson.dumps(body), headers=headers or {}) as r:
        return r.status, r.headers.get("Helicone-Id"), await r.json()


async def test_openai_report_is_logged_like_a_proxied_call(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    headers = {"Helicone-Property-Feature": "from-header", "Helicone-Session-Id": "s-1"}
    status, request_id, answer = await send(http, gateway, "/oai/v1/log", log_body(), headers)
    assert status == 200 and request_id and answer == {"data": {"request_id": request_id}, "error": None}
    row = await gateway.row(request_id)
    assert row["provider"] == "openai" and row["path"] == "/v1/chat/completions"
    assert row["target_url"] == "https://api.openai.com" and row["status"] == 200
    assert row["model"] == "gpt-4o-mini-2024-07-18" and row["response_text"] == "Hello!"
    assert (row["input_tokens"], row["output_tokens"]) == (12, 3)
    assert row["cost_usd"] == pytest.approx((12 * 0.15 + 3 * 0.6) / 1e6)
    assert row["user_id"] == "meta-user" and row["session_id"] == "s-1"
    # The HTTP header wins over meta.
    assert orjson.loads(row["properties_json"]) == {"feature": "from-header"}
    assert row["duration_ms"] == pytest.approx(1500.0) and row["ttft_ms"] == pytest.approx(400.0)
    assert row["datetime_utc"].startswith("2025-06-15T") and row["upstream_request_id"] == "req_up_1"
    assert orjson.loads(row["request_body"]) == CHAT_REQUEST


async def test_anthropic_report(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 0,
        },
    }
    body = log_body(
        providerRequest={
            "url": "https://api.anthropic.com/v1/messages",
            "json": {"model": "claude-3-5-haiku"},
            "meta": {},
        },
        providerResponse={"json": message, "status": 200, "headers": {}},
    )
    status, request_id, _ = await send(http, gateway, "/anthropic/v1/log", body, {"Helicone-Request-Id": "my-own-id"})
    assert status == 200 and request_id == "my-own-id"
    row = await gateway.row("my-own-id")
    assert row["provider"] == "anthropic" and row["finish_reason"] == "tool_use" and row["cache_read_tokens"] == 100
    assert row["cost_usd"] == pytest.approx((10 * 0.8 + 5 * 4 + 100 * 0.08) / 1e6)


async def test_custom_report_with_text_body_and_no_timing(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {
        "providerRequest": {"url": "custom-model-nopath", "json": {"model": "my-local", "prompt": "x"}, "meta": {}},
        "providerResponse": {"json": {}, "textBody": "plain words", "status": 200, "headers": {}},
    }
    status, request_id, _ = await send(http, gateway, "/custom/v1/log", body)
    assert status == 200
    row = await gateway.row(request_id)  # type: ignore[arg-type]
    assert row["provider"] == "custom" and row["path"] == "custom-model-nopath" and row["model"] == "my-local"
    assert row["response_body"] == b"plain words" and row["duration_ms"] is None and row["cost_usd"] is None


async def test_streamed_data_becomes_a_stream(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": []}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
        {**chunk, "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}},
    ]
    body = log_body(
        providerRequest={
            "url": "https://api.openai.com/v1/chat/completions",
            "json": {**CHAT_REQUEST, "stream": True},
            "meta": {},
        },
        providerResponse={"json": {"streamed_data": events}, "status": 200, "headers": {}},
    )
    status, request_id, _ = await send(http, gateway, "/oai/v1/log", body)
    row = await gateway.row(request_id)  # type: ignore[arg-type]
    assert status == 200 and row["is_stream"] == 1 and row["response_text"] == "Hi there" and row["output_tokens"] == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"providerResponse": None}, "providerResponse"),
        ({"providerRequest": {"json": {}, "meta": {}}}, "providerRequest.url"),
        ({"providerRequest": {"url": "u", "meta": {}}}, "providerRequest.json"),
        ({"providerRequest": {"url": "u", "json": {}, "meta": "x"}}, "providerRequest.meta"),
        ({"providerResponse": {"json": {}, "status": "200", "headers": {}}}, "providerResponse.status"),
        ({"providerResponse": {"json": {}, "status": 200}}, "providerResponse.headers"),
        (
            {"timing": {"startTime": {"seconds": 5, "milliseconds": 0}, "endTime": {"seconds": 4, "milliseconds": 0}}},
            "timing",
        ),
        (
            {"timing": {"startTime": {"seconds": -1, "milliseconds": 0}, "endTime": {"seconds": 4}}},
            "timing.startTime.seconds",
        ),
    ],
)
async def test_invalid_bodies_name_the_field(
    gateway: Gateway, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    body = log_body(**change)
    body = {k: v for k, v in body.items() if v is not None}
    status, _, answer = await send(http, gateway, "/oai/v1/log", body)
    assert status == 400 and answer["data"] is None
    assert f"invalid log body: {field}" in answer["error"]
    await gateway.settled()
    assert await gateway.app[STORE].count_requests() == 0


async def test_not_json_and_unsafe_id(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{gateway.url}/oai/v1/log", data=b"{nope") as r:
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
    status, _, answer = await send(http, gateway, "/oai/v1/log", log_body(), {"Helicone-Request-Id": "bad id!"})
    assert status == 400 and "Helicone-Request-Id" in answer["error"]


async def test_log_routes_need_the_feedgate_key(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_gateway(auth={"keys": ["fg-key"]})
    status, _, _ = await send(http, gateway, "/oai/v1/log", log_body())
    assert status == 401
    status, request_id, _ = await send(http, gateway, "/oai/v1/log", log_body(), {"Authorization": "Bearer fg-key"})
    assert status == 200 and (await gateway.row(request_id))["status"] == 200  # type: ignore[arg-type]
