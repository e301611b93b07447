"""``Helicone-Cache-Enabled``: an exact-match response cache kept in the store.

The key is a hash of the provider, the upstream it is sent to, the method, path and query, the request body
byte for byte, and ``Helicone-Cache-Seed`` (which namespaces the cache; it is the way to keep tenants apart,
since credentials are not part of the key). ``Cache-Control: max-age=N`` (or ``s-maxage``) sets the lifetime:
7 days by default, 365 at most. ``Helicone-Cache-Bucket-Max-Size: N`` (1-20) keeps N different answers per key:
until all N are filled every request goes upstream and adds one, then hits pick one at random.
``Helicone-Cache-Save`` and ``Helicone-Cache-Read`` enable the two halves alone.

Only complete 2xx answers are stored, as the upstream sent them (SSE bytes for a stream, replayed as a
stream). Entries are written through the log writer, off the response path; a lookup is the one read this
feature adds before the upstream call, and one that fails or takes longer than
``proxy.cache_lookup_timeout_s`` is a MISS, never an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web
from multidict import CIMultiDict

from feedgate.config.checks import HOP_BY_HOP
from feedgate.errors import BadRequest
from feedgate.logrows.exchange import Exchange
from feedgate.proxy.features.cache_backend import CacheBackend
from feedgate.proxy.stream_usage import UsageChunkFilter
from feedgate.store.ops import CacheEntry, PutCacheEntry
from feedgate.store.utc import utc_text

log = logging.getLogger("feedgate.cache")
CACHE_ENABLED = "Helicone-Cache-Enabled"
CACHE_SAVE = "Helicone-Cache-Save"
CACHE_READ = "Helicone-Cache-Read"
BUCKET_MAX_SIZE = "Helicone-Cache-Bucket-Max-Size"
CACHE_SEED = "Helicone-Cache-Seed"
DEFAULT_TTL_S = 7 * 86_400
MAX_TTL_S = 365 * 86_400
MAX_BUCKET = 20
_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)
# Headers a replay must not repeat: framing is recomputed, cookies belong to the original caller.
_NOT_STORED = HOP_BY_HOP | {"set-cookie", "date", "helicone-id"}


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    read: bool
    save: bool
    ttl_s: int
    bucket_max: int
    seed: str


def ttl_from(cache_control: str | None) -> int:
    """Lifetime in seconds from a request's ``Cache-Control`` (``s-maxage`` wins over ``max-age``)."""
    if not cache_control:
        return DEFAULT_TTL_S
    found = {name.lower(): int(value) for name, value in _MAX_AGE.findall(cache_control)}
    seconds = found.get("s-maxage", found.get("max-age"))
    return DEFAULT_TTL_S if seconds is None else min(seconds, MAX_TTL_S)


def parse_cache(headers: Mapping[str, str]) -> CachePolicy | None:
    enabled = _true(headers.get(CACHE_ENABLED))
    read = enabled or _true(headers.get(CACHE_READ))
    save = enabled or _true(headers.get(CACHE_SAVE))
    if not read and not save:
        return None
    raw = headers.get(BUCKET_MAX_SIZE)
    bucket = 1
    if raw is not None:
        if not raw.strip().isascii() or not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_BUCKET:
            raise BadRequest(f"{BUCKET_MAX_SIZE} must be a whole number from 1 to {MAX_BUCKET}, got {raw[:40]!r}")
        bucket = int(raw)
    return CachePolicy(read, save, ttl_from(headers.get("Cache-Control")), bucket, headers.get(CACHE_SEED, ""))


def cache_key(provider: str, target: str, method: str, path_qs: str, body: bytes, seed: str) -> str:
    digest = hashlib.sha256()
    for part in (provider, target, method, path_qs, seed):
        digest.update(part.encode("utf-8", "surrogateescape"))  # a header's non-UTF-8 bytes, as they came
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Lookup:
    hit: CacheEntry | None
    slot: int  # where this request's answer goes on a miss
    latency_ms: float


async def lookup(backend: CacheBackend, key: str, policy: CachePolicy, timeout_s: float) -> Lookup:
    started = time.perf_counter()
    try:
        entries = await asyncio.wait_for(backend.entries(key, policy.bucket_max), timeout_s)
    except Exception as exc:  # includes TimeoutError: a slow or broken store costs a MISS, not an error
        log.warning("cache lookup failed, treating as a miss: %s: %s", type(exc).__name__, exc)
        entries = []
    usable = [entry for entry in entries if entry.slot < policy.bucket_max]
    taken = {entry.slot for entry in usable}
    free = [slot for slot in range(policy.bucket_max) if slot not in taken]
    hit = random.choice(usable) if policy.read and not free else None
    slot = free[0] if free else random.randrange(policy.bucket_max)
    return Lookup(hit, slot, (time.perf_counter() - started) * 1000.0)


async def replay(
    request: web.Request, entry: CacheEntry, strip_usage: bool, extra: Mapping[str, str]
) -> web.StreamResponse:
    """Answer from a cached entry: a JSON body as is, a stream as a stream."""
    headers: CIMultiDict[str] = CIMultiDict((str(k), str(v)) for k, v in orjson.loads(entry.headers_json))
    headers.update(extra)
    if not entry.is_stream:
        return web.Response(status=entry.status, body=entry.body, headers=headers)
    body = entry.body
    if strip_usage:  # the same body was rewritten to ask for usage; hide it as a live answer would
        usage_filter = UsageChunkFilter()
        body = usage_filter.feed(body) + usage_filter.flush()
    response = web.StreamResponse(status=entry.status, headers=headers)
    await response.prepare(request)
    try:
        await response.write(body)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; the hit is logged all the same
    return response


def entry_op(key: str, slot: int, policy: CachePolicy, exchange: Exchange) -> PutCacheEntry | None:
    """The write that stores this exchange's answer, or None when it must not be cached."""
    status = exchange.status
    if not policy.save or status is None or not 200 <= status < 300 or exchange.error_type is not None:
        return None
    pairs = [[k, v] for k, v in (exchange.response_headers or {}).items() if k.lower() not in _NOT_STORED]
    now = time.time()
    return PutCacheEntry(
        key=key,
        slot=slot,
        request_id=exchange.request_id,
        status=status,
        headers_json=orjson.dumps(pairs).decode(),
        body=b"".join(exchange.response_chunks),
        is_stream=exchange.is_stream,
        created_utc=utc_text(now),
        expires_utc=utc_text(now + policy.ttl_s),
    )
