"""``create_app(settings)``: the only place where feedgate is wired together."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
from aiohttp import web

from feedgate.access_log import AccessLines
from feedgate.api import datasets, feedback, manual_log, ops, query, requests, stats
from feedgate.config import Settings
from feedgate.keys import (
    ACCESS_LINES,
    CACHE,
    HTTP,
    INFLIGHT,
    PRICES,
    PROVIDERS,
    RATE_LIMITER,
    REQUEST_IDS,
    SETTINGS,
    STORE,
    UPSTREAM,
    WRITER,
)
from feedgate.middleware import gateway_middleware, stamp_request_id
from feedgate.pending import sweeper_ctx
from feedgate.pricing import PriceTable
from feedgate.proxy.cache_backend import CacheBackend, RedisCache, StoreCache
from feedgate.proxy.derive import derive_row
from feedgate.proxy.forward import proxy_handler
from feedgate.proxy.inflight import Inflight
from feedgate.proxy.providers import AZURE_ROUTE, Providers
from feedgate.proxy.ratelimit import RateLimiter
from feedgate.proxy.request_id import RequestIds
from feedgate.proxy.upstream import UpstreamClient
from feedgate.shared_state import SHARED_STATE, RedisState, shared_state_ctx
from feedgate.store import make_store
from feedgate.store.writer import Writer

log = logging.getLogger("feedgate")
API_MODULES: tuple[ApiModule, ...] = (feedback, manual_log, query, stats, datasets)


class ApiModule(Protocol):
    def add_routes(self, router: web.UrlDispatcher) -> None: ...


async def _access_log_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    app[ACCESS_LINES].flush()  # the last fifth of a second of lines


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = make_store(settings)
    await store.open()
    writer = Writer(
        store,
        functools.partial(derive_row, prices=app[PRICES]),
        queue_size=settings.database.queue_size,
        batch_max=settings.database.batch_max,
        batch_wait_s=settings.database.batch_wait_ms / 1000.0,
    )
    writer.start()
    app[STORE], app[WRITER] = store, writer
    shared = app[SHARED_STATE]
    cache: CacheBackend = RedisCache(shared) if isinstance(shared, RedisState) else StoreCache(store, writer)
    app[CACHE] = cache
    yield
    if isinstance(cache, RedisCache):
        await cache.drain()
    # In-flight requests have finished by now (aiohttp waits for them first): drain what they logged.
    await writer.stop()
    stats = writer.stats
    log.info(
        "log writer stopped: %d rows written, %d dropped (queue full), %d lost (store errors)",
        stats.written,
        stats.dropped_queue_full,
        stats.dropped_store_error,
    )
    await store.close()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
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


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.server.max_body_bytes, middlewares=[gateway_middleware])
    app[SETTINGS] = settings
    app[PRICES] = PriceTable.load({model: price.model_dump() for model, price in settings.prices.items()})
    app[PROVIDERS] = Providers.from_settings(settings)
    app[INFLIGHT] = Inflight()
    app[REQUEST_IDS] = RequestIds()
    app[RATE_LIMITER] = RateLimiter()
    app[ACCESS_LINES] = AccessLines(logging.getLogger("feedgate.access"))
    # Shared state first: if Redis is unreachable the gateway stops before it opened (and would leak) the store.
    app.cleanup_ctx.append(shared_state_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(_http_ctx)
    # Last in, so first out at shutdown: the final access lines are written before the closing messages.
    app.cleanup_ctx.append(_access_log_ctx)
    app.on_response_prepare.append(stamp_request_id)

    router = app.router
    router.add_get("/healthz", ops.healthz)
    router.add_get("/readyz", ops.readyz)
    router.add_get("/v1/request/{request_id}", requests.get_request)
    # Each API module adds its own routes; they must come before the proxy's catch-all below.
    for module in API_MODULES:
        module.add_routes(router)
    router.add_route("*", "/v1/{tail:.*}", proxy_handler, name="proxy")
    router.add_route("*", "/openai/deployments/{tail:.*}", proxy_handler, name=AZURE_ROUTE)
    provider_names = "|".join(re.escape(name) for name in sorted(app[PROVIDERS].by_name))
    router.add_route("*", "/{provider:" + provider_names + "}/{tail:.*}", proxy_handler, name="proxy-provider")
    return app
