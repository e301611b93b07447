"""``create_app(settings)``: the only place where feedgate is wired together.

Routes, the middleware, and every resource the app holds, each opened and closed by a cleanup context in
the order below (and closed in reverse): shared state (Redis) first, so an unreachable Redis stops the
gateway before it opened the store; then the store and its writer (and the spool's leftovers), this run's
note in the store, the pending-feedback sweeper, the upstream client, and last the access log, so its final
lines are written before the closing messages. Tracing, when on, opens before the store and closes after
it: the writer ends the spans of the rows it drains at shutdown, and then the last spans are sent.

Metrics and traces observe from the edges (``ops/``): the writer's row builder is wrapped here so each
proxied exchange is counted (and its client spans ended) once, after it ended, from the row built anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from feedgate.api import datasets, feedback, health, manual_log, openapi, query, requests, stats, tokens
from feedgate.api.feedback_notes import FeedbackNote
from feedgate.api.health import StoreCheck
from feedgate.appkeys import (
    ACCESS_LINES,
    CACHE,
    CALL_TRACER,
    FEEDBACK_OBSERVER,
    FEEDBACK_TOKENS,
    HTTP,
    INFLIGHT,
    METRICS_SCRAPE,
    OPENAPI,
    PRICES,
    PROVIDERS,
    RATE_LIMITER,
    REQUEST_IDS,
    RUNS,
    SETTINGS,
    SHARED_STATE,
    STORE,
    STORE_CHECK,
    SUPERVISOR,
    UPSTREAM,
    WIDGET,
    WRITER,
)
from feedgate.config import Settings
from feedgate.console.application import mount_console
from feedgate.feedback_tokens import FeedbackTokens
from feedgate.logrows.build import build
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.middleware import answer_stamp, gateway_middleware
from feedgate.ops.access_log import AccessLines
from feedgate.ops.json_logs import JsonAccessLines
from feedgate.ops.metrics import Metrics, ModelLabels
from feedgate.ops.scrape import PendingFeedback, Scrape, StateCollector, metrics_handler, register_state
from feedgate.proxy.features.cache_backend import CacheBackend, RedisCache, StoreCache
from feedgate.proxy.features.ratelimit import RateLimiter
from feedgate.proxy.features.shared_state import RedisState, SharedState, open_shared_state
from feedgate.proxy.features.supervisor_state import SupervisorState
from feedgate.proxy.handler import proxy_handler
from feedgate.proxy.inflight import Inflight
from feedgate.proxy.providers import AZURE_ROUTE, Providers
from feedgate.request_ids import RequestIds
from feedgate.store import make_store
from feedgate.store.ops import InsertRequest
from feedgate.store.pending import sweep_once
from feedgate.store.reads.feedback import pending_count, trace_of
from feedgate.store.runs import BEAT_S, Runs
from feedgate.store.spool import Spool, recover
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer
from feedgate.upstream.client import UpstreamClient
from feedgate.widget import routes as widget
from feedgate.widget.assets import load_assets
from feedgate.workers import WorkerOf, worker_ctx

if TYPE_CHECKING:
    from feedgate.ops.tracing import Tracing

log = logging.getLogger("feedgate")
METRICS_ROUTE = "/metrics"


# Each API module lists its routes; they must come before the proxy's catch-all routes.
API_ROUTES: tuple[Iterable[web.AbstractRouteDef], ...] = (
    feedback.routes,
    tokens.routes,
    manual_log.routes,
    query.routes,
    stats.routes,
    datasets.routes,
)


async def _shared_state_ctx(worker: WorkerOf | None, app: web.Application) -> AsyncIterator[None]:
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


async def _store_ctx(metrics: Metrics | None, tracing: Tracing | None, app: web.Application) -> AsyncIterator[None]:
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
        _row_builder(app[PRICES], settings.database.max_decoded_answer_bytes, metrics, tracing),
        queue_size=settings.database.queue_size,
        queue_max_bytes=settings.database.queue_max_bytes,
        batch_max=settings.database.batch_max,
        batch_wait_s=settings.database.batch_wait_ms / 1000.0,
        spool=spool,
        on_dropped=_drop_observer(metrics, tracing),
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


async def _runs_ctx(worker: WorkerOf | None, app: web.Application) -> AsyncIterator[None]:
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


async def _pending_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
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


async def _access_log_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    app[ACCESS_LINES].flush()  # the last fifth of a second of lines


def _row_builder(
    prices: PriceTable, max_decoded_bytes: int, metrics: Metrics | None, tracing: Tracing | None
) -> Callable[[Exchange], InsertRequest]:
    """The writer's ``build_row``: build the row, then count the proxied exchange and end its spans."""

    def build_and_observe(exchange: Exchange) -> InsertRequest:
        built = build(exchange, prices, max_decoded_bytes)
        if exchange.proxied:
            exchange.model = built.model
            try:
                if metrics is not None:
                    metrics.count_call(exchange, built.model, built.billed, built.cost_usd, built.unpriced)
                if tracing is not None:
                    tracing.complete(exchange, built)
            except Exception:  # observing must never cost the row
                log.exception("metrics or traces of request %s failed", exchange.request_id)
        return built.row

    return build_and_observe


def _drop_observer(metrics: Metrics | None, tracing: Tracing | None) -> Callable[[Exchange], None] | None:
    """A call whose log record the full queue dropped is still counted (its body never parsed: model other)."""
    if metrics is None and tracing is None:
        return None

    def dropped(exchange: Exchange) -> None:
        if not exchange.proxied:
            return
        try:
            if metrics is not None:
                metrics.count_call(exchange, None)
            if tracing is not None:
                tracing.complete(exchange, None)
        except Exception:
            log.exception("metrics or traces of dropped request %s failed", exchange.request_id)

    return dropped


def _feedback_observer(app: web.Application, metrics: Metrics | None, tracing: Tracing | None) -> None:
    if metrics is None and tracing is None:
        return

    async def observe(request: web.Request, notes: Sequence[FeedbackNote]) -> None:
        try:
            if metrics is not None:
                for note in notes:
                    metrics.count_feedback(note.kind, note.value)
            if tracing is not None:
                from feedgate.ops.tracing import evaluate_notes

                await evaluate_notes(tracing, notes, functools.partial(trace_of, app[STORE]))
        except Exception:  # the feedback is committed; observing it must not turn that into an error
            log.exception("metrics or traces of feedback failed")

    app[FEEDBACK_OBSERVER] = observe


def _metrics(app: web.Application, settings: Settings, worker: WorkerOf | None) -> Metrics | None:
    if not settings.metrics.enabled:
        return None
    prices = app[PRICES]

    def price_table_name(model: str) -> str | None:
        found = prices.lookup(model)
        return found[0] if found is not None else None

    version = _version()
    metrics = Metrics(app[PROVIDERS].by_name, ModelLabels(price_table_name, settings.metrics.models))
    state = StateCollector(
        lambda: app.get(WRITER), lambda: len(app[INFLIGHT]), PendingFeedback(lambda: pending_count(app[STORE]))
    )
    register_state(metrics.registry, state, version)
    app[METRICS_SCRAPE] = Scrape(metrics, state, functools.partial(_other_workers, app) if worker else None)
    app.router.add_get(METRICS_ROUTE, metrics_handler)
    return metrics


def _worker_snapshot(app: web.Application) -> dict[str, Any]:
    """What a worker of ``--workers N`` tells its supervisor each second: its /readyz figures and metric series."""
    snapshot = health.snapshot(app)
    scrape = app.get(METRICS_SCRAPE)
    if scrape is not None:
        snapshot["series"] = scrape.metrics.series.export()
    return snapshot


async def _other_workers(app: web.Application) -> list[dict[str, Any]]:
    """The other workers' latest snapshots, for /metrics; none when the supervisor does not answer."""
    try:
        instance = await app[SUPERVISOR].instance()
    except Exception as exc:
        log.warning("/metrics counts this worker only: the supervisor did not answer (%s)", exc)
        return []
    me = os.getpid()
    return [each["snapshot"] for each in instance["workers"] if each["snapshot"] and each["pid"] != me]


def tracing_wanted(settings: Settings, environ: os._Environ[str] | dict[str, str]) -> bool:
    """``tracing.enabled``, or the standard OTLP endpoint variables (unless ``OTEL_SDK_DISABLED``)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return settings.tracing.enabled or any(
        environ.get(name) for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _tracing(settings: Settings) -> Tracing | None:
    """The tracer, imported only now: without tracing, nothing imports OpenTelemetry."""
    if not tracing_wanted(settings, os.environ):
        return None
    try:
        from feedgate.ops.tracing import Tracing
    except ImportError as exc:
        if settings.tracing.enabled:  # the settings checked it is installed; an install this broken must say so
            raise
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed; not tracing (%s)", exc)
        return None
    config = settings.tracing
    return Tracing(config.service_name, _version(), config.endpoint, config.sample_ratio, config.export_delay_ms)


async def _tracing_ctx(tracing: Tracing, app: web.Application) -> AsyncIterator[None]:
    yield
    await asyncio.to_thread(tracing.shutdown)  # sends the spans still held; blocking, so off the loop


def _feedback_tokens(settings: Settings) -> FeedbackTokens | None:
    secrets = settings.feedback.token_secrets
    if not secrets:
        return None
    return FeedbackTokens([secret.get_secret_value() for secret in secrets], settings.feedback.token_ttl_s)


def _version() -> str:
    try:
        return importlib.metadata.version("feedgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings, *, worker: WorkerOf | None = None) -> web.Application:
    """The gateway; ``worker``: this process is one of the workers of ``feedgate serve --workers N``."""
    tracing = _tracing(settings)
    middlewares: list[Middleware] = [gateway_middleware]
    if tracing is not None:
        middlewares.insert(0, tracing.middleware)  # outermost: its span sees the answer feedgate gave
    app = web.Application(client_max_size=settings.server.max_body_bytes, middlewares=middlewares)
    app[SETTINGS] = settings
    app[PRICES] = PriceTable.load({model: price.model_dump() for model, price in settings.prices.items()})
    app[PROVIDERS] = Providers.from_settings(settings)
    app[INFLIGHT] = Inflight()
    app[REQUEST_IDS] = RequestIds()
    app[RATE_LIMITER] = RateLimiter()
    app[OPENAPI] = openapi.openapi_bytes()
    app[WIDGET] = load_assets()
    app[RUNS] = Runs()
    app[STORE_CHECK] = StoreCheck()
    access_logger = logging.getLogger("feedgate.access")
    app[ACCESS_LINES] = JsonAccessLines(access_logger) if settings.log_format == "json" else AccessLines(access_logger)
    app[CALL_TRACER] = tracing
    metrics = _metrics(app, settings, worker)
    _feedback_observer(app, metrics, tracing)
    app.cleanup_ctx.append(functools.partial(_shared_state_ctx, worker))
    if tracing is not None:
        app.cleanup_ctx.append(functools.partial(_tracing_ctx, tracing))
    app.cleanup_ctx.append(functools.partial(_store_ctx, metrics, tracing))
    app.cleanup_ctx.append(functools.partial(_runs_ctx, worker))
    app.cleanup_ctx.append(_pending_sweeper_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(_access_log_ctx)
    if worker is not None:
        app.cleanup_ctx.append(worker_ctx(worker, lambda: app[SUPERVISOR], functools.partial(_worker_snapshot, app)))
    feedback_tokens = _feedback_tokens(settings)
    if feedback_tokens is not None:
        app[FEEDBACK_TOKENS] = feedback_tokens
    app.on_response_prepare.append(answer_stamp(feedback_tokens, settings.auth.cors_origins))

    router = app.router
    router.add_get("/healthz", health.healthz)
    router.add_get("/readyz", health.readyz)
    router.add_get("/openapi.json", openapi.get_openapi)
    router.add_get("/widget/feedback.js", widget.feedback_script)
    if settings.console.enabled:
        router.add_get("/widget/example", widget.example_page)
        router.add_get("/widget/example.js", widget.example_script)
    router.add_get("/v1/request/{request_id:[^/]+}", requests.get_request)
    for routes in API_ROUTES:
        router.add_routes(routes)
    mount_console(app, settings)
    router.add_route("*", "/v1/{tail:.*}", proxy_handler, name="proxy")
    router.add_route("*", "/openai/deployments/{tail:.*}", proxy_handler, name=AZURE_ROUTE)
    provider_names = "|".join(re.escape(name) for name in sorted(app[PROVIDERS].by_name))
    router.add_route("*", "/{provider:" + provider_names + "}/{tail:.*}", proxy_handler, name="proxy-provider")
    return app


async def settled(app: web.Application, timeout: float = 10.0) -> None:
    """Wait until every request in flight has finished and every log row it queued is committed."""
    async with asyncio.timeout(timeout):
        await app[INFLIGHT].idle()
        await app[WRITER].flush(timeout)
