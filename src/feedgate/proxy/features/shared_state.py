"""State that several gateway instances must agree on: rate-limit counters and a small key-value cache.

Without ``redis.url`` it lives in this process (``LocalState``): one instance is exact, but N instances
behind a load balancer each count on their own, so a quota of Q lets through up to N x Q. With
``redis.url`` (``FEEDGATE_REDIS_URL``) it lives in Redis (``RedisState``) and every instance sees the same
numbers. Each counter update is one Lua script, so it is atomic however many instances call at once.

A Redis that goes away while running must not fail a client's call: counters fall back to this process
(limits then hold per instance, as without Redis), cache reads miss and cache writes are skipped; every
fallback is counted in ``RedisState.stats`` and logged. A Redis that is unreachable at start stops the
gateway with a clear message instead (``errors.SharedStateUnreachable``), as an unreachable database does.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from feedgate.config import mask_url
from feedgate.errors import SharedStateUnreachable
from feedgate.proxy.features.ratelimit import LocalRateCounter, Window

log = logging.getLogger("feedgate.shared")


class SharedState(Protocol):
    shared: bool  # True when other instances see the same state

    async def incr_window(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        """Add ``amount`` to ``key``'s fixed window; return the window's count and the seconds until it resets.

        Windows are aligned to the epoch (``floor(now / window_s)``), so instances agree on them without
        talking; ``amount=0`` reads the count.
        """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def take(self, key: str, window_s: float, limit: float, units: float, now: float) -> Window:
        """Sliding window (``proxy.ratelimit.RateCounter``): count ``units`` if the window holds < ``limit``."""

    async def add(self, key: str, window_s: float, units: float, now: float) -> None: ...

    async def close(self) -> None: ...


class LocalState(LocalRateCounter):
    """In this process only. The cache is bounded by bytes and evicts the least recently used entries."""

    shared = False

    def __init__(self, *, cache_max_bytes: int = 64 * 1024 * 1024, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.cache_max_bytes = cache_max_bytes
        self._windows_fixed: dict[str, tuple[float, int]] = {}  # key -> (window end, count)
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires at, value)
        self._cache_bytes = 0

    async def incr_window(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        now = self.clock()
        if len(self._windows_fixed) > 10_000:  # forget ended windows now and then, so idle keys free memory
            self._windows_fixed = {k: v for k, v in self._windows_fixed.items() if v[0] > now}
        end, count = self._windows_fixed.get(key, (0.0, 0))
        if now >= end:
            end, count = (math.floor(now / window_s) + 1) * window_s, 0
        count += amount
        self._windows_fixed[key] = (end, count)
        return count, end - now

    async def get(self, key: str) -> bytes | None:
        found = self._cache.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            self._drop(key)
            return None
        self._cache.move_to_end(key)
        return found[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self.cache_max_bytes:
            return
        self._drop(key)
        self._cache[key] = (self.clock() + ttl_s, value)
        self._cache_bytes += len(value)
        while self._cache_bytes > self.cache_max_bytes:
            self._drop(next(iter(self._cache)))

    def _drop(self, key: str) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= len(old[1])

    async def close(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0


# KEYS[1]: the counter's base key. Redis's own clock picks the window, so instances with drifting clocks agree.
_INCR_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local index = math.floor(now / window)
local key = KEYS[1] .. ':' .. index
local count = redis.call('INCRBY', key, ARGV[2])
if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000) end
return {count, tostring((index + 1) * window - now)}
"""
# KEYS[1]: a sorted set of "units|unique" members scored by time; KEYS[2]: their running total.
# ARGV: now, window_s, limit ('' = add without a limit), units, unique. Same semantics as LocalRateCounter.
_SLIDING = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local cutoff = now - window
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)) do
  total = total - tonumber(string.match(member, '^([^|]+)'))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if redis.call('ZCARD', KEYS[1]) == 0 then total = 0 end
local allowed, units = 1, tonumber(ARGV[4])
if ARGV[3] ~= '' and total >= tonumber(ARGV[3]) then
  allowed = 0
elseif units > 0 then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4] .. '|' .. ARGV[5])
  total = total + units
end
local ttl = math.ceil(window * 1000) + 1000
redis.call('SET', KEYS[2], tostring(total), 'PX', ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {allowed, tostring(total), first[2] or ''}
"""


@dataclass
class SharedStats:
    fallbacks: int = 0  # counter updates served by this process because Redis failed
    cache_errors: int = 0  # cache reads answered as a miss, or writes skipped, because Redis failed
    last_error: str | None = None


class RedisState:
    """State in Redis, under ``prefix``. Timeouts are short: a slow Redis costs a fallback, not a stall."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "feedgate:", timeout_s: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._incr = self.client.register_script(_INCR_WINDOW)
        self._sliding = self.client.register_script(_SLIDING)
        self.local = LocalState()
        self.stats = SharedStats()
        self._last_warning = 0.0

    async def open(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            await self.client.aclose()
            raise SharedStateUnreachable(f"cannot reach Redis at {mask_url(self.url)}: {_reason(exc)}") from None

    def _failed(self, what: str, exc: Exception) -> None:
        self.stats.last_error = _reason(exc)
        now = time.monotonic()
        if now - self._last_warning > 5:
            self._last_warning = now
            log.warning(
                "Redis failed (%s); %s in this process only (fallbacks %d, cache errors %d)",
                self.stats.last_error,
                what,
                self.stats.fallbacks,
                self.stats.cache_errors,
            )

    async def incr_window(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        try:
            count, reset = await self._incr(keys=[f"{self.prefix}win:{{{key}}}"], args=[window_s, amount])
        except (RedisError, OSError) as exc:
            self.stats.fallbacks += 1
            self._failed("counting", exc)
            return await self.local.incr_window(key, window_s, amount)
        return int(count), float(reset)

    async def _slide(self, key: str, window_s: float, limit: float | None, units: float, now: float) -> Window:
        base = f"{self.prefix}rl:{{{key}}}"
        args: list[Any] = [repr(now), window_s, "" if limit is None else limit, repr(units), uuid.uuid4().hex]
        try:
            allowed, total, first = await self._sliding(keys=[f"{base}:events", f"{base}:total"], args=args)
        except (RedisError, OSError) as exc:
            self.stats.fallbacks += 1
            self._failed("rate limits hold", exc)
            if limit is None:
                await self.local.add(key, window_s, units, now)
                return Window(True, 0.0, None)
            return await self.local.take(key, window_s, limit, units, now)
        return Window(bool(allowed), float(total), float(first) if first else None)

    async def take(self, key: str, window_s: float, limit: float, units: float, now: float) -> Window:
        return await self._slide(key, window_s, limit, units, now)

    async def add(self, key: str, window_s: float, units: float, now: float) -> None:
        await self._slide(key, window_s, None, units, now)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(f"{self.prefix}kv:{key}")
        except (RedisError, OSError) as exc:
            self.stats.cache_errors += 1
            self._failed("cache reads miss", exc)
            return None
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.client.set(f"{self.prefix}kv:{key}", value, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self.stats.cache_errors += 1
            self._failed("cache writes skipped", exc)

    async def close(self) -> None:
        await self.client.aclose()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def open_shared_state(redis_url: str | None) -> SharedState:
    if not redis_url:
        return LocalState()
    state = RedisState(redis_url)
    await state.open()
    return state
