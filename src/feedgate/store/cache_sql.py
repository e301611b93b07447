"""SQL for the response cache (``Helicone-Cache-Enabled``), written once for both stores.

Statements use ``?`` placeholders; the PostgreSQL store runs them through ``dialect.dollar_params``.
Times are ``utc_text`` strings, which sort in time order, so expiry is a plain text comparison.
"""

from __future__ import annotations

from typing import Any, Protocol

from feedgate.store.base import CacheEntry, PutCacheEntry

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
