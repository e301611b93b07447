"""Counters and cache shared by instances: the in-process and the Redis implementation, same assertions.

Redis tests use the server at 127.0.0.1:6379 (or FEEDGATE_TEST_REDIS_URL) and are skipped when none answers.
Every test works under its own key prefix, so runs never see each other's counters.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from feedgate.errors import SharedStateUnreachable
from feedgate.proxy.features.shared_state import LocalState, RedisState, SharedState, open_shared_state
from tcpproxy import TcpProxy, free_port

REDIS_URL = os.environ.get("FEEDGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_or_skip() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        pytest.skip(f"no Redis at {REDIS_URL} ({exc}): Redis tests skipped")
    finally:
        await client.aclose()


async def drop_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[SharedState]:
    if request.param == "local":
        yield LocalState()
        return
    await redis_or_skip()
    prefix = f"fgtest:{uuid.uuid4().hex}:"
    made = RedisState(REDIS_URL, prefix=prefix)
    await made.open()
    yield made
    await made.close()
    await drop_prefix(prefix)


async def test_fixed_window_counts_then_resets(state: SharedState) -> None:
    # Start just after a window boundary so the three increments land in one 1-second window.
    _, reset = await state.incr_window("probe", 1.0, 0)
    await asyncio.sleep(reset + 0.02)
    assert [(await state.incr_window("k", 1.0))[0] for _ in range(3)] == [1, 2, 3]
    count, reset = await state.incr_window("k", 1.0, 0)
    assert count == 3 and 0 < reset <= 1.0
    assert (await state.incr_window("other", 1.0, 5))[0] == 5
    await asyncio.sleep(reset + 0.02)
    assert (await state.incr_window("k", 1.0))[0] == 1


async def test_sliding_window_admits_up_to_the_limit(state: SharedState) -> None:
    assert (await state.take("k", 10, 2, 1, now=100.0)).allowed
    assert (await state.take("k", 10, 2, 1, now=105.0)).allowed
    refused = await state.take("k", 10, 2, 1, now=109.0)
    assert not refused.allowed and refused.used == 2 and refused.oldest == 100.0
    again = await state.take("k", 10, 2, 1, now=110.5)  # the first unit left the window
    assert again.allowed and again.used == 2 and again.oldest == 105.0


async def test_costs_added_after_the_answer_count_against_the_quota(state: SharedState) -> None:
    assert (await state.take("cents", 60, 3, 0, now=1000.0)).allowed
    await state.add("cents", 60, 2.5, now=1000.5)
    window = await state.take("cents", 60, 3, 0, now=1001.0)
    assert window.allowed and window.used == 2.5
    await state.add("cents", 60, 1.25, now=1001.5)
    refused = await state.take("cents", 60, 3, 0, now=1002.0)
    assert not refused.allowed and refused.used == 3.75
    assert (await state.take("cents", 60, 3, 0, now=1061.0)).used == 1.25


async def test_concurrent_takes_never_admit_more_than_the_limit(state: SharedState) -> None:
    results = await asyncio.gather(*(state.take("burst", 60, 10, 1, now=500.0 + n / 1000) for n in range(40)))
    assert sum(window.allowed for window in results) == 10


async def test_cache_values_round_trip_and_expire(state: SharedState) -> None:
    body = b'data: {"x": 1}\n\n\x00\xff'
    await state.set("answer", body, ttl_s=0.3)
    assert await state.get("answer") == body
    assert await state.get("missing") is None
    await asyncio.sleep(0.4)
    assert await state.get("answer") is None


async def test_local_cache_evicts_the_least_recently_used_beyond_its_size() -> None:
    state = LocalState(cache_max_bytes=10)
    await state.set("a", b"aaaa", 60)
    await state.set("b", b"bbbb", 60)
    assert await state.get("a") == b"aaaa"  # "a" is now the most recently used
    await state.set("c", b"cccc", 60)
    assert await state.get("b") is None
    assert await state.get("a") == b"aaaa" and await state.get("c") == b"cccc"


async def test_without_redis_the_state_is_per_process() -> None:
    state = await open_shared_state(None)
    assert isinstance(state, LocalState) and not state.shared


async def test_two_clients_share_one_redis_counter() -> None:
    await redis_or_skip()
    prefix = f"fgtest:{uuid.uuid4().hex}:"
    a, b = RedisState(REDIS_URL, prefix=prefix), RedisState(REDIS_URL, prefix=prefix)
    await a.open()
    await b.open()
    try:
        assert (await a.take("shared", 60, 2, 1, now=10.0)).allowed
        assert (await b.take("shared", 60, 2, 1, now=11.0)).allowed
        assert not (await a.take("shared", 60, 2, 1, now=12.0)).allowed
        await a.set("k", b"v", 60)
        assert await b.get("k") == b"v"
    finally:
        await a.close()
        await b.close()
        await drop_prefix(prefix)


async def test_unreachable_redis_at_start_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(SharedStateUnreachable, match=f"cannot reach Redis at redis://127.0.0.1:{port}/0"):
        await open_shared_state(f"redis://127.0.0.1:{port}/0")


async def test_redis_going_away_falls_back_to_this_process_and_counts_it() -> None:
    await redis_or_skip()
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    relay = await TcpProxy(host_port.split(":")[0], int(host_port.split(":")[1])).start()
    prefix = f"fgtest:{uuid.uuid4().hex}:"
    state = RedisState(f"redis://127.0.0.1:{relay.port}/0", prefix=prefix, timeout_s=0.5)
    await state.open()
    try:
        await state.set("k", b"v", 60)
        assert (await state.take("limit", 60, 1, 1, now=10.0)).allowed
        await relay.cut()
        # Calls still get answers: the cache misses, and limits hold in this process meanwhile.
        assert await state.get("k") is None
        assert (await state.take("limit", 60, 1, 1, now=11.0)).allowed
        assert not (await state.take("limit", 60, 1, 1, now=12.0)).allowed
        assert state.stats.fallbacks == 2 and state.stats.cache_errors == 1 and state.stats.last_error
        await relay.restore()
        assert await state.get("k") == b"v"
        assert not (await state.take("limit", 60, 1, 1, now=13.0)).allowed  # Redis still holds the first unit
    finally:
        await state.close()
        await relay.cut()
        await drop_prefix(prefix)
