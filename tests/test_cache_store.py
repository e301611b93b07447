"""The response cache's store contract (``PutCacheEntry`` / ``cache_entries``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedgate.store.ops import CacheEntry, PutCacheEntry
from feedgate.store.protocol import Store
from feedgate.store.utc import utc_text

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return utc_text(T0 + timedelta(seconds=seconds))


def entry(key: str, slot: int, created: float, ttl: float, body: bytes = b"{}", stream: bool = False) -> PutCacheEntry:
    return PutCacheEntry(
        key=key,
        slot=slot,
        request_id=f"{key}-{slot}-{created}",
        status=200,
        headers_json='[["content-type", "application/json"]]',
        body=body,
        is_stream=stream,
        created_utc=at(created),
        expires_utc=at(created + ttl),
    )


async def test_entries_read_back_by_slot_with_bytes_intact(store: Store) -> None:
    sse = b'data: {"x":1}\n\n\x00\xff'
    await store.apply([entry("k", 1, 0, 60, sse, stream=True), entry("k", 0, 0, 60), entry("other", 0, 0, 60)])
    got = await store.cache_entries("k", at(1))
    assert [e.slot for e in got] == [0, 1]
    assert got[1] == CacheEntry(1, "k-1-0", 200, '[["content-type", "application/json"]]', sse, True)
    assert type(got[1].body) is bytes and got[0].is_stream is False


async def test_expired_entries_are_not_read_and_are_deleted_on_the_next_write(store: Store) -> None:
    await store.apply([entry("old", 0, 0, 10)])
    assert await store.cache_entries("old", at(9)) != []
    assert await store.cache_entries("old", at(10)) == []  # expiry is exclusive
    await store.apply([entry("new", 0, 20, 10)])
    assert await store.cache_entries("old", at(0)) == []  # gone, not just hidden


async def test_same_slot_is_replaced(store: Store) -> None:
    await store.apply([entry("k", 0, 0, 60, b"first")])
    await store.apply([entry("k", 0, 5, 60, b"second")])
    [only] = await store.cache_entries("k", at(6))
    assert only.body == b"second" and only.request_id == "k-0-5"
