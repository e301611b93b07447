"""Responses API calls in every analysis and export path, like chat calls: exports in every format (the
conversation rebuilt from ``previous_response_id`` chains and background retrievals), the ``regenerated``
signal, and stats by prompt."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
from openai.types.responses import FunctionToolParam

from conftest import Gateway
from feedgate.cli import main

ROLES = {"system", "user", "assistant", "tool"}
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
INSTRUCTIONS = "You answer briefly."


async def rate(http: aiohttp.ClientSession, gateway: Gateway, request_id: str, up: bool) -> None:
    async with http.post(f"{gateway.v1}/request/{request_id}/feedback", json={"rating": up}) as r:
        assert r.status in (201, 202)


async def export(http: aiohttp.ClientSession, gateway: Gateway, **params: str) -> list[Any]:
    await gateway.settled()
    async with http.get(f"{gateway.v1}/export", params=params) as r:
        assert r.status == 200
        return [orjson.loads(line) for line in (await r.read()).splitlines()]


def check_chat_line(line: dict[str, Any]) -> None:
    """A valid fine-tuning line: known roles, tool calls well formed, tool results answering a call, ending
    with the assistant's answer."""
    messages = line["messages"]
    assert messages and messages[-1]["role"] == "assistant"
    calls: set[str] = set()
    for m in messages:
        assert m["role"] in ROLES
        for call in m.get("tool_calls", []):
            assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
            json.loads(call["function"]["arguments"])
            calls.add(call["id"])
        if m["role"] == "tool":
            assert m["tool_call_id"] in calls
        else:
            assert isinstance(m.get("content", ""), (str, list))


async def traffic(gateway: Gateway, http: aiohttp.ClientSession) -> dict[str, str]:
    ids: dict[str, str] = {}
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        raw = await api.responses.with_raw_response.create(
            model="gpt-4.1", instructions=INSTRUCTIONS, input="echo: plain answer"
        )
        ids["plain"] = raw.headers["helicone-id"]
        stream = await api.responses.create(
            model="gpt-4.1", input=[{"role": "user", "content": "echo: streamed answer"}], stream=True
        )
        ids["stream"] = stream.response.headers["helicone-id"]
        async for _event in stream:
            pass
        # A tool call, its result sent back in a turn that continues the first one.
        asked = await api.responses.with_raw_response.create(
            model="gpt-4.1", instructions=INSTRUCTIONS, input="Weather in Paris?", tools=[WEATHER]
        )
        call = asked.parse().output[0]
        assert call.type == "function_call"
        ids["tool"] = asked.headers["helicone-id"]
        answered = await api.responses.with_raw_response.create(
            model="gpt-4.1",
            instructions=INSTRUCTIONS,
            previous_response_id=asked.parse().id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "echo: sunny"}],
        )
        ids["tool-result"] = answered.headers["helicone-id"]
        ids["call_id"], ids["arguments"] = call.call_id, call.arguments
        background = await api.responses.with_raw_response.create(
            model="gpt-4.1", input="echo: in the background", background=True
        )
        ids["background"] = background.headers["helicone-id"]
        await api.responses.retrieve(background.parse().id)
    for key in ("plain", "stream", "tool", "tool-result", "background"):
        await rate(http, gateway, ids[key], True)
    return ids


async def test_rated_responses_calls_export_in_every_format(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    ids = await traffic(gateway, http)
    lines = await export(http, gateway, format="openai-chat", rating="positive")
    for line in lines:
        check_chat_line(line)
    by_answer = {line["messages"][-1].get("content"): line for line in lines if line["messages"][-1].get("content")}
    assert by_answer["plain answer"]["messages"] == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "echo: plain answer"},
        {"role": "assistant", "content": "plain answer"},
    ]
    assert by_answer["streamed answer"]["messages"][0] == {"role": "user", "content": "echo: streamed answer"}
    assert by_answer["in the background"]["messages"] == [
        {"role": "user", "content": "echo: in the background"},
        {"role": "assistant", "content": "in the background"},  # the answer the retrieval saw
    ]
    call = {
        "id": ids["call_id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ids["arguments"]},
    }
    # The continued turn: its earlier turn (from the log) before its own input.
    assert by_answer["sunny"]["messages"] == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": ids["call_id"], "content": "echo: sunny"},
        {"role": "assistant", "content": "sunny"},
    ]
    tool_lines = [line for line in lines if "tool_calls" in line["messages"][-1]]
    assert [line["messages"][-1]["tool_calls"] for line in tool_lines] == [[call]]
    assert tool_lines[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER["parameters"],
            },
        }
    ]
    assert len(lines) == 5

    examples = await export(http, gateway, format="few-shot", rating="positive")
    assert {"input": "echo: plain answer", "output": "plain answer", "system": INSTRUCTIONS} in examples
    assert {"input": "echo: in the background", "output": "in the background"} in examples

    full = await export(http, gateway, format="jsonl")
    apis = {row["request_id"]: row["api"] for row in full}
    assert all(apis[ids[key]] == "responses" for key in ("plain", "stream", "tool", "tool-result", "background"))
    assert len(full) == 6  # the background retrieval is a row of its own


async def test_preference_pairs_and_regenerated_signal(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    user = {"Helicone-User-Id": "u-1"}
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        first = await api.responses.with_raw_response.create(
            model="gpt-4.1", instructions=INSTRUCTIONS, input="echo: try one", extra_headers=user
        )
        # The same conversation sent again by the same user: the first answer did not do.
        again = await api.responses.with_raw_response.create(
            model="gpt-4.1",
            instructions=INSTRUCTIONS,
            input="echo: try one",
            extra_headers={**user, "X-Fake-Behavior": "answered-model:gpt-4.1-2025-04-14"},
        )
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{first.headers['helicone-id']}/feedback") as r:
        signals = (await r.json())["data"]["signals"]
    assert [s["signal"] for s in signals] == ["regenerated"]
    await rate(http, gateway, first.headers["helicone-id"], False)
    await rate(http, gateway, again.headers["helicone-id"], True)
    # The answers are the same text, so no preference pair; a different answer makes one.
    assert await export(http, gateway, format="openai-preference") == []
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        other = await api.responses.with_raw_response.create(
            model="gpt-4.1", instructions=INSTRUCTIONS, input="echo: try one", max_output_tokens=1
        )
    await rate(http, gateway, other.headers["helicone-id"], False)
    pairs = await export(http, gateway, format="openai-preference")
    assert pairs == [
        {
            "input": {
                "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": "echo: try one"}]
            },
            "preferred_output": [{"role": "assistant", "content": "try one"}],
            "non_preferred_output": [{"role": "assistant", "content": "try"}],
        }
    ]


async def test_stats_by_prompt_group_responses_instructions_with_chat_system_prompts(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        for text in ("one", "two"):
            await api.responses.create(model="gpt-4.1", instructions=INSTRUCTIONS, input=f"echo: {text}")
        await api.chat.completions.create(
            model="gpt-4o", messages=[{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": "hi"}]
        )
        await api.responses.create(
            model="gpt-4.1", input=[{"role": "developer", "content": "Other rules."}, {"role": "user", "content": "hi"}]
        )
    await gateway.settled()
    async with http.get(f"{gateway.v1}/feedback/stats", params={"group_by": "prompt"}) as r:
        groups = (await r.json())["data"]["groups"]
    assert sorted(g["requests"] for g in groups) == [1, 3]  # one system prompt, whichever API carried it


async def test_cli_export_writes_the_rated_responses_calls(
    gateway: Gateway, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The issue's report: ``feedgate export --format openai-chat`` wrote 0 lines for rated Responses calls."""
    await traffic(gateway, http)
    await gateway.settled()
    out = tmp_path / "rated.jsonl"
    args = ["export", "--format", "openai-chat", "--rating", "positive", "-o", str(out)]
    assert await asyncio.to_thread(main, [*args, "--database-url", gateway.settings.database.url]) == 0
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 5
    for line in lines:
        check_chat_line(line)


async def test_responses_calls_among_chat_calls_keep_their_place_in_an_export(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """An export reads a chunk's Responses calls (and the turns they continue) ahead of the chat calls around
    them; the lines still come in the rows' order."""
    ids: list[str] = []
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:

        async def chat(text: str) -> None:
            raw = await api.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"echo: {text}"}]
            )
            ids.append(raw.headers["helicone-id"])

        await chat("one")
        asked = await api.responses.with_raw_response.create(
            model="gpt-4.1", input="Weather in Paris?", tools=[WEATHER]
        )
        call = asked.parse().output[0]
        assert call.type == "function_call"
        ids.append(asked.headers["helicone-id"])
        await chat("two")
        answered = await api.responses.with_raw_response.create(
            model="gpt-4.1",
            previous_response_id=asked.parse().id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "echo: sunny"}],
        )
        ids.append(answered.headers["helicone-id"])
        await chat("three")
    for request_id in ids:
        await rate(http, gateway, request_id, True)
    lines = await export(http, gateway, format="openai-chat", rating="positive")
    answers = [line["messages"][-1].get("content") or "a tool call" for line in lines]
    assert answers == ["one", "a tool call", "two", "sunny", "three"]
    assert lines[3]["messages"][:2] == [
        {"role": "user", "content": "Weather in Paris?"},  # the turn it continues, from the log
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
    ]
