"""The embedded default store: one SQLite file in WAL mode, through aiosqlite.

Two connections: the writer's (only ``apply`` uses it, one transaction per batch) and a reader's, so
reads never queue behind a large batch and WAL lets them see the last committed state.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from feedgate.errors import RowRejected
from feedgate.store.bodies import decoded_rows
from feedgate.store.dialect import SQLITE, Dialect
from feedgate.store.migrations import MIGRATIONS, statements
from feedgate.store.ops import REQUEST_COLUMNS, CacheEntry, InsertRequest, ReclaimSpace, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.retention import FREE_PAGES, INCREMENTAL_VACUUM
from feedgate.store.rollups.keeper import RollupKeeper, finish_rollups, open_rollups
from feedgate.store.signals import Derived, Lookup, insert_derived_signals
from feedgate.store.sqlite_readers import SqliteReaders
from feedgate.store.statements import SELECT_CACHE_ENTRIES, apply_other_ops, cache_entry
from feedgate.store.utc import utc_text

log = logging.getLogger("feedgate.store")
_INSERT_FIRST_ATTEMPT = (
    f"INSERT INTO requests (attempt, {', '.join(REQUEST_COLUMNS)}) "
    f"VALUES (1, {', '.join('?' for _ in REQUEST_COLUMNS)})"
)
_INSERT_REQUEST = (
    f"INSERT INTO requests (attempt, {', '.join(REQUEST_COLUMNS)}) "
    f"SELECT COALESCE(MAX(attempt), 0) + 1, {', '.join('?' for _ in REQUEST_COLUMNS)} "
    "FROM requests WHERE request_id = ?"
)
# The earlier answer of each looked-up row, all in one statement: a statement per row cost a round trip to
# the SQLite thread each, the writer's largest cost per row for traffic with users or sessions. Newest first
# in the index's own order (time, then the row id it ends with), so the walk stops at the first match: by
# id alone, SQLite sorted every request of the conversation in the window first, for every row, and a
# conversation sent again and again (a canned first turn, a benchmark) made the writer's cost grow with it.
_PREVIOUS_SAME_CONVERSATION = """
WITH u(ord, fp, rid, since, upto, sid, uid) AS (VALUES {values})
SELECT u.ord, (
    SELECT r.request_id FROM requests r
    WHERE r.messages_fingerprint = u.fp AND r.request_id <> u.rid AND r.datetime_utc >= u.since
      AND r.datetime_utc <= u.upto
      AND ((u.sid IS NOT NULL AND r.session_id = u.sid) OR (u.uid IS NOT NULL AND r.user_id = u.uid))
      AND (r.user_id IS NOT NULL OR r.session_id IS NOT NULL)
    ORDER BY r.datetime_utc DESC, r.id DESC LIMIT 1
) FROM u
"""
# Lookups per statement: 7 parameters each, well under SQLite's 32,766.
_LOOKUPS_PER_STATEMENT = 1000


# The errors sqlite3 raises for a record's content, not for the database being unusable.
_CONTENT_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, OverflowError)


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:`` to a path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url}")
    return url[len("sqlite:///") :]


class SqliteStore(Store):
    dialect: Dialect = SQLITE

    def __init__(self, url: str, *, regenerate_window_s: float = 600.0, rollups: Sequence[str] | None = ()) -> None:
        self.path = sqlite_path(url)
        # The properties rolled up besides the fixed dimensions; None: rollups off.
        self.rollups = RollupKeeper(rollups) if rollups is not None else None
        self.regenerate_window = timedelta(seconds=regenerate_window_s)
        self._write: aiosqlite.Connection | None = None
        self._read: aiosqlite.Connection | None = None
        self._readers = SqliteReaders(self.path)

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write = await self._connect()
        # 8 KiB pages hold a typical logged exchange (2-3 KiB of bodies) with less overflow-page work:
        # about a fifth less CPU per inserted row. It only takes effect on a new, empty database.
        await self._write.execute("PRAGMA page_size=8192")
        # Pages freed by pruning go back to the file system in small steps (retention.py); like page_size,
        # this only takes effect before the first table is created.
        await self._write.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await self._write.execute("PRAGMA journal_mode=WAL")
        applied = await self._migrate(self._write)
        self._read = await self._connect()
        self._readers = SqliteReaders(self.path)  # a store opened again after close() gets readers anew
        await open_rollups(self, self.rollups, build="m010_rollups" in applied)

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA busy_timeout=5000")
        # NORMAL is durable across application crashes in WAL mode; only a power cut can lose the
        # last transactions, which is the usual trade for a log store.
        await conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    async def _migrate(self, conn: aiosqlite.Connection) -> list[str]:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS feedgate_migrations (name TEXT PRIMARY KEY, applied_utc TEXT NOT NULL)"
        )
        applied = {row[0] for row in await conn.execute_fetchall("SELECT name FROM feedgate_migrations")}
        now: list[str] = []
        for step in MIGRATIONS:
            if step.name in applied:
                continue
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements(step.sqlite):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO feedgate_migrations (name, applied_utc) VALUES (?, ?)", (step.name, utc_text())
                )
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            now.append(step.name)
        return now

    async def close(self) -> None:
        await self._readers.close()
        # Taken before the first await: a second close() at the same time finds nothing left to close.
        conns, self._read, self._write = (self._read, self._write), None, None
        for conn in conns:
            if conn is not None:
                await conn.close()

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._read is None:
            raise RuntimeError("store is not open")
        return self._read

    async def ping(self) -> None:
        await self.reader.execute_fetchall("SELECT 1")

    async def applied_migrations(self) -> list[str]:
        rows = await self.reader.execute_fetchall("SELECT name FROM feedgate_migrations ORDER BY name")
        return [row[0] for row in rows]

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        conn = self._write
        if conn is None:
            raise RuntimeError("store is not open")
        await conn.execute("BEGIN IMMEDIATE")
        try:
            inserts = [op for op in ops if isinstance(op, InsertRequest)]
            db = SqliteExecutor(conn)
            change = await self.rollups.begin(db, ops) if self.rollups is not None else None
            derived: list[Derived] = []
            if inserts:
                fresh = [op.values for op in inserts if op.fresh_id]
                if fresh:
                    await conn.executemany(_INSERT_FIRST_ATTEMPT, fresh)
                retried = [(*op.values, op.request_id) for op in inserts if not op.fresh_id]
                if retried:
                    await conn.executemany(_INSERT_REQUEST, retried)

                async def find_previous(lookups: list[tuple[int, Lookup]]) -> dict[int, str]:
                    found: dict[int, str] = {}
                    for start in range(0, len(lookups), _LOOKUPS_PER_STATEMENT):
                        part = lookups[start : start + _LOOKUPS_PER_STATEMENT]
                        values = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in part)
                        sql = _PREVIOUS_SAME_CONVERSATION.format(values=values)
                        args = [value for index, lookup in part for value in (index, *lookup)]
                        for index, request_id in await conn.execute_fetchall(sql, args):
                            if request_id is not None:
                                found[index] = request_id
                    return found

                derived = await insert_derived_signals(db, inserts, self.regenerate_window, find_previous)
            await apply_other_ops(db, SQLITE, ops)
            await finish_rollups(self.rollups, db, change, ops, derived)
            await conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite may already have rolled back (a full disk does that): a ROLLBACK would then fail
            # with "no transaction is active" and hide the real cause.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
            if isinstance(exc, _CONTENT_ERRORS):
                raise RowRejected(f"{type(exc).__name__}: {exc}") from exc
            raise
        for op in ops:
            if isinstance(op, ReclaimSpace):
                await self._reclaim(conn, op)

    async def _reclaim(self, conn: aiosqlite.Connection, op: ReclaimSpace) -> None:
        """Incremental vacuum, as a transaction of its own after the batch's: a PRAGMA that sqlite3 runs
        to its end only through executescript, which commits any open transaction first.

        The batch is committed already: a failure here must not make the writer apply it again, so it
        only leaves the pages for the next step."""
        try:
            before = await _free_pages(conn)
            await conn.executescript(INCREMENTAL_VACUUM.format(pages=int(op.pages)))
            op.freed = before - await _free_pages(conn)
        except sqlite3.Error as exc:
            log.warning(
                "incremental vacuum failed (%s: %s); the free pages stay for the next prune", type(exc).__name__, exc
            )

    async def request_attempts(self, request_id: str) -> list[dict[str, Any]]:
        rows = await self.reader.execute_fetchall(
            "SELECT * FROM requests WHERE request_id = ? ORDER BY attempt", (request_id,)
        )
        return decoded_rows(dict(row) for row in rows)

    async def requests_exist(self, request_ids: Sequence[str]) -> set[str]:
        if not request_ids:
            return set()
        found: set[str] = set()
        ids = list(dict.fromkeys(request_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.reader.execute_fetchall(
                f"SELECT DISTINCT request_id FROM requests WHERE request_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update(row[0] for row in rows)
        return found

    async def count_requests(self) -> int:
        rows = list(await self.reader.execute_fetchall("SELECT COUNT(*) FROM requests"))
        return int(rows[0][0])

    async def cache_entries(self, key: str, now_utc: str) -> list[CacheEntry]:
        rows = await self.reader.execute_fetchall(SELECT_CACHE_ENTRIES, (key, now_utc))
        return [cache_entry(row) for row in rows]

    # The reads in store/reads/ run on extra connections: see sqlite_readers.py.
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._readers.fetch(sql, params)

    def stream(
        self, sql: str, params: Sequence[Any] = (), batch: int = 500
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        return self._readers.stream(sql, params, batch)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, from the store's own reader connection."""
        rows = await self.reader.execute_fetchall(sql, params)
        return [dict(row) for row in rows]


async def _free_pages(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall(FREE_PAGES))
    return int(rows[0][0])


class SqliteExecutor:
    """The writer connection seen through ``Executor`` (statements written with ``?``)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self.conn.execute_fetchall(sql, params)]
