"""Exports survive whatever was logged, and one that fails after it began never leaves the client waiting."""

from __future__ import annotations

import asyncio
import json
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
    # A row no export can read (properties that are not JSON), as a damaged database might hold.
    path = gateway.settings.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE requests SET properties_json = '{\"cut off' WHERE request_id = ?", (request_id,))
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


async def test_a_jsonl_line_holds_each_body_as_the_request_page_reads_it_one_line_per_request(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """A jsonl line writes the stored JSON as it is where it can: a body a client sent pretty-printed (line
    breaks between its tokens) must still leave one line per request, and every field reads as
    ``GET /v1/request/{id}`` gives it."""
    gw = either_gateway
    message = {"role": "user", "content": 'echo: two\nlines, a "quote" and </script>'}
    bodies = [
        json.dumps({"model": "gpt-4o-mini", "messages": [message]}, indent=2).encode(),  # line breaks
        b'{ "model" : "gpt-4o-mini",\t"messages" : [ {"role": "user", "content": "echo: spaced"} ] }',
        orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: plain"}]}),
    ]
    request_ids = []
    for n, body in enumerate(bodies):
        request_id = f"00000000-0000-4000-8000-00000000000{n}"
        headers = {
            "Authorization": "Bearer sk-test",
            "Content-Type": "application/json",
            "Helicone-Request-Id": request_id,
            "Helicone-Property-Feature": f"f{n}",
        }
        async with http.post(f"{gw.v1}/chat/completions", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()
        request_ids.append(request_id)
    await gw.settled()
    # A property set later overrides the one sent as a header, in the line as on the request's page.
    later = {"key": "feature", "value": "two\nlines"}
    async with http.put(f"{gw.v1}/request/{request_ids[1]}/property", json=later) as r:
        assert r.status == 201
    await gw.settled()
    async with http.get(f"{gw.v1}/export", params={"format": "jsonl"}) as r:
        assert r.status == 200
        lines = (await r.read()).split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1 + len(bodies)
    by_id = {line["request_id"]: line for line in map(orjson.loads, lines[:-1])}
    assert sorted(by_id) == request_ids
    for request_id, body in zip(request_ids, bodies, strict=True):
        line = by_id[request_id]
        assert line["request_body"] == orjson.loads(body)
        async with http.get(f"{gw.v1}/request/{request_id}") as r:
            page = (await r.json())["data"]
        for name in ("request_body", "response_body", "request_headers", "properties", "tool_calls"):
            assert line[name] == page[name], name
    assert [by_id[request_id]["properties"]["feature"] for request_id in request_ids] == ["f0", "two\nlines", "f2"]
