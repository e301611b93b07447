"""Statements written once for both stores, and the helpers that adapt them to asyncpg.

Statements use ``?`` placeholders (SQLite's style); ``dollar_params`` turns them into ``$1, $2 ...`` for
PostgreSQL. ``plain_value`` turns asyncpg's result types into the plain Python values SQLite returns, so
code above the store sees the same values from both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from feedgate.store.base import PutFeedback, PutScores

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
UPSERT_PROPERTY = (
    "INSERT INTO request_properties (request_id, key, value, datetime_utc) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (request_id, key) DO UPDATE SET "
    "value = excluded.value, datetime_utc = excluded.datetime_utc"
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


# A quoted literal is skipped whole, so a '?' inside one is never taken for a placeholder.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")


def dollar_params(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2 ...``, in order."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(number, sql)


def plain_value(value: Any) -> Any:
    """asyncpg's ``Decimal`` (from SUM/AVG of integers) and ``memoryview`` as SQLite would return them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
