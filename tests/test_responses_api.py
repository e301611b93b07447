"""The Responses API through the gateway with the official SDK: every answer logged as a chat answer would be.

Each case is read back through ``GET /v1/request/{id}``: the answer's text, its finish reason, the tokens
(cached and reasoning too), the cost, and both the requested and the answered model.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from openai.types.responses import FunctionToolParam

from conftest import Gateway
from fake_responses import FAILED_ERROR, REASONING_SUMMARY

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
SNAPSHOT = "gpt-4.1-2025-04-14"


def gpt41_cost(uncached: int, output: int, cached: int = 0) -> float:
    return (uncached * 2.0 + output * 8.0 + cached * 0.5) / 1e6  # prices.json, USD per 1M tokens


async def read_back(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        assert r.status == 200
        body = await r.json()
    row: dict[str, Any] = body["data"]
    return row


def client(gateway: Gateway, behavior: str = "") -> openai.AsyncOpenAI:
    headers = {"X-Fake-Behavior": behavior} if behavior else None
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0, default_headers=headers)


async def test_json_answer_is_logged_with_text_tokens_cost_and_both_models(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with client(gateway, f"answered-model:{SNAPSHOT},cache-tokens:2:0") as api:
        raw = await api.responses.with_raw_response.create(
            model="gpt-4.1", instructions="Answer in five words.", input="echo: a plain answer for you"
        )
    response = raw.parse()
    row = await read_back(http, gateway, raw.headers["helicone-id"])
    assert row["api"] == "responses" and row["request_path"] == "/v1/responses"
    assert row["response_text"] == response.output_text == "a plain answer for you"
    assert row["finish_reason"] == "completed" and row["tool_calls"] is None
    assert row["request_model"] == "gpt-4.1" and row["response_model"] == SNAPSHOT == row["model"]
    usage = response.usage
    assert usage is not None
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["total_tokens"] == usage.total_tokens and row["prompt_cache_read_tokens"] == 2
    assert row["reasoning_tokens"] == 0
    assert row["cost"] == pytest.approx(gpt41_cost(usage.input_tokens - 2, usage.output_tokens, 2))
    assert row["response_id"] == response.id and row["previous_response_id"] is None
    assert row["response_body"]["output"][0]["content"][0]["text"] == "a plain answer for you"


async def test_stream_is_reassembled_into_the_response_the_json_answer_holds(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with client(gateway, f"answered-model:{SNAPSHOT}") as api:
        stream = await api.responses.create(model="gpt-4.1", input="echo: streamed words arrive", stream=True)
        request_id = stream.response.headers["helicone-id"]
        events = [event async for event in stream]
    final = events[-1]
    assert final.type == "response.completed"
    row = await read_back(http, gateway, request_id)
    assert row["is_stream"] and row["api"] == "responses"
    assert row["response_text"] == final.response.output_text == "streamed words arrive"
    assert row["finish_reason"] == "completed"
    # The logged answer is the response object the stream ended with, as a JSON answer would hold it.
    assert row["response_body"] == final.response.model_dump(mode="json", exclude_unset=True)
    assert row["response_model"] == SNAPSHOT and row["request_model"] == "gpt-4.1"
    assert final.response.usage is not None
    assert row["completion_tokens"] == final.response.usage.output_tokens
    assert row["cost"] == pytest.approx(gpt41_cost(final.response.usage.input_tokens, 3))
    assert "event: response.output_text.delta" in row["response_events"]


async def test_time_to_first_token_is_the_first_output_delta_not_the_first_event(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    # Each event comes 60 ms after the one before; the first text delta is the fifth event.
    async with client(gateway, "slow:60") as api:
        stream = await api.responses.create(model="gpt-4.1", input="echo: one two", stream=True)
        request_id = stream.response.headers["helicone-id"]
        async for _event in stream:
            pass
    row = await read_back(http, gateway, request_id)
    # response.created arrives after the first 60 ms; the first delta four events (240 ms) later.
    assert row["time_to_first_token"] >= 60 + 4 * 60 - 20
    assert row["time_to_first_token"] < row["delay_ms"]


@pytest.mark.parametrize("stream", [False, True])
async def test_function_call_is_logged_as_a_tool_call(
    gateway: Gateway, http: aiohttp.ClientSession, stream: bool
) -> None:
    async with client(gateway) as api:
        if stream:
            events = await api.responses.create(
                model="gpt-4.1", input="Weather in Paris?", tools=[WEATHER], stream=True
            )
            request_id = events.response.headers["helicone-id"]
            done = [e async for e in events]
            assert done[-1].type == "response.completed"
            response = done[-1].response
        else:
            raw = await api.responses.with_raw_response.create(
                model="gpt-4.1", input="Weather in Paris?", tools=[WEATHER]
            )
            request_id, response = raw.headers["helicone-id"], raw.parse()
    call = response.output[0]
    assert call.type == "function_call"
    row = await read_back(http, gateway, request_id)
    assert row["tool_calls"] == [
        {"id": call.call_id, "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}
    ]
    assert row["response_text"] is None and row["finish_reason"] == "completed"
    assert row["completion_tokens"] == response.usage.output_tokens if response.usage else False


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_summary_and_reasoning_tokens(
    gateway: Gateway, http: aiohttp.ClientSession, stream: bool
) -> None:
    async with client(gateway) as api:
        kwargs: dict[str, Any] = {
            "model": "o4-mini",
            "input": "echo: thought through",
            "reasoning": {"summary": "auto"},
        }
        if stream:
            events = await api.responses.create(**kwargs, stream=True)
            request_id = events.response.headers["helicone-id"]
            response = [e async for e in events][-1].response
        else:
            raw = await api.responses.with_raw_response.create(**kwargs)
            request_id, response = raw.headers["helicone-id"], raw.parse()
    assert response.usage is not None
    reasoning = response.usage.output_tokens_details.reasoning_tokens
    row = await read_back(http, gateway, request_id)
    assert row["reasoning_tokens"] == reasoning > 0
    assert row["completion_tokens"] == response.usage.output_tokens  # the reasoning tokens are output tokens
    assert row["response_text"] == "thought through"  # the summary is not the answer
    assert row["response_body"]["output"][0]["summary"] == [{"type": "summary_text", "text": REASONING_SUMMARY}]
    uncached = response.usage.input_tokens
    assert row["cost"] == pytest.approx((uncached * 1.1 + response.usage.output_tokens * 4.4) / 1e6)


@pytest.mark.parametrize("stream", [False, True])
async def test_incomplete_answer_says_why(gateway: Gateway, http: aiohttp.ClientSession, stream: bool) -> None:
    async with client(gateway) as api:
        kwargs: dict[str, Any] = {"model": "gpt-4.1", "input": "echo: far too many words here", "max_output_tokens": 2}
        if stream:
            events = await api.responses.create(**kwargs, stream=True)
            request_id = events.response.headers["helicone-id"]
            last = [e async for e in events][-1]
            assert last.type == "response.incomplete"
        else:
            raw = await api.responses.with_raw_response.create(**kwargs)
            request_id = raw.headers["helicone-id"]
    row = await read_back(http, gateway, request_id)
    assert row["finish_reason"] == "max_output_tokens" and row["response_text"] == "far too"
    assert row["response_body"]["status"] == "incomplete"
    assert row["completion_tokens"] == 2 and row["cost"] is not None


@pytest.mark.parametrize("stream", [False, True])
async def test_failed_response(gateway: Gateway, http: aiohttp.ClientSession, stream: bool) -> None:
    async with client(gateway, "response-failed") as api:
        if stream:
            events = await api.responses.create(model="gpt-4.1", input="hi", stream=True)
            request_id = events.response.headers["helicone-id"]
            assert [e async for e in events][-1].type == "response.failed"
        else:
            raw = await api.responses.with_raw_response.create(model="gpt-4.1", input="hi")
            request_id = raw.headers["helicone-id"]
    row = await read_back(http, gateway, request_id)
    assert row["finish_reason"] == "failed" and row["response_text"] is None
    assert row["response_body"]["error"] == FAILED_ERROR


async def test_stream_error_event_and_cut_off_stream_are_rebuilt(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with client(gateway, "stream-error") as api:
        stream = await api.responses.create(model="gpt-4.1", input="echo: said before it broke", stream=True)
        request_id = stream.response.headers["helicone-id"]
        events = [event async for event in stream]
    assert events[-1].type == "error"
    row = await read_back(http, gateway, request_id)
    assert row["finish_reason"] == "failed" and row["response_text"] == "said before it broke"
    assert row["response_body"]["error"] == {"code": "server_error", "message": "stream broke"}

    async with client(gateway, "cut-stream") as api:
        stream = await api.responses.create(model="gpt-4.1", input="echo: no terminal event", stream=True)
        request_id = stream.response.headers["helicone-id"]
        async for _event in stream:
            pass
    row = await read_back(http, gateway, request_id)
    # Rebuilt from the finished items: the text is all there, and the response never said it completed.
    assert row["response_text"] == "no terminal event" and row["finish_reason"] == "in_progress"


async def test_background_response_and_its_retrieval(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with client(gateway) as api:
        raw = await api.responses.with_raw_response.create(model="gpt-4.1", input="echo: later", background=True)
        queued = raw.parse()
        assert queued.status == "queued"
        got = await api.responses.with_raw_response.retrieve(queued.id)
    done = got.parse()
    assert done.status == "completed" and done.output_text == "later"
    create = await read_back(http, gateway, raw.headers["helicone-id"])
    assert create["api"] == "responses" and create["finish_reason"] == "queued" and create["response_text"] is None
    assert create["response_id"] == queued.id and create["cost"] is None  # nothing generated, nothing billed yet
    retrieval = await read_back(http, gateway, got.headers["helicone-id"])
    assert retrieval["api"] == "responses" and retrieval["request_path"] == f"/v1/responses/{queued.id}"
    assert retrieval["response_text"] == "later" and retrieval["finish_reason"] == "completed"
    assert retrieval["response_model"] == "gpt-4.1" and retrieval["request_model"] is None
    assert done.usage is not None
    assert retrieval["completion_tokens"] == done.usage.output_tokens
    assert retrieval["cost"] == pytest.approx(gpt41_cost(done.usage.input_tokens, done.usage.output_tokens))


async def test_previous_response_id_links_the_call_it_continues(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with client(gateway) as api:
        first = await api.responses.with_raw_response.create(model="gpt-4.1", input="echo: first")
        second = await api.responses.with_raw_response.create(
            model="gpt-4.1", input="echo: second", previous_response_id=first.parse().id
        )
    row = await read_back(http, gateway, second.headers["helicone-id"])
    assert row["previous_response_id"] == first.parse().id and row["response_text"] == "second"


async def test_reading_back_a_foreground_response_is_logged_but_not_billed_again(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with client(gateway) as api:
        created = await api.responses.with_raw_response.create(model="gpt-4.1", input="echo: once")
        again = await api.responses.with_raw_response.retrieve(created.parse().id)
    create = await read_back(http, gateway, created.headers["helicone-id"])
    retrieval = await read_back(http, gateway, again.headers["helicone-id"])
    assert create["cost"] > 0 and retrieval["cost"] == 0.0
    assert retrieval["response_text"] == "once" and retrieval["completion_tokens"] == create["completion_tokens"]
