"""The SQLite write path runs in the event loop: it must never wait there, and its WAL must not grow forever."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
import openai

from conftest import GatewayFactory
from feedgate.keys import WRITER
from feedgate.store.sqlite import SqliteStore
from feedgate.store.sqlite_writes import SqliteWrites
from test_store_contract import row

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: locked"}]}


async def test_calls_are_answered_while_another_process_holds_the_write_lock(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway()
    other = sqlite3.connect(gateway.settings.database.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a maintenance script writing to the same file
    try:
        client = openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0)
        raw = await client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[arg-type]
        await asyncio.sleep(0.3)  # the writer has tried by now, and waits for the lock off the event loop
        async with http.get(f"{gateway.url}/healthz") as health:
            assert health.status == 200
        again = await client.chat.completions.create(**CHAT)  # type: ignore[arg-type]
        assert again.choices[0].message.content == "locked"
    finally:
        other.execute("COMMIT")
        other.close()
    row_logged = await gateway.row(raw.headers["helicone-id"])
    assert row_logged["status"] == 200
    stats = gateway.app[WRITER].stats
    assert stats.store_errors == 0 and stats.written == 2


async def test_checkpoints_keep_the_wal_from_growing_with_the_log(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(f"sqlite:///{path}")
    await store.open()  # migrates
    await store.close()
    writes = SqliteWrites(str(path), timedelta(minutes=10), checkpoint_every_s=0.05)
    await writes.open()
    body = os.urandom(16_000)  # incompressible, and every row its own pages
    wal = path.with_name("w.db-wal")
    written = largest_wal = 0
    try:
        for batch in range(40):
            await writes.apply([row(f"r{batch}-{n}", response_body=body) for n in range(50)])
            written += 50 * len(body)
            largest_wal = max(largest_wal, wal.stat().st_size)
            await asyncio.sleep(0.01)
    finally:
        await writes.close()
    assert written > 30_000_000
    # Without checkpoints the WAL would hold every page written (over 30 MB); with them it starts over.
    assert 0 < largest_wal < written / 4
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2000
