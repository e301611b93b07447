"""Closing the SQLite store while reads are still opening or streaming: it closes, it never hangs.

aiosqlite's close() run twice at once on one connection never returns (its thread ends after the first),
so a stop that raced a read could hang a gateway's shutdown forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from feedgate.store.sqlite import SqliteStore
from test_store_contract import row


async def open_store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(f"sqlite:///{tmp_path / 'close.db'}")
    await store.open()
    await store.apply([row(f"r{i}", i) for i in range(300)])
    return store


async def test_close_while_reads_are_opening_their_connections(tmp_path: Path) -> None:
    for _ in range(20):  # the race needs a read whose connection is still opening when close() starts
        store = await open_store(tmp_path)
        reads = [asyncio.ensure_future(store.fetch("SELECT count(*) FROM requests")) for _ in range(4)]
        await asyncio.sleep(0)
        await asyncio.wait_for(store.close(), 10)
        done = await asyncio.gather(*reads, return_exceptions=True)
        assert all(result == [(300,)] or isinstance(result, Exception) for result in done)
        (tmp_path / "close.db").unlink()


async def test_close_while_a_stream_is_being_closed(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    streams = [store.stream("SELECT request_id FROM requests", (), 10) for _ in range(3)]
    for stream in streams:
        assert len(await anext(stream)) == 10
    closing = [asyncio.ensure_future(stream.aclose()) for stream in streams]
    await asyncio.sleep(0)
    await asyncio.wait_for(store.close(), 10)
    await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 10)
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "close.db").unlink()
