"""The SQLite write path: one plain connection that the log writer's transactions run on, in the event loop.

Why not on aiosqlite's thread like the reads: with the log writer busy, every row crossed threads twice
(``sqlite3`` releases the GIL around each step, so the loop thread and the database thread handed the GIL
and the CPU back and forth). On the referee benchmark's one pinned core that cost about 40 us per logged
row, 13-16 % of the gateway's CPU per request. A batch's inserts take about as long as building its rows,
which already happens in the loop, and the writer runs one batch at a time.

What must never happen in the loop happens elsewhere:

- Waiting for a lock: the connection's busy timeout is zero. When another process holds the write lock,
  the transaction is rolled back and run again in a worker thread, which may wait ``busy_timeout_s``.
- Checkpoints: they copy the WAL into the database file and sync it to disk, which can take long. The
  writer connection never checkpoints on its own; after a commit, at most once a second, a PASSIVE
  checkpoint runs on a separate connection in its thread. The writer waits for it (off the loop), so it
  completes and the WAL starts over instead of growing while rows keep arriving.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiosqlite

from feedgate.store.base import REQUEST_COLUMNS, InsertRequest, WriteOp, utc_text
from feedgate.store.dialect import INSERT_EVENT
from feedgate.store.ops import apply_other_ops
from feedgate.store.sql import SQLITE

_INSERT_FIRST_ATTEMPT = (
    f"INSERT INTO requests (attempt, {', '.join(REQUEST_COLUMNS)}) "
    f"VALUES (1, {', '.join('?' for _ in REQUEST_COLUMNS)})"
)
_INSERT_REQUEST = (
    f"INSERT INTO requests (attempt, {', '.join(REQUEST_COLUMNS)}) "
    f"SELECT COALESCE(MAX(attempt), 0) + 1, {', '.join('?' for _ in REQUEST_COLUMNS)} "
    "FROM requests WHERE request_id = ?"
)
_PREVIOUS_SAME_CONVERSATION = """
SELECT request_id FROM requests
WHERE messages_fingerprint = ? AND request_id <> ? AND datetime_utc >= ? AND datetime_utc <= ?
  AND ((? IS NOT NULL AND session_id = ?) OR (? IS NOT NULL AND user_id = ?))
  AND (user_id IS NOT NULL OR session_id IS NOT NULL)
ORDER BY id DESC LIMIT 1
"""
_COL = {name: index for index, name in enumerate(REQUEST_COLUMNS)}
log = logging.getLogger("feedgate.writer")

T = TypeVar("T")


def run_now(step: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await in it reaches ``_Executor``) to its end, here.

    The write steps shared with PostgreSQL (``apply_other_ops``) are coroutines because asyncpg awaits;
    on a plain sqlite3 connection nothing in them waits, so they complete in one ``send``.
    """
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("a SQLite write step tried to wait")


class _Executor:
    """A plain sqlite3 connection seen through ``datasets.Executor``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SqliteWrites:
    def __init__(
        self, path: str, regenerate_window: timedelta, *, busy_timeout_s: float = 5.0, checkpoint_every_s: float = 1.0
    ) -> None:
        self.path = path
        self.regenerate_window = regenerate_window
        self.busy_timeout_s = busy_timeout_s
        self.checkpoint_every_s = checkpoint_every_s
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._last_checkpoint = 0.0

    async def open(self) -> None:
        # check_same_thread=False: the rare transaction that must wait for a lock runs in a worker thread,
        # while the writer task awaits it, so the connection is never used from two threads at once.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn = conn
        self._checkpointer = await aiosqlite.connect(self.path, isolation_level=None)
        await self._checkpointer.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        self._last_checkpoint = time.monotonic()

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self.checkpoint()
            await self._checkpointer.close()
            self._checkpointer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("store is not open")
        try:
            self._transaction(conn, ops)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await asyncio.to_thread(self._waiting_transaction, conn, ops)
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s:
            await self.checkpoint()

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file. Never raises: the batch before it is committed already, and
        a failure here must not make the writer apply it again. The next checkpoint catches up."""
        self._last_checkpoint = time.monotonic()
        if self._checkpointer is None:
            return
        try:
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (%s); the next one will retry", exc)

    def _waiting_transaction(self, conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> None:
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        try:
            self._transaction(conn, ops)
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    def _transaction(self, conn: sqlite3.Connection, ops: Sequence[WriteOp]) -> None:
        conn.execute("BEGIN IMMEDIATE")  # outside the try: when it fails there is nothing to roll back
        try:
            inserts = [op for op in ops if isinstance(op, InsertRequest)]
            if inserts:
                fresh = [op.values for op in inserts if op.fresh_id]
                if fresh:
                    conn.executemany(_INSERT_FIRST_ATTEMPT, fresh)
                retried = [(*op.values, op.request_id) for op in inserts if not op.fresh_id]
                if retried:
                    conn.executemany(_INSERT_REQUEST, retried)
                self._derive_signals(conn, inserts)
            run_now(apply_other_ops(_Executor(conn), SQLITE, ops))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _derive_signals(self, conn: sqlite3.Connection, inserts: list[InsertRequest]) -> None:
        events: list[tuple[Any, ...]] = []
        for op in inserts:
            values = op.values
            when = values[_COL["datetime_utc"]]
            for signal in op.derived_signals:
                events.append(("request", op.request_id, "implicit", 0, signal, None, None, None, "feedgate", when))
            fingerprint = values[_COL["messages_fingerprint"]]
            session_id, user_id = values[_COL["session_id"]], values[_COL["user_id"]]
            if fingerprint is None or (session_id is None and user_id is None):
                continue
            since = utc_text(
                datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) - self.regenerate_window
            )
            rows = conn.execute(
                _PREVIOUS_SAME_CONVERSATION,
                (fingerprint, op.request_id, since, when, session_id, session_id, user_id, user_id),
            ).fetchall()
            for row in rows:
                events.append(("request", row[0], "implicit", 0, "regenerated", None, None, None, "feedgate", when))
        if events:
            conn.executemany(INSERT_EVENT, events)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY and SQLITE_LOCKED ("database is locked", "database table is locked").
    return getattr(exc, "sqlite_errorcode", None) in (5, 6) or "locked" in str(exc)
