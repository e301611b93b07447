"""Where ``Helicone-Cache-Enabled`` answers live: the store by default, Redis when ``redis.url`` is set.

In the store (SQLite or PostgreSQL) the cache is shared by every instance on that store, and writes go
through the single writer. With Redis, entries expire there by themselves and every instance sharing the
Redis sees them, whatever store each one logs to. Either way a failing cache costs a MISS, never an error.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import orjson

from feedgate.proxy.features.shared_state import RedisState
from feedgate.store.ops import CacheEntry, PutCacheEntry
from feedgate.store.protocol import Store
from feedgate.store.utc import parse_utc_text, utc_text
from feedgate.store.writer import Writer


class CacheBackend(Protocol):
    async def entries(self, key: str, bucket_max: int) -> list[CacheEntry]:
        """The unexpired answers cached under ``key``, in slots below ``bucket_max``."""

    def save(self, op: PutCacheEntry) -> None:
        """Keep an answer, without making the caller wait."""


class StoreCache:
    def __init__(self, store: Store, writer: Writer[Any]) -> None:
        self.store, self.writer = store, writer

    async def entries(self, key: str, bucket_max: int) -> list[CacheEntry]:
        return await self.store.cache_entries(key, utc_text())

    def save(self, op: PutCacheEntry) -> None:
        self.writer.put(op)


class RedisCache:
    """One Redis key per bucket slot: JSON metadata, a newline, then the body bytes."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self._saving: set[asyncio.Task[None]] = set()

    async def entries(self, key: str, bucket_max: int) -> list[CacheEntry]:
        values = await asyncio.gather(*(self.state.get(f"cache:{key}:{slot}") for slot in range(bucket_max)))
        return [entry for value in values if value is not None and (entry := _decode(value)) is not None]

    def save(self, op: PutCacheEntry) -> None:
        ttl_s = (parse_utc_text(op.expires_utc) - parse_utc_text(op.created_utc)).total_seconds()
        task = asyncio.create_task(self.state.set(f"cache:{op.key}:{op.slot}", _encode(op), ttl_s))
        # Keep a reference until it is done: an unreferenced task may be collected mid-write.
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def drain(self) -> None:
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)


def _encode(op: PutCacheEntry) -> bytes:
    meta = {
        "slot": op.slot,
        "request_id": op.request_id,
        "status": op.status,
        "headers_json": op.headers_json,
        "is_stream": op.is_stream,
    }
    return orjson.dumps(meta) + b"\n" + op.body


def _decode(value: bytes) -> CacheEntry | None:
    head, sep, body = value.partition(b"\n")
    try:
        meta: dict[str, Any] = orjson.loads(head) if sep else {}
        return CacheEntry(
            meta["slot"], meta["request_id"], meta["status"], meta["headers_json"], body, bool(meta["is_stream"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None  # a foreign or damaged value is a miss
