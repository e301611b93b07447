"""Console sessions in SQL, for both stores: the writes the writer applies, and the one read.

Rows are keyed by the SHA-256 of the session token (``console/sessions.py`` makes both), never the token.
"""

from __future__ import annotations

from typing import Any

from feedgate.store.dialect import Executor
from feedgate.store.ops import CloseConsoleSession, ConsoleSessionOp, OpenConsoleSession, TouchConsoleSession
from feedgate.store.protocol import Store

CONSOLE_SESSION_OPS = (OpenConsoleSession, TouchConsoleSession, CloseConsoleSession)


async def apply_console_session_op(db: Executor, op: ConsoleSessionOp) -> None:
    if isinstance(op, OpenConsoleSession):
        await db.execute("DELETE FROM console_sessions WHERE expires_utc <= ?", (op.datetime_utc,))
        await db.execute(
            "INSERT INTO console_sessions (session_hash, key_id, created_utc, seen_utc, expires_utc) "
            "VALUES (?, ?, ?, ?, ?)",
            (op.session_hash, op.key_id, op.datetime_utc, op.datetime_utc, op.expires_utc),
        )
    elif isinstance(op, TouchConsoleSession):
        await db.execute(
            "UPDATE console_sessions SET seen_utc = ? WHERE session_hash = ? AND seen_utc < ?",
            (op.datetime_utc, op.session_hash, op.datetime_utc),
        )
    else:
        await db.execute("DELETE FROM console_sessions WHERE session_hash = ?", (op.session_hash,))


async def console_session(store: Store, session_hash: str) -> dict[str, Any] | None:
    """The session stored under this hash (``key_id``, ``created_utc``, ``seen_utc``, ``expires_utc``), if any."""
    rows = await store.query(
        "SELECT key_id, created_utc, seen_utc, expires_utc FROM console_sessions WHERE session_hash = ?",
        (session_hash,),
    )
    return rows[0] if rows else None
