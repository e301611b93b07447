"""Statements written once for both stores, and the helpers that adapt them to asyncpg.

Statements use ``?`` placeholders (SQLite's style); ``dollar_params`` turns them into ``$1, $2 ...`` for
PostgreSQL. ``plain_value`` turns asyncpg's result types into the plain Python values SQLite returns, so
code above the store sees the same values from both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

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
