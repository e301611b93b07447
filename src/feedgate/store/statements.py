"""The writes both stores apply the same way, written once: every op but the request rows themselves.

Ops apply in batch order, so a clear after a rating wins as it would one by one; consecutive ratings,
signals and scores are coalesced into a few ``executemany`` calls (a 1,000-item feedback batch is four
statements, not thousands). Statements use ``?``; each store's ``Executor`` adapts them. The response
cache's statements live here too: times are ``utc_text`` strings, which sort in time order, so expiry is a
plain text comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from feedgate.store.console_sessions import CONSOLE_SESSION_OPS, apply_console_session_op
from feedgate.store.datasets import DATASET_OPS, apply_dataset_op
from feedgate.store.dialect import Dialect, Executor
from feedgate.store.ops import (
    CacheEntry,
    DeleteScores,
    DropPending,
    InsertRequest,
    PruneBefore,
    PutCacheEntry,
    PutFeedback,
    PutProperty,
    PutScores,
    RecordRun,
    ReportRuns,
    WriteOp,
)
from feedgate.store.retention import apply_prune, drop_pending_statements

INSERT_EVENT = (
    "INSERT INTO feedback_events (target_type, target_id, kind, rating, signal, comment, user_id, "
    "metadata_json, source, datetime_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
DELETE_FEEDBACK = "DELETE FROM feedback WHERE target_type = ? AND target_id = ?"
UPSERT_FEEDBACK = (
    "INSERT INTO feedback (target_type, target_id, rating, comment, user_id, metadata_json, datetime_utc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target_type, target_id) DO UPDATE SET "
    "rating = excluded.rating, comment = excluded.comment, user_id = excluded.user_id, "
    "metadata_json = excluded.metadata_json, datetime_utc = excluded.datetime_utc"
)
UPSERT_SCORE = (
    "INSERT INTO scores (request_id, name, value, value_type, datetime_utc) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id, name) DO UPDATE SET "
    "value = excluded.value, value_type = excluded.value_type, datetime_utc = excluded.datetime_utc"
)
DELETE_SCORES = "DELETE FROM scores WHERE request_id = ?"


def delete_scores_statement(op: DeleteScores) -> tuple[str, list[str]]:
    """``DELETE_SCORES``, narrowed to the op's names when it has any, with its parameters."""
    if op.names is None:
        return DELETE_SCORES, [op.request_id]
    marks = ", ".join("?" for _ in op.names)
    return f"{DELETE_SCORES} AND name IN ({marks})", [op.request_id, *op.names]


UPSERT_PROPERTY = (
    "INSERT INTO request_properties (request_id, key, value, datetime_utc) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (request_id, key) DO UPDATE SET "
    "value = excluded.value, datetime_utc = excluded.datetime_utc"
)


UPSERT_RUN = (
    "INSERT INTO feedgate_runs (run_id, host, pid, started_utc, seen_utc, stopped_utc) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET seen_utc = excluded.seen_utc, stopped_utc = excluded.stopped_utc"
)


def feedback_run(run: Sequence[PutFeedback | PutScores]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Ratings, signals and scores as a few ``executemany`` calls, however many there are.

    Events and scores go in order, so the last write wins as if each op were applied alone; the
    current-rating table only needs each target's last explicit rating, or its clearing.
    """
    events: list[tuple[Any, ...]] = []
    current: dict[tuple[str, str], PutFeedback] = {}
    scores: list[tuple[Any, ...]] = []
    for op in run:
        if isinstance(op, PutScores):
            scores.extend(
                (op.request_id, name, value, kind, op.datetime_utc) for name, (value, kind) in op.scores.items()
            )
            continue
        rating = None if op.rating is None else int(op.rating)
        events.append(
            (
                op.target_type,
                op.target_id,
                op.kind,
                rating,
                op.signal,
                op.comment,
                op.user_id,
                op.metadata_json,
                op.source,
                op.datetime_utc,
            )
        )
        if op.kind == "explicit":
            current[(op.target_type, op.target_id)] = op
    cleared = [key for key, op in current.items() if op.rating is None]
    rated = [
        (op.target_type, op.target_id, int(op.rating), op.comment, op.user_id, op.metadata_json, op.datetime_utc)
        for op in current.values()
        if op.rating is not None
    ]
    plan = [(INSERT_EVENT, events), (DELETE_FEEDBACK, cleared), (UPSERT_FEEDBACK, rated), (UPSERT_SCORE, scores)]
    return [(sql, list(rows)) for sql, rows in plan if rows]


UPSERT_CACHE_ENTRY = (
    "INSERT INTO cache_entries (key, slot, request_id, status, headers_json, body, is_stream, created_utc, "
    "expires_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key, slot) DO UPDATE SET "
    "request_id = excluded.request_id, status = excluded.status, headers_json = excluded.headers_json, "
    "body = excluded.body, is_stream = excluded.is_stream, created_utc = excluded.created_utc, "
    "expires_utc = excluded.expires_utc"
)
DELETE_EXPIRED_CACHE = "DELETE FROM cache_entries WHERE expires_utc <= ?"
SELECT_CACHE_ENTRIES = (
    "SELECT slot, request_id, status, headers_json, body, is_stream FROM cache_entries "
    "WHERE key = ? AND expires_utc > ? ORDER BY slot"
)


def cache_entry_params(op: PutCacheEntry) -> tuple[Any, ...]:
    """``UPSERT_CACHE_ENTRY``'s parameters for one op (the same in both stores)."""
    return (
        op.key,
        op.slot,
        op.request_id,
        op.status,
        op.headers_json,
        op.body,
        int(op.is_stream),
        op.created_utc,
        op.expires_utc,
    )


class Row(Protocol):
    """A result row addressable by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


def cache_entry(row: Row) -> CacheEntry:
    """One ``SELECT_CACHE_ENTRIES`` row as a ``CacheEntry``."""
    return CacheEntry(
        slot=int(row["slot"]),
        request_id=str(row["request_id"]),
        status=int(row["status"]),
        headers_json=str(row["headers_json"]),
        body=bytes(row["body"]),
        is_stream=bool(row["is_stream"]),
    )


async def apply_other_ops(db: Executor, dialect: Dialect, ops: Sequence[WriteOp]) -> None:
    run: list[PutFeedback | PutScores] = []
    for op in ops:
        if isinstance(op, PutFeedback | PutScores):
            run.append(op)
            continue
        if run:
            await _feedback(db, run)
            run = []
        if isinstance(op, InsertRequest):
            continue  # the store inserts request rows first, in one statement of its own
        if isinstance(op, PutProperty):
            await db.execute(UPSERT_PROPERTY, (op.request_id, op.key, op.value, op.datetime_utc))
        elif isinstance(op, DeleteScores):
            await db.execute(*delete_scores_statement(op))
        elif isinstance(op, PutCacheEntry):
            await db.execute(DELETE_EXPIRED_CACHE, (op.created_utc,))
            await db.execute(UPSERT_CACHE_ENTRY, cache_entry_params(op))
        elif isinstance(op, DropPending) and op.request_ids:
            for statement in drop_pending_statements(len(op.request_ids)):
                await db.execute(statement, op.request_ids)
        elif isinstance(op, DATASET_OPS):
            await apply_dataset_op(db, dialect, op)
        elif isinstance(op, CONSOLE_SESSION_OPS):
            await apply_console_session_op(db, op)
        elif isinstance(op, RecordRun):
            await db.execute(UPSERT_RUN, (op.run_id, op.host, op.pid, op.started_utc, op.seen_utc, op.stopped_utc))
        elif isinstance(op, PruneBefore):
            await apply_prune(db, op)
        elif isinstance(op, ReportRuns) and op.run_ids:
            marks = ", ".join("?" for _ in op.run_ids)
            await db.execute(
                f"UPDATE feedgate_runs SET reported_utc = ? WHERE run_id IN ({marks})", (op.reported_utc, *op.run_ids)
            )
    if run:
        await _feedback(db, run)


async def _feedback(db: Executor, run: list[PutFeedback | PutScores]) -> None:
    for sql, rows in feedback_run(run):
        await db.executemany(sql, rows)
