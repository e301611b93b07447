"""Helicone-Cache-*: exact-match cache in the store, JSON and streams, hits logged as their own requests."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest
from openai import Omit, omit
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionStreamOptionsParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "echo: cached words"}]
CACHE = {"Helicone-Cache-Enabled": "true"}


def client(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)


async def chat(
    gateway: Gateway, headers: dict[str, str], temperature: float | Omit = omit
) -> tuple[str, str, str | None]:
    """(answer text, request ID, Helicone-Cache header)."""
    async with client(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers=headers,
            temperature=temperature,
        )
    return raw.parse().choices[0].message.content or "", raw.headers["helicone-id"], raw.headers.get("helicone-cache")


async def test_json_miss_then_hit(gateway: Gateway, fake: FakeUpstream) -> None:
    text, first_id, state = await chat(gateway, CACHE)
    assert state == "MISS" and text == "cached words"
    await gateway.settled()  # the entry is written by the log writer
    text2, second_id, state2 = await chat(gateway, CACHE)
    assert state2 == "HIT" and text2 == text and len(fake.received) == 1

    first, hit = await gateway.row(first_id), await gateway.row(second_id)
    assert hit["cache_reference_id"] == first_id and first["cache_reference_id"] is None
    assert hit["cost_usd"] == 0.0 and first["cost_usd"] > 0
    assert hit["status"] == 200 and hit["response_text"] == text and hit["input_tokens"] == first["input_tokens"]
    assert fake.last.header("Accept-Encoding") == "identity"  # a cached answer must suit any client


async def test_hit_carries_helicone_headers(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    headers = {"Authorization": "Bearer sk", **CACHE}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
        first = await r.read()
    await gateway.settled()
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
        assert r.headers["Helicone-Cache"] == "HIT" and r.headers["Helicone-Cache-Bucket-Idx"] == "0"
        assert int(r.headers["Helicone-Cache-Latency"]) >= 0 and r.headers["Content-Type"].startswith(
            "application/json"
        )
        assert await r.read() == first


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_is_cached_and_replayed_as_a_stream(
    gateway: Gateway, fake: FakeUpstream, include_usage: bool
) -> None:
    stream_options: ChatCompletionStreamOptionsParam | Omit = {"include_usage": True} if include_usage else omit

    async def streamed() -> tuple[str, str, str | None, bool]:
        async with client(gateway) as api:
            stream = await api.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                extra_headers=CACHE,
                stream_options=stream_options,
            )
            chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        saw_usage = any(c.usage is not None for c in chunks)
        return text, stream.response.headers["helicone-id"], stream.response.headers.get("helicone-cache"), saw_usage

    text, first_id, state, usage1 = await streamed()
    await gateway.settled()
    text2, second_id, state2, usage2 = await streamed()
    assert (state, state2) == ("MISS", "HIT") and text2 == text == "cached words"
    assert usage1 == usage2 == include_usage  # a replay hides or shows usage exactly as the live answer did
    assert len(fake.received) == 1
    hit = await gateway.row(second_id)
    assert hit["is_stream"] == 1 and hit["cache_reference_id"] == first_id and hit["cost_usd"] == 0.0
    assert hit["response_text"] == text and hit["output_tokens"] is not None


async def test_seed_and_body_separate_entries(gateway: Gateway, fake: FakeUpstream) -> None:
    await chat(gateway, {**CACHE, "Helicone-Cache-Seed": "tenant-a"})
    await gateway.settled()
    assert (await chat(gateway, {**CACHE, "Helicone-Cache-Seed": "tenant-b"}))[2] == "MISS"
    assert (await chat(gateway, {**CACHE, "Helicone-Cache-Seed": "tenant-a"}))[2] == "HIT"
    assert (await chat(gateway, CACHE, temperature=0.5))[2] == "MISS"
    assert len(fake.received) == 3


async def test_bucket_fills_before_hits(gateway: Gateway, fake: FakeUpstream) -> None:
    headers = {**CACHE, "Helicone-Cache-Bucket-Max-Size": "2"}
    states = []
    for _ in range(4):
        states.append((await chat(gateway, headers))[2])
        await gateway.settled()
    assert states == ["MISS", "MISS", "HIT", "HIT"] and len(fake.received) == 2


async def test_max_age_zero_never_hits_and_errors_are_not_cached(gateway: Gateway, fake: FakeUpstream) -> None:
    await chat(gateway, {**CACHE, "Cache-Control": "max-age=0"})
    await gateway.settled()
    assert (await chat(gateway, {**CACHE, "Cache-Control": "max-age=0"}))[2] == "MISS"
    failing = {**CACHE, "Helicone-Cache-Seed": "errors", "X-Fake-Behavior": "status:500"}
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await chat(gateway, failing)
        await gateway.settled()
    assert len(fake.received) == 4


async def test_save_only_and_read_only(gateway: Gateway, fake: FakeUpstream) -> None:
    assert (await chat(gateway, {"Helicone-Cache-Read": "true"}))[2] == "MISS"
    await gateway.settled()
    assert (await chat(gateway, {"Helicone-Cache-Read": "true"}))[2] == "MISS"  # nothing was saved
    await chat(gateway, {"Helicone-Cache-Save": "true"})
    await gateway.settled()
    assert (await chat(gateway, {"Helicone-Cache-Read": "true"}))[2] == "HIT"
    assert len(fake.received) == 3


async def test_bad_bucket_size(gateway: Gateway, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError, match="Helicone-Cache-Bucket-Max-Size"):
        await chat(gateway, {**CACHE, "Helicone-Cache-Bucket-Max-Size": "21"})
    assert not fake.received


async def test_anthropic_stream_cache(
    make_combined: GatewayFactory, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    gateway = await make_combined()
    body = {"model": "claude-3-5-haiku", "max_tokens": 20, "stream": True, "messages": MESSAGES}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01", **CACHE}
    answers = []
    for _ in range(2):
        async with http.post(f"{gateway.url}/anthropic/v1/messages", json=body, headers=headers) as r:
            assert r.content_type == "text/event-stream"
            answers.append((r.headers["Helicone-Cache"], await r.read(), r.headers["Helicone-Id"]))
        await gateway.settled()
    assert [a[0] for a in answers] == ["MISS", "HIT"] and answers[0][1] == answers[1][1]
    assert b"event: message_stop" in answers[1][1] and len(fake.received) == 1
    row = await gateway.row(answers[1][2])
    assert orjson.loads(row["response_json"])["content"][0]["text"] == "cached words"
