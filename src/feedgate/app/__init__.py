"""``create_app(settings)``: the only place where feedgate is wired together.

Routes, the middleware, the keys every part reads, and the cleanup contexts that open and close what the
app holds, in the order ``create_app`` appends them (``app/contexts.py`` says why that order). Metrics and
traces are wired from the edges (``app/observing.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from feedgate.api import datasets, feedback, health, manual_log, openapi, query, requests, stats, tokens
from feedgate.api.health import StoreCheck
from feedgate.app.contexts import (
    access_log_ctx,
    http_ctx,
    pending_sweeper_ctx,
    retention_ctx,
    runs_ctx,
    shared_state_ctx,
    store_ctx,
    tracing_ctx,
)
from feedgate.app.observing import metrics_for, observe_feedback, tracing_for, worker_snapshot
from feedgate.appkeys import (
    ACCESS_LINES,
    CALL_TRACER,
    FEEDBACK_TOKENS,
    INFLIGHT,
    OPENAPI,
    PRICES,
    PROVIDERS,
    RATE_LIMITER,
    REQUEST_IDS,
    RUNS,
    SETTINGS,
    STORE_CHECK,
    SUPERVISOR,
    WIDGET,
    WRITER,
)
from feedgate.config import Settings
from feedgate.console.application import mount_console
from feedgate.feedback_tokens import FeedbackTokens
from feedgate.logrows.pricing import PriceTable
from feedgate.middleware import answer_stamp, gateway_middleware
from feedgate.ops.access_log import AccessLines
from feedgate.ops.json_logs import JsonAccessLines
from feedgate.proxy.features.ratelimit import RateLimiter
from feedgate.proxy.handler import proxy_handler
from feedgate.proxy.inflight import Inflight
from feedgate.proxy.providers import AZURE_ROUTE, Providers
from feedgate.request_ids import RequestIds
from feedgate.store.runs import Runs
from feedgate.widget import routes as widget
from feedgate.widget.assets import load_assets
from feedgate.workers import WorkerOf, worker_ctx

# Each API module lists its routes; they must come before the proxy's catch-all routes.
API_ROUTES: tuple[Iterable[web.AbstractRouteDef], ...] = (
    feedback.routes,
    tokens.routes,
    manual_log.routes,
    query.routes,
    stats.routes,
    datasets.routes,
)


def _feedback_tokens(settings: Settings) -> FeedbackTokens | None:
    secrets = settings.feedback.token_secrets
    if not secrets:
        return None
    return FeedbackTokens([secret.get_secret_value() for secret in secrets], settings.feedback.token_ttl_s)


def create_app(settings: Settings, *, worker: WorkerOf | None = None) -> web.Application:
    """The gateway; ``worker``: this process is one of the workers of ``feedgate serve --workers N``."""
    tracing = tracing_for(settings)
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
    metrics = metrics_for(app, settings, worker)
    observe_feedback(app, metrics, tracing)
    app.cleanup_ctx.append(functools.partial(shared_state_ctx, worker))
    if tracing is not None:
        app.cleanup_ctx.append(functools.partial(tracing_ctx, tracing))
    app.cleanup_ctx.append(functools.partial(store_ctx, metrics, tracing))
    app.cleanup_ctx.append(functools.partial(runs_ctx, worker))
    app.cleanup_ctx.append(pending_sweeper_ctx)
    app.cleanup_ctx.append(functools.partial(retention_ctx, worker))
    app.cleanup_ctx.append(http_ctx)
    app.cleanup_ctx.append(access_log_ctx)
    if worker is not None:
        app.cleanup_ctx.append(worker_ctx(worker, lambda: app[SUPERVISOR], functools.partial(worker_snapshot, app)))
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
