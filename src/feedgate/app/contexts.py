"""The resources the app holds, each opened and closed by a cleanup context (``create_app`` orders them).

Shared state (Redis, or a worker's link to its supervisor) first, so an unreachable Redis stops the gateway
before it opened the store; then the store and its writer (and the spool's leftovers), this run's note in the
store, the pending-feedback sweeper, the retention pruner, the upstream client, and last the access log, so
its final lines are written before the closing messages. Tracing, when on, opens before the store and closes
after it: the writer ends the spans of the rows it drains at shutdown, and then the last spans are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from feedgate.app.observing import drop_observer, row_builder
from feedgate.appkeys import (
    ACCESS_LINES,
    CACHE,
    HTTP,
    PRICES,
    RATE_LIMITER,
    RUNS,
    SETTINGS,
    SHARED_STATE,
    STORE,
    STORE_CHECK,
    SUPERVISOR,
    UPSTREAM,
    WRITER,
)
from feedgate.logrows.exchange import Exchange
from feedgate.ops.metrics import Metrics
from feedgate.proxy.features.cache_backend import CacheBackend, RedisCache, StoreCache
from feedgate.proxy.features.shared_state import RedisState, SharedState, open_shared_state
from feedgate.proxy.features.supervisor_state import SupervisorState
from feedgate.store import make_store
from feedgate.store.bodies import BodyPacker
from feedgate.store.ops import WriteOp
from feedgate.store.pending import sweep_once
from feedgate.store.pruning import prune_before, reclaim_space
from feedgate.store.runs import BEAT_S
from feedgate.store.spool import Spool, recover
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer
from feedgate.upstream.client import UpstreamClient
from feedgate.workers import WorkerOf

if TYPE_CHECKING:
    from feedgate.ops.tracing import Tracing

log = logging.getLogger("feedgate")
PRUNE_EVERY_S = 3600.0
PRUNE_PAUSE_S = 0.02  # between batches: the writer logs what queued meanwhile
PRUNE_SUBMIT_TIMEOUT_S = 60.0


async def shared_state_ctx(worker: WorkerOf | None, app: web.Application) -> AsyncIterator[None]:
    """Rate-limit counters and the cache's Redis: with ``redis.url`` set, instances share them.

    A worker of ``--workers N`` also links to its supervisor: for its state on ``/readyz``, and, without
    Redis, for rate limits that hold across the workers.
    """
    link = SupervisorState(worker.state_path) if worker is not None else None
    if link is not None:
        await link.open()
        app[SUPERVISOR] = link
    redis_url = app[SETTINGS].redis.url
    state: SharedState = link if link is not None and not redis_url else await open_shared_state(redis_url)
    app[SHARED_STATE] = state
    if state.shared:
        app[RATE_LIMITER].counter = state
    yield
    await state.close()
    if link is not None and link is not state:
        await link.close()


async def store_ctx(metrics: Metrics | None, tracing: Tracing | None, app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = make_store(settings)
    await store.open()
    spool: Spool[Exchange] | None = None
    leftover: list[Exchange] = []
    if settings.database.spool:
        spool = Spool(Path(settings.database.spool), Exchange.to_bytes, Exchange.from_bytes)
        leftover = spool.open()
    writer: Writer[Exchange] = Writer(
        store,
        row_builder(
            app[PRICES],
            settings.database.max_decoded_answer_bytes,
            metrics,
            tracing,
            BodyPacker(settings.log.stream_events, settings.log.request_body_compress_over_bytes),
        ),
        queue_size=settings.database.queue_size,
        queue_max_bytes=settings.database.queue_max_bytes,
        batch_max=settings.database.batch_max,
        batch_wait_s=settings.database.batch_wait_ms / 1000.0,
        spool=spool,
        on_dropped=drop_observer(metrics, tracing),
        on_batch=metrics.observe_batch if metrics is not None else None,
    )
    writer.start()
    app[STORE], app[WRITER] = store, writer
    if spool is not None and leftover:
        await recover(spool, leftover, store, writer.log, lambda e: (e.request_id, utc_text(e.started_at)))
    shared = app[SHARED_STATE]
    cache: CacheBackend = RedisCache(shared) if isinstance(shared, RedisState) else StoreCache(store, writer)
    app[CACHE] = cache
    yield
    if isinstance(cache, RedisCache):
        await cache.drain()
    # In-flight requests have finished by now (aiohttp waits for them first): drain what they logged.
    app[STORE_CHECK].cancel()
    await writer.stop()
    stats = writer.stats
    lost = stats.dropped_store_error
    log.log(
        logging.ERROR if lost else logging.INFO,
        "log writer stopped: %d rows written, %d dropped (queue full), %d lost (store errors%s)%s",
        stats.written,
        stats.dropped_queue_full,
        lost,
        f": {stats.last_error}" if lost else "",
        "; the spool keeps them for the next start" if lost and writer.spool is not None else "",
    )
    await store.close()


async def runs_ctx(worker: WorkerOf | None, app: web.Application) -> AsyncIterator[None]:
    """Note this run in the store, say which earlier runs stopped uncleanly, and keep saying we are alive.

    Of the workers of ``--workers N``, worker 0 alone looks for runs that stopped uncleanly (a killed worker
    among them), so each is reported once, not once per worker.
    """
    runs = app[RUNS]
    store, writer = app[STORE], app[WRITER]
    spooled = writer.spool is not None
    reports = worker is None or worker.index == 0

    async def note() -> None:
        report = await runs.find_unclean(store, spooled=spooled) if reports else None
        await writer.submit([runs.record(), *([report] if report else [])], timeout=BEAT_S)

    async def beat_forever() -> None:
        while True:
            try:
                await note()
            except Exception as exc:  # the writer counts store failures; this only must not stop beating
                log.debug("run heartbeat not written: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(BEAT_S)

    task = asyncio.create_task(beat_forever(), name="feedgate-run-heartbeat")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if not writer.failing:  # a store that cannot write now would only delay the stop: the next start reports it
        with contextlib.suppress(Exception):
            await writer.submit(runs.record(stopped=True), timeout=2.0)


async def pending_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    """Feedback whose request never showed up is reported, then dropped, once ``feedback.pending_ttl_s`` passed."""
    ttl_s = app[SETTINGS].feedback.pending_ttl_s
    interval = min(max(ttl_s / 10, 1.0), 600.0)

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep_once(app[STORE], app[WRITER], ttl_s)
            except Exception:
                log.exception("pending-feedback sweep failed; will retry")

    task = asyncio.create_task(sweep_forever(), name="feedgate-pending-sweeper")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def retention_ctx(worker: WorkerOf | None, app: web.Application) -> AsyncIterator[None]:
    """With ``log.retention_days`` set, delete older logged requests at start and then every hour.

    Batches go through the writer one at a time, so log rows keep landing in between. Of the workers of
    ``--workers N``, worker 0 alone prunes: the others would only repeat its deletes.
    """
    days = app[SETTINGS].log.retention_days
    if days is None or (worker is not None and worker.index != 0):
        yield
        return
    writer = app[WRITER]

    async def submit(op: WriteOp) -> None:
        await writer.submit(op, timeout=PRUNE_SUBMIT_TIMEOUT_S)

    async def prune_forever() -> None:
        while True:
            try:
                before = utc_text(time.time() - days * 86400)
                totals = await prune_before(submit, before, pause_s=PRUNE_PAUSE_S)
                freed = await reclaim_space(submit, pause_s=PRUNE_PAUSE_S) if totals.requests else 0
                if totals.requests:
                    log.info(
                        "retention: deleted %d requests logged before %s (%d feedback, score and property rows); "
                        "%d free pages given back",
                        totals.requests,
                        before,
                        totals.feedback_rows,
                        freed,
                    )
            except Exception:
                log.exception("retention prune failed; will retry in an hour")
            await asyncio.sleep(PRUNE_EVERY_S)

    task = asyncio.create_task(prune_forever(), name="feedgate-retention")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].server
    # Proxied calls go through the upstream client's pools; the session is for feedgate's own outbound
    # calls (regression webhooks), which set their own timeouts.
    upstream = UpstreamClient(
        connect_timeout_s=settings.upstream_connect_timeout_s, read_timeout_s=settings.upstream_read_timeout_s
    )
    session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    app[UPSTREAM], app[HTTP] = upstream, session
    yield
    await upstream.close()
    await session.close()


async def access_log_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    app[ACCESS_LINES].flush()  # the last fifth of a second of lines


async def tracing_ctx(tracing: Tracing, app: web.Application) -> AsyncIterator[None]:
    yield
    await asyncio.to_thread(tracing.shutdown)  # sends the spans still held; blocking, so off the loop
