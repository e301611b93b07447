"""SQLite held by another process: proxied calls are still answered and their rows still land."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import openai

from conftest import Chat, GatewayFactory
from feedgate.appkeys import WRITER

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: locked"}]}


async def test_calls_are_answered_while_another_process_holds_the_write_lock(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway()
    other = sqlite3.connect(gateway.settings.database.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a maintenance script writing to the same file
    try:
        async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as client:
            raw = await client.chat.completions.with_raw_response.create(**CHAT)
            await asyncio.sleep(0.3)  # the writer has tried by now, and waits for the lock in its thread
            async with http.get(f"{gateway.url}/healthz") as health:
                assert health.status == 200
            again = await client.chat.completions.create(**CHAT)
            assert again.choices[0].message.content == "locked"
    finally:
        other.execute("COMMIT")
        other.close()
    row_logged = await gateway.row(raw.headers["helicone-id"])
    assert row_logged["status"] == 200
    stats = gateway.app[WRITER].stats
    assert stats.store_errors == 0 and stats.written == 2
