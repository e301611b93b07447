"""Exports survive whatever was logged, and one that fails after it began never leaves the client waiting."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Gateway

FORMATS = ("openai-chat", "few-shot", "openai-preference", "jsonl")
ANSWER = {"choices": [{"message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}]}


async def log(http: aiohttp.ClientSession, gateway: Gateway, route: str, request: Any, response: Any) -> str:
    body = {
        "providerRequest": {"url": "https://api.example.com/v1/chat/completions", "json": request, "meta": {}},
        "providerResponse": {"json": response, "status": 200, "headers": {}},
    }
    async with http.post(f"{gateway.url}{route}", data=orjson.dumps(body)) as r:
        assert r.status == 200
        request_id: str = (await r.json())["data"]["request_id"]
    async with http.post(f"{gateway.v1}/request/{request_id}/feedback", json={"rating": True}) as r:
        assert r.status == 201
    return request_id


async def test_logged_requests_with_malformed_messages_are_left_out_of_chat_exports_not_breaking_them(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """The log keeps what a client sent, valid or not: a chat export skips what is not a conversation."""
    gw = either_gateway
    await log(http, gw, "/oai/v1/log", {"messages": [{"role": "user", "content": "Hi"}]}, ANSWER)
    odd_assistant = [{"role": "assistant", "tool_calls": 3}, {"role": "user", "content": "x"}]
    odd_answer = {"choices": [{"message": {"tool_calls": 7}}]}
    malformed = [
        ("/oai/v1/log", {"messages": 1.5}, ANSWER),
        ("/oai/v1/log", {"messages": "Hi"}, ANSWER),
        ("/oai/v1/log", {"messages": odd_assistant}, ANSWER),  # the assistant turn is dropped, the rest kept
        ("/oai/v1/log", {"messages": [{"role": "user", "content": "y"}]}, odd_answer),
        ("/anthropic/v1/log", {"messages": 2**63}, {"type": "message", "content": [{"type": "text", "text": "ok"}]}),
        ("/oai/v1/log", {"input": "Hi"}, {"object": "response", "id": "resp_1", "status": "completed", "output": 5}),
    ]
    for route, request, response in malformed:
        await log(http, gw, route, request, response)
    await gw.settled()
    for fmt in FORMATS:
        async with asyncio.timeout(10), http.get(f"{gw.v1}/export", params={"format": fmt}) as r:
            assert r.status == 200
            lines = [orjson.loads(line) for line in (await r.read()).splitlines()]
        if fmt == "jsonl":
            assert len(lines) == 1 + len(malformed)
        if fmt == "openai-chat":
            assert sorted(line["messages"][0]["content"] for line in lines) == ["Hi", "x"]
            assert all(line["messages"][1] == {"role": "assistant", "content": "Hello!"} for line in lines)


async def test_an_export_failing_after_it_began_ends_the_connection_instead_of_leaving_the_client_waiting(
    gateway: Gateway, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Its 200 is sent by then, so no error answer can follow; the client must see the export cut short."""
    request_id = await log(http, gateway, "/oai/v1/log", {"messages": [{"role": "user", "content": "Hi"}]}, ANSWER)
    await gateway.settled()
    # A row no export can read (properties that are not an object), as a damaged database might hold.
    path = gateway.settings.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE requests SET properties_json = '[1]' WHERE request_id = ?", (request_id,))
    caplog.set_level(logging.ERROR, logger="feedgate.export")
    async with asyncio.timeout(5):
        async with http.get(f"{gateway.v1}/export", params={"format": "jsonl"}) as r:
            assert r.status == 200 and r.headers["Feedgate-Export-Rows"] == "1"
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
    assert "export broke off after 0 of 1 rows" in caplog.text
    # The gateway is none the worse: the next call is answered.
    async with http.get(f"{gateway.v1}/datasets") as r:
        assert r.status == 200
