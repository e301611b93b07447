"""The proxy through the official OpenAI SDK: answers unchanged, IDs returned, every call logged."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import aiohttp
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


def client(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test-secret-123", max_retries=0)


async def test_generated_ids_are_time_ordered_uuids(gateway: Gateway, fake: FakeUpstream) -> None:
    """IDs feedgate makes are version 7 UUIDs: unique, and sorting them sorts the calls by time."""
    ids = []
    for _ in range(5):
        async with client(gateway) as api:
            raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        ids.append(raw.headers["helicone-id"])
        await asyncio.sleep(0.002)  # the order is by millisecond; IDs within one millisecond are random
    parsed = [uuid.UUID(value) for value in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert sorted(ids) == ids and len(set(ids)) == 5
    made_ms = int(ids[0].replace("-", "")[:12], 16)
    assert abs(made_ms - time.time() * 1000) < 60_000


async def test_chat_answer_passes_through_and_is_logged(gateway: Gateway, fake: FakeUpstream) -> None:
    async with client(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"Helicone-User-Id": "u42"},
        )
    completion = raw.parse()
    request_id = raw.headers["helicone-id"]
    uuid.UUID(request_id)
    assert completion.choices[0].message.content == "Hello from fake upstream"
    # Helicone headers never reach the provider; the provider key does.
    sent = fake.last
    assert sent.header("Authorization") == "Bearer sk-test-secret-123"
    assert not any(name.lower().startswith("helicone-") for name in sent.headers)

    row = await gateway.row(request_id)
    assert row["attempt"] == 1
    assert row["provider"] == "openai" and row["method"] == "POST" and row["path"] == "/v1/chat/completions"
    assert row["model"] == completion.model and row["status"] == 200 and row["is_stream"] == 0
    assert row["input_tokens"] == completion.usage.prompt_tokens  # type: ignore[union-attr]
    assert row["output_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert row["total_tokens"] == completion.usage.total_tokens  # type: ignore[union-attr]
    assert row["user_id"] == "u42"
    assert row["upstream_request_id"] == raw.headers["x-request-id"]
    assert orjson.loads(row["request_body"])["messages"] == MESSAGES
    assert orjson.loads(row["response_body"])["id"] == completion.id
    assert row["duration_ms"] > 0 and row["datetime_utc"].endswith("Z")
    headers = orjson.loads(row["request_headers_json"])
    assert headers["authorization"] == "[redacted]"
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


async def test_stream_with_usage_is_untouched_and_reassembled(gateway: Gateway) -> None:
    async with client(gateway) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        request_id = stream.response.headers["helicone-id"]
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    row = await gateway.row(request_id)
    assert row["is_stream"] == 1 and row["ttft_ms"] is not None and row["ttft_ms"] <= row["duration_ms"]
    assert row["response_text"] == text and row["finish_reason"] == "stop"
    assert (row["input_tokens"], row["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assembled = orjson.loads(row["response_json"])
    assert assembled["choices"][0]["message"]["content"] == text
    assert b"data: [DONE]" in row["response_body"]


async def test_stream_without_usage_hides_the_injected_usage(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers={"Authorization": "Bearer sk-x"}) as r:
        raw = await r.read()
        request_id = r.headers["Helicone-Id"]
    # feedgate asked for usage on the client's behalf ...
    assert fake.last.json["stream_options"] == {"include_usage": True}
    # ... and the client sees what it would have seen without feedgate: no usage anywhere.
    assert b'"usage"' not in raw and b'"choices":[]' not in raw
    assert raw.rstrip().endswith(b"data: [DONE]")
    events = [line for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    assert all(orjson.loads(e[6:])["object"] == "chat.completion.chunk" for e in events)
    row = await gateway.row(request_id)
    assert row["input_tokens"] is not None and row["output_tokens"] is not None
    assert orjson.loads(row["request_body"]) == body  # the log keeps what the client sent


async def test_streamed_tool_call_is_reassembled(gateway: Gateway) -> None:
    tools: list[ChatCompletionToolParam] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    async with client(gateway) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            tools=tools,
            stream=True,
        )
        request_id = stream.response.headers["helicone-id"]
        arguments = ""
        async for chunk in stream:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                arguments += call.function.arguments or ""  # type: ignore[union-attr]
    row = await gateway.row(request_id)
    message = orjson.loads(row["response_json"])["choices"][0]
    assert message["finish_reason"] == "tool_calls" == row["finish_reason"]
    call = message["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and call["function"]["arguments"] == arguments


async def test_embeddings_and_models(gateway: Gateway) -> None:
    async with client(gateway) as api:
        raw = await api.embeddings.with_raw_response.create(model="text-embedding-3-small", input=["a b", "c"])
        embeddings = raw.parse()
        assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) > 0
        row = await gateway.row(raw.headers["helicone-id"])
        assert row["path"] == "/v1/embeddings" and row["input_tokens"] == embeddings.usage.prompt_tokens
        models = await api.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]


async def test_query_string_and_body_bytes_forwarded_exactly(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    body = b'{"model": "gpt-4o",   "messages": [{"role":"user","content":"x"}]}'
    async with http.post(
        f"{gateway.v1}/chat/completions?foo=1&bar=a%20b",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
    ) as r:
        assert r.status == 200
    assert fake.last.body == body and fake.last.query == {"foo": "1", "bar": "a b"}
    row = await gateway.row(r.headers["Helicone-Id"])
    assert row["query"] == "foo=1&bar=a%20b"


async def test_client_chosen_id_and_retries_share_it(gateway: Gateway) -> None:
    request_id = f"ticket-{uuid.uuid4().hex[:8]}:try.1"
    async with client(gateway) as api:
        for _ in range(3):
            raw = await api.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"Helicone-Request-Id": request_id},
            )
            assert raw.headers["helicone-id"] == request_id
    rows = await gateway.rows(request_id)
    assert [row["attempt"] for row in rows] == [1, 2, 3]


@pytest.mark.parametrize("bad_id", ["has space", "x" * 129, "semi;colon", "../etc", "a/b", ""])
async def test_unsafe_request_id_is_refused(gateway: Gateway, fake: FakeUpstream, bad_id: str) -> None:
    async with client(gateway) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            await api.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"Helicone-Request-Id": bad_id},
            )
    assert "Helicone-Request-Id" in caught.value.message
    assert caught.value.response.headers["helicone-id"]
    assert fake.received == []


async def test_upstream_errors_pass_through_and_are_logged(gateway: Gateway) -> None:
    async with client(gateway) as api:
        with pytest.raises(openai.RateLimitError) as caught:
            await api.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"X-Fake-Behavior": "status:429"},
            )
    request_id = caught.value.response.headers["helicone-id"]
    row = await gateway.row(request_id)
    assert row["status"] == 429 and row["cost_usd"] is None
    assert orjson.loads(row["response_body"])["error"]["code"] == "rate_limit_exceeded"


async def test_unreachable_upstream_is_502_in_openai_shape(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(openai={"base_url": "http://127.0.0.1:9"})
    async with client(gw) as api:
        with pytest.raises(openai.InternalServerError) as caught:
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_unreachable"
    row = await gw.row(caught.value.response.headers["helicone-id"])
    assert row["error_type"] == "upstream_unreachable" and row["status"] is None


async def test_silent_upstream_is_504(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(server={"upstream_read_timeout_s": 0.2})
    async with client(gw) as api:
        with pytest.raises(openai.APIStatusError) as caught:
            await api.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"X-Fake-Behavior": "slow:1500"},
            )
    assert caught.value.status_code == 504
    row = await gw.row(caught.value.response.headers["helicone-id"])
    assert row["error_type"] == "upstream_timeout"


async def test_gzip_answer_reaches_client_and_log_decoded(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    headers = {"X-Fake-Behavior": "gzip", "Accept-Encoding": "gzip", "Authorization": "Bearer k"}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        answer = await r.json()
    assert answer["object"] == "chat.completion"
    row = await gateway.row(r.headers["Helicone-Id"])
    assert orjson.loads(row["response_body"])["id"] == answer["id"] and row["output_tokens"] is not None


async def test_upstream_reset_mid_stream_is_logged(gateway: Gateway) -> None:
    async with client(gateway) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            extra_headers={"X-Fake-Behavior": "reset-mid-stream"},
        )
        request_id = stream.response.headers["helicone-id"]
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    row = await gateway.row(request_id)
    assert row["error_type"] == "upstream_disconnected" and row["response_body"]


async def test_client_gone_mid_stream_is_logged_with_what_was_sent(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"X-Fake-Behavior": "slow:100", "Authorization": "Bearer k"}
    r = await http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers)
    request_id = r.headers["Helicone-Id"]
    await r.content.readany()
    r.close()  # the user closed the tab
    await asyncio.sleep(0.5)
    row = await gateway.row(request_id)
    assert row["error_type"] == "client_disconnected"
    assert "bytes" in row["error_message"] and row["response_body"].startswith(b"data: ")


async def test_client_gone_before_the_stream_starts_is_logged_not_an_error(
    gateway: Gateway, http: aiohttp.ClientSession, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"X-Fake-Behavior": "slow:300", "Helicone-Request-Id": "gone-early-1"}
    call = asyncio.ensure_future(http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers))
    await asyncio.sleep(0.1)
    call.cancel()  # the user gave up while the upstream was still thinking
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.6)
    row = await gateway.row("gone-early-1")
    assert row["error_type"] == "client_disconnected" and row["status"] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_body_over_limit_is_413(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    gw = await make_gateway(server={"max_body_bytes": 2048})
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 4096}]}
    async with http.post(f"{gw.v1}/chat/completions", json=big) as r:
        assert r.status == 413
        error = (await r.json())["error"]
        assert error["type"] == "invalid_request_error" and "2048" in error["message"]
        assert r.headers["Helicone-Id"]
    assert fake.received == []
