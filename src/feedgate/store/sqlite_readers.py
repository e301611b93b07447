"""Extra SQLite read connections for the analysis queries and exports.

Why more than the store's one reader: the stats of a large store are several independent queries, and
sqlite3 releases the GIL while a query runs, so on separate connections (each with its own aiosqlite
thread) they run in parallel. WAL mode lets every reader see the last committed state without blocking
the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiosqlite


class SqliteReaders:
    def __init__(self, path: str, size: int = 4) -> None:
        self.path = path
        self.size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []
        self._opening = 0
        self._open: set[aiosqlite.Connection] = set()  # every connection made and not yet closed
        self._closing: dict[aiosqlite.Connection, asyncio.Future[None]] = {}
        self._closed = False

    async def _connect(self) -> aiosqlite.Connection:
        # Held in _open from before it starts: a caller cancelled while it opens (a client gone mid-page) or a
        # stream nobody finished would otherwise leave its thread running past close(), and that thread then
        # reports to an event loop that is gone.
        conn = aiosqlite.connect(self.path, isolation_level=None)
        self._open.add(conn)
        try:
            await conn
            await conn.execute("PRAGMA busy_timeout=5000")
            # Readers never write: a bug that tried would fail loudly instead of racing the writer.
            await conn.execute("PRAGMA query_only=1")
            # Memory-mapped reads skip a copy per page; it matters when a query scans a large index.
            await conn.execute("PRAGMA mmap_size=1073741824")
            if self._closed:  # close() ran while this one was opening
                raise RuntimeError("the store is closed")
        except BaseException:
            await self._discard(conn)
            raise
        return conn

    async def _discard(self, conn: aiosqlite.Connection) -> None:
        """Close ``conn`` once, however many callers ask at the same time.

        Why once: aiosqlite's close() run twice at once never returns (the connection's thread ends after
        the first), and a stop racing a read (close() while the read's own cleanup closes its connection)
        hung the gateway's shutdown. Later callers wait for the first one's close.
        """
        self._open.discard(conn)
        closing = self._closing.get(conn)
        if closing is None:
            closing = self._closing[conn] = asyncio.ensure_future(_close_quietly(conn))
            closing.add_done_callback(lambda _: self._closing.pop(conn, None))
        await asyncio.shield(closing)

    async def _acquire(self) -> aiosqlite.Connection:
        if self._idle.empty() and len(self._all) + self._opening < self.size:
            self._opening += 1
            try:
                conn = await self._connect()
            finally:
                self._opening -= 1
            self._all.append(conn)
            return conn
        return await self._idle.get()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = await self._acquire()
        try:
            return [tuple(row) for row in await conn.execute_fetchall(sql, params)]
        finally:
            self._idle.put_nowait(conn)

    async def stream(
        self, sql: str, params: Sequence[Any] = (), batch: int = 500
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Rows in batches from a connection of its own, so a long read never holds up the others."""
        conn = await self._connect()
        conn.row_factory = sqlite3.Row
        try:
            async with conn.execute(sql, params) as cursor:
                while rows := await cursor.fetchmany(batch):
                    yield [dict(row) for row in rows]
        finally:
            await self._discard(conn)

    async def close(self) -> None:
        """Close every connection, the pool's and any a stream or a cancelled caller still holds.

        A read still running is interrupted (readers never write, so nothing is lost): a stop does not wait
        for a long analysis query to finish.
        """
        self._closed = True
        for conn in list(self._open):
            with contextlib.suppress(Exception):  # not connected yet, or already closed
                await conn.interrupt()  # sqlite3's interrupt: safe from any thread
        for conn in [*self._open, *self._closing]:
            await self._discard(conn)
        self._all.clear()
        self._idle = asyncio.Queue()


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
