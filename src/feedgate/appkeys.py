"""Typed keys for the state the app shares: one place to see what lives on the app and on each request.

A leaf module: the types are imported for the type checker only, so any module may import these keys
without importing the modules that define what they hold. ``app/`` is where each key is filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp

    from feedgate.api.feedback_notes import FeedbackObserver
    from feedgate.api.health import StoreCheck
    from feedgate.config import Settings
    from feedgate.console.sessions import ConsoleState, Viewer
    from feedgate.feedback_tokens import FeedbackTokens, Grant
    from feedgate.logrows.exchange import Exchange
    from feedgate.logrows.pricing import PriceTable
    from feedgate.ops.access_log import AccessLines
    from feedgate.ops.scrape import Scrape
    from feedgate.proxy.features.cache_backend import CacheBackend
    from feedgate.proxy.features.ratelimit import RateLimiter
    from feedgate.proxy.features.shared_state import SharedState
    from feedgate.proxy.features.supervisor_state import SupervisorState
    from feedgate.proxy.inflight import Inflight
    from feedgate.proxy.providers import Providers
    from feedgate.proxy.trace_hooks import CallTracer
    from feedgate.request_ids import RequestIds
    from feedgate.store.protocol import Store
    from feedgate.store.runs import Runs
    from feedgate.store.writer import Writer
    from feedgate.upstream.client import UpstreamClient
    from feedgate.widget.assets import WidgetAssets

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
STORE: web.AppKey[Store] = web.AppKey("store")
WRITER: web.AppKey[Writer[Exchange]] = web.AppKey("writer")
RUNS: web.AppKey[Runs] = web.AppKey("runs")
STORE_CHECK: web.AppKey[StoreCheck] = web.AppKey("store_check")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")  # feedgate's own outbound calls (webhooks)
UPSTREAM: web.AppKey[UpstreamClient] = web.AppKey("upstream")
INFLIGHT: web.AppKey[Inflight] = web.AppKey("inflight")
PRICES: web.AppKey[PriceTable] = web.AppKey("prices")
PROVIDERS: web.AppKey[Providers] = web.AppKey("providers")
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
SHARED_STATE: web.AppKey[SharedState] = web.AppKey("shared_state")
CACHE: web.AppKey[CacheBackend] = web.AppKey("cache")
SUPERVISOR: web.AppKey[SupervisorState] = web.AppKey("supervisor")  # absent unless a worker of --workers N
REQUEST_IDS: web.AppKey[RequestIds] = web.AppKey("request_ids")
ACCESS_LINES: web.AppKey[AccessLines] = web.AppKey("access_lines")
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi")  # the OpenAPI document, encoded once at start
METRICS_SCRAPE: web.AppKey[Scrape] = web.AppKey("metrics_scrape")  # absent when metrics.enabled is false
CALL_TRACER: web.AppKey[CallTracer | None] = web.AppKey("call_tracer")  # None unless tracing is on
FEEDBACK_OBSERVER: web.AppKey[FeedbackObserver] = web.AppKey("feedback_observer")  # absent: nobody watches
# On the console's sub-application only: its login state (throttle, CSRF secret, the keys' IDs).
CONSOLE_STATE: web.AppKey[ConsoleState] = web.AppKey("console_state")
FEEDBACK_TOKENS: web.AppKey[FeedbackTokens] = web.AppKey("feedback_tokens")  # absent: no feedback.token_secrets
WIDGET: web.AppKey[WidgetAssets] = web.AppKey("widget")  # the widget's files, read once at start

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
EXCHANGE: web.RequestKey[Exchange] = web.RequestKey("exchange")  # a proxied request's exchange
FEEDBACK_GRANT: web.RequestKey[Grant] = web.RequestKey("feedback_grant")  # a request made with a feedback token
TRACE_ID: web.RequestKey[str] = web.RequestKey("trace_id")  # with tracing on: the request's trace, 32 hex digits
VIEWER: web.RequestKey[Viewer] = web.RequestKey("viewer")  # a console request: who is looking, their CSRF token
