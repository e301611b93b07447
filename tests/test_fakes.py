"""The fake upstreams must parse with the official SDKs (that is what makes them trustworthy)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fakes import (
    DEFAULT_TEXT,
    FakeUpstream,
    anthropic_app,
    combined_app,
    fake_embedding,
    openai_app,
    serve_app,
    serve_app_in_thread,
)

USER: Any = [{"role": "user", "content": "Say hi please"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
CLAUDE_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def behave(spec: str, key: str | None = None) -> dict[str, str]:
    headers = {"X-Fake-Behavior": spec}
    if key is not None:
        headers["X-Fake-Key"] = key
    return headers


@pytest.fixture
async def oai() -> AsyncIterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    async with serve_app(openai_app(fake)) as url:
        yield fake, url


@pytest.fixture
async def client(oai: tuple[FakeUpstream, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=oai[1] + "/v1", api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
async def claude() -> AsyncIterator[tuple[FakeUpstream, anthropic.AsyncAnthropic]]:
    fake = FakeUpstream()
    async with serve_app(anthropic_app(fake)) as url:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-test", max_retries=0) as c:
            yield fake, c


# ---------------------------------------------------------------- OpenAI chat
async def test_chat_json(oai: tuple[FakeUpstream, str], client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    choice = completion.choices[0]
    assert choice.message.content == DEFAULT_TEXT and choice.message.refusal is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)
    assert completion.usage.total_tokens == 7
    fake = oai[0]
    assert len(fake.received) == 1
    rec = fake.last
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.json["messages"] == USER and json.loads(rec.body) == rec.json
    assert rec.header("authorization") == "Bearer sk-test"


async def test_chat_echo_with_content_parts(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": [{"type": "text", "text": "echo: round trip"}]}]
    )
    assert completion.choices[0].message.content == "round trip"


async def test_chat_stream_without_usage(oai: tuple[FakeUpstream, str], client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_TEXT
    assert len(chunks) == 1 + 4 + 1  # role chunk, one per word, finish chunk
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and "usage" not in c.model_fields_set for c in chunks)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


async def test_chat_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    *body, last = chunks
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens == 7
    assert all(c.usage is None and "usage" in c.model_fields_set for c in body)
    assert body[-1].choices[0].finish_reason == "stop"


async def test_chat_stream_helper_accumulates_text(client: openai.AsyncOpenAI) -> None:
    deltas: list[str] = []
    async with client.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
        async for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = await stream.get_final_completion()
    assert deltas == ["", "Hello", " from", " fake", " upstream"]  # OpenAI's role chunk carries content ""
    assert final.choices[0].message.content == DEFAULT_TEXT


async def test_chat_tool_call_json(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake", "unit": "c"}
    none = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], tool_choice="none")
    assert none.choices[0].message.content == DEFAULT_TEXT and none.choices[0].message.tool_calls is None


async def test_chat_tool_call_stream(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL]) as stream:
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.parsed_arguments == {"city": "fake", "unit": "c"}
    raw = await client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], stream=True)
    fragments = [c.choices[0].delta.tool_calls async for c in raw if c.choices and c.choices[0].delta.tool_calls]
    assert len(fragments) > 2 and fragments[0][0].id is not None and fragments[1][0].id is None


# ---------------------------------------------------------------- OpenAI other endpoints
async def test_embeddings_default_base64_and_float(oai: tuple[FakeUpstream, str], client: openai.AsyncOpenAI) -> None:
    result = await client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert oai[0].last.json["encoding_format"] == "base64"  # what the SDK asks for by default
    assert [d.embedding for d in result.data] == [fake_embedding("a b"), fake_embedding("c")]
    assert [d.index for d in result.data] == [0, 1] and result.usage.prompt_tokens == 3
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input="a b", encoding_format="float", dimensions=20
    )
    assert floats.data[0].embedding == fake_embedding("a b", 20)
    assert floats.model == "text-embedding-3-small"


async def test_models_and_legacy_completions(client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert "gpt-4o" in models
    assert (await client.models.retrieve("gpt-4o")).owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")
    completion = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="echo: legacy text")
    assert completion.choices[0].text == "legacy text" and completion.usage is not None
    stream = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="hi", stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == DEFAULT_TEXT
    assert chunks[-1].usage is not None and chunks[-2].choices[0].finish_reason == "stop"


async def test_azure_deployment_route(oai: tuple[FakeUpstream, str]) -> None:
    fake, url = oai
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=url,
        azure_deployment="my-dep",
        api_version="2024-10-21",
        api_key="az-key",
        max_retries=0,
    ) as azure:
        completion = await azure.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.model == "my-dep" and completion.choices[0].message.content == DEFAULT_TEXT
    assert fake.last.path == "/openai/deployments/my-dep/chat/completions"
    assert fake.last.query == {"api-version": "2024-10-21"} and fake.last.header("api-key") == "az-key"
    async with aiohttp.ClientSession() as s:
        path = "/openai/deployments/my-dep/chat/completions?api-version=2024-10-21"
        async with s.post(url + path, json={"messages": USER}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "401"


# ---------------------------------------------------------------- behaviours
@pytest.mark.parametrize(
    ("status", "exc", "kind"),
    [
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error"),
        (400, openai.BadRequestError, "invalid_request_error"),
    ],
)
async def test_openai_error_status(client: openai.AsyncOpenAI, status: int, exc: type[Exception], kind: str) -> None:
    with pytest.raises(exc) as info:
        await client.chat.completions.create(model="gpt-4o", messages=USER, extra_headers=behave(f"status:{status}"))
    err = info.value
    assert isinstance(err, openai.APIStatusError) and err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == kind and err.body["param"] is None


async def test_gzip_and_slow(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, extra_headers=behave("gzip, slow:150")
    )
    assert time.monotonic() - started >= 0.15
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.parse().choices[0].message.content == DEFAULT_TEXT


async def test_slow_stream_spaces_events(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, extra_headers=behave("slow:40")
    )
    started = time.monotonic()
    chunks = [c async for c in stream]
    assert len(chunks) == 6 and time.monotonic() - started >= 0.15  # 6 chunks + [DONE] => 6 gaps


async def test_fail_times_per_key(oai: tuple[FakeUpstream, str], client: openai.AsyncOpenAI) -> None:
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model="gpt-4o", messages=USER, extra_headers=behave("fail-times:2:503", key="k1")
            )
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers=behave("fail-times:1:429", key="k2")
        )
    ok = await client.chat.completions.create(
        model="gpt-4o", messages=USER, extra_headers=behave("fail-times:2:503", key="k1")
    )
    assert ok.choices[0].message.content == DEFAULT_TEXT
    assert oai[0].failures == {"k1": 3, "k2": 1}


async def test_concurrent_requests_do_not_mix(client: openai.AsyncOpenAI) -> None:
    first = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "echo: first"}],
        extra_headers=behave("slow:100"),
    )
    second = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "echo: second"}])
    a, b = await asyncio.gather(first, second)
    assert (a.choices[0].message.content, b.choices[0].message.content) == ("first", "second")


async def test_reset_mid_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, extra_headers=behave("reset-mid-stream")
    )
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hello from"
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o", messages=USER, extra_headers=behave("reset-mid-stream"))


# ---------------------------------------------------------------- Anthropic
async def test_anthropic_json(claude: tuple[FakeUpstream, anthropic.AsyncAnthropic]) -> None:
    fake, client = claude
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=64, system="be brief", messages=USER
    )
    message = await raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-6" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 4)
    assert message.usage.cache_read_input_tokens == 0
    assert fake.last.path == "/v1/messages" and fake.last.header("anthropic-version")


async def test_anthropic_stream_text(claude: tuple[FakeUpstream, anthropic.AsyncAnthropic]) -> None:
    _, client = claude
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "echo: one two three"}],
    ) as stream:
        pieces = [t async for t in stream.text_stream]
        message = await stream.get_final_message()
    assert pieces == ["one", " two", " three"]
    assert message.content[0].type == "text" and message.content[0].text == "one two three"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 3


async def test_anthropic_tool_use(claude: tuple[FakeUpstream, anthropic.AsyncAnthropic]) -> None:
    _, client = claude
    message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=USER, tools=[CLAUDE_TOOL])
    block = message.content[0]
    assert message.stop_reason == "tool_use" and block.type == "tool_use"
    assert block.name == "get_weather" and block.input == {"city": "fake"} and block.id.startswith("toolu_")
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=USER, tools=[CLAUDE_TOOL]
    ) as stream:
        final = await stream.get_final_message()
    streamed = final.content[0]
    assert final.stop_reason == "tool_use" and streamed.type == "tool_use"
    assert streamed.input == {"city": "fake"}


async def test_anthropic_errors_and_auth(claude: tuple[FakeUpstream, anthropic.AsyncAnthropic]) -> None:
    fake, client = claude
    for status, exc in [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError)]:
        with pytest.raises(exc) as info:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=8,
                messages=USER,
                extra_headers=behave(f"status:{status}"),
            )
        assert isinstance(info.value, anthropic.APIStatusError) and isinstance(info.value.body, dict)
        assert info.value.body["type"] == "error"
    base = str(client.base_url).rstrip("/")
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/v1/messages", json={"model": "m", "max_tokens": 1, "messages": USER}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["type"] == "authentication_error"
    assert len(fake.received) == 3


async def test_combined_app_serves_both_providers() -> None:
    fake = FakeUpstream()
    async with serve_app(combined_app(fake)) as url:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as claude:
            message = await claude.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=USER)
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
            completion = await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert message.content[0].type == "text" and completion.choices[0].message.content == DEFAULT_TEXT
    assert [r.path for r in fake.received] == ["/v1/messages", "/v1/chat/completions"]


# ---------------------------------------------------------------- sync clients (server in a thread)
@pytest.fixture
def threaded() -> Iterator[tuple[str, str]]:
    with serve_app_in_thread(openai_app(FakeUpstream())) as oai_url:
        with serve_app_in_thread(anthropic_app(FakeUpstream())) as claude_url:
            yield oai_url, claude_url


def test_sync_clients(threaded: tuple[str, str]) -> None:
    oai_url, claude_url = threaded
    with openai.OpenAI(base_url=oai_url + "/v1", api_key="sk", max_retries=0) as client:
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content
        stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream) == DEFAULT_TEXT
    with anthropic.Anthropic(base_url=claude_url, api_key="sk", max_retries=0) as claude:
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=8, messages=USER) as s:
            final = s.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == DEFAULT_TEXT
