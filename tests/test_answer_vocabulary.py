"""``GET /v1/request/{id}`` reads the same for every API: ``api``, ``response_text``, ``finish_reason``,
``tool_calls`` (OpenAI chat tool calls) and both model names, for chat, Anthropic and Responses rows alike."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import openai

from conftest import Gateway, GatewayFactory

SCHEMA: dict[str, object] = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def read_back(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        row: dict[str, Any] = (await r.json())["data"]
    return row


async def test_tool_calls_read_alike_from_chat_anthropic_and_responses_rows(
    make_combined: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_combined()
    rows: dict[str, dict[str, Any]] = {}
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        chat = await api.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}],
        )
        rows["chat"] = await read_back(http, gateway, chat.headers["helicone-id"])
        responses = await api.responses.with_raw_response.create(
            model="gpt-4.1",
            input="Weather?",
            tools=[{"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": True}],
        )
        rows["responses"] = await read_back(http, gateway, responses.headers["helicone-id"])
        embedding = await api.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")
        rows["embeddings"] = await read_back(http, gateway, embedding.headers["helicone-id"])
    async with anthropic.AsyncAnthropic(base_url=f"{gateway.url}/anthropic", api_key="sk-ant", max_retries=0) as claude:
        message = await claude.messages.with_raw_response.create(
            model="claude-sonnet-4-20250514",
            max_tokens=50,
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[{"name": "get_weather", "input_schema": SCHEMA}],
        )
        rows["messages"] = await read_back(http, gateway, message.headers["helicone-id"])
    assert {kind: row["api"] for kind, row in rows.items()} == {kind: kind for kind in rows}
    for kind in ("chat", "responses", "messages"):
        calls = rows[kind]["tool_calls"]
        assert len(calls) == 1 and calls[0]["type"] == "function", kind
        assert calls[0]["function"]["name"] == "get_weather" and json.loads(calls[0]["function"]["arguments"]) == {
            "city": "fake"
        }
        assert calls[0]["id"] and rows[kind]["response_text"] is None
    assert rows["chat"]["finish_reason"] == "tool_calls" and rows["messages"]["finish_reason"] == "tool_use"
    assert rows["responses"]["finish_reason"] == "completed"
    assert rows["embeddings"]["tool_calls"] is None
    assert rows["messages"]["request_model"] == rows["messages"]["response_model"] == "claude-sonnet-4-20250514"
    assert rows["chat"]["request_model"] == "gpt-4o" == rows["chat"]["response_model"]
