"""The hot path: forward one request upstream and relay the answer, teeing bytes for the log.

Nothing here parses a response or waits for the database. Bodies are forwarded as bytes; compressed
answers pass through compressed (the client asked for that encoding); streams are written to the client
chunk by chunk as they arrive (``relay.py``). When the exchange ends, however it ends, one ``Exchange``
goes on the writer's queue.

A request with none of the Helicone feature headers (``features.parse.FEATURE_HEADERS``) takes the plain
path: a few dictionary lookups decide that. Otherwise the featured path runs the features in Helicone's
order: parse every header (400 before any connection), cache lookup, rate limit, then the call itself,
over fallback targets and with retries (``sending.py``), relayed like a plain one. Both paths share the
bookkeeping in ``proxy_handler``. Each feature lives in its own module under ``features/``.
"""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web
from multidict import CIMultiDict

from feedgate.appkeys import (
    CACHE,
    CALL_TRACER,
    EXCHANGE,
    INFLIGHT,
    PRICES,
    PROVIDERS,
    RATE_LIMITER,
    REQUEST_ID,
    SETTINGS,
    UPSTREAM,
    WRITER,
)
from feedgate.errors import FeedgateError, RateLimited
from feedgate.logrows.exchange import Exchange
from feedgate.proxy.features.cache import Lookup, cache_key, entry_op, lookup, replay
from feedgate.proxy.features.fallbacks import override_body
from feedgate.proxy.features.parse import FEATURE_HEADERS, Features, parse_features
from feedgate.proxy.headers import upstream_headers
from feedgate.proxy.providers import Provider
from feedgate.proxy.relay import relay
from feedgate.proxy.sending import Call, add_credentials, send, send_to_targets
from feedgate.proxy.stream_usage import ensure_stream_usage

log = logging.getLogger("feedgate")


def _route(request: web.Request) -> tuple[Provider, str]:
    """The provider and the path (with query) to call on it."""
    match_info = request.match_info
    name = match_info.get("provider")
    provider = request.app[PROVIDERS].for_route(match_info.route.name, name)
    if provider is None:
        raise web.HTTPNotFound()
    return provider, request.raw_path if name is None else request.raw_path[len(name) + 1 :]


def _usage_request(
    provider: Provider, method: str, path: str, body: bytes, headers: CIMultiDict[str], show: bool
) -> tuple[bytes, bool]:
    """The body to send (asking for stream usage where needed) and whether to hide that usage from the client."""
    if provider.log_kind != "openai" or method != "POST":
        return body, False
    rewritten = ensure_stream_usage(path, body)
    if rewritten is None:
        return body, False
    if show:
        return rewritten, False
    # The usage chunk must be found and removed, so this stream cannot arrive compressed.
    headers["Accept-Encoding"] = "identity"
    return rewritten, True


def _failed(exchange: Exchange, exc: Exception) -> None:
    """An unexpected failure: the client gets a 500 in the OpenAI shape (middleware.py), and the row says why."""
    log.exception("unexpected failure proxying request %s", exchange.request_id)
    if exchange.status is None:
        exchange.status = 500
    exchange.error_type = "internal_error"
    exchange.error_message = f"{type(exc).__name__}: {exc}"[:500]


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    provider, path_qs = _route(request)
    body = await request.read()
    incoming = request.headers
    path = path_qs.split("?", 1)[0]
    exchange = Exchange(
        request_id=request[REQUEST_ID],
        started_at=time.time(),
        provider=provider.name,
        provider_kind=provider.log_kind,
        method=request.method,
        path=path,
        query=path_qs[len(path) + 1 :],
        target_url=provider.base_url,
        request_headers=incoming,
        request_body=body,
        fresh_id="Helicone-Request-Id" not in incoming,
        proxied=True,
    )
    request[EXCHANGE] = exchange  # the JSON access line reads provider, model and trace from it
    started = time.perf_counter()
    try:
        features = None
        for name in FEATURE_HEADERS:
            if name in incoming:
                features = parse_features(incoming, body, provider, app[PROVIDERS].allowed_origins)
                break
        headers = upstream_headers(incoming)
        show_usage = features is not None and features.show_stream_usage
        send_body, strip_usage = _usage_request(provider, request.method, path, body, headers, show_usage)
        bodies: list[bytes] = []
        if features is not None:
            # bodyKeyOverride is applied now, so a body it cannot apply to is a 400 before any connection.
            bodies = [
                override_body(send_body, t.body_override) if t.body_override else send_body for t in features.targets
            ]
            if features.cache is not None:
                headers["Accept-Encoding"] = "identity"  # a cached answer is replayed to clients of any encoding
            exchange.target_url = features.targets[0].base_url
    except FeedgateError:
        raise  # a malformed Helicone header: a 400 before any call, as Helicone answers it, and not a call to log
    except Exception as exc:
        _failed(exchange, exc)
        exchange.duration_ms = (time.perf_counter() - started) * 1000.0
        app[WRITER].log(exchange)
        raise
    tracer = app[CALL_TRACER]
    if tracer is not None:
        tracer.call_started(request, exchange)
    call = Call(app[UPSTREAM], provider, request.method, path_qs, headers, send_body, exchange, tracer)
    inflight = app[INFLIGHT]
    inflight.add(exchange.request_id)
    try:
        if features is None:
            return await _plain(request, call, started, strip_usage)
        return await _featured(request, call, features, bodies, started, strip_usage)
    except FeedgateError:
        raise
    except Exception as exc:
        _failed(exchange, exc)
        raise
    finally:
        ended = time.perf_counter()
        exchange.duration_ms = (ended - started) * 1000.0
        if exchange.upstream_started is not None and exchange.status is not None:
            # From the first byte sent upstream to the end of the answer: the provider's share of the
            # duration; what is left (before the first send) is feedgate's own (feedgate_overhead_seconds).
            exchange.upstream_ms = (ended - exchange.upstream_started) * 1000.0
        if tracer is not None:
            tracer.call_ended(exchange)
        inflight.discard(exchange.request_id)
        app[WRITER].log(exchange)


async def _plain(request: web.Request, call: Call, started: float, strip_usage: bool) -> web.StreamResponse:
    provider = call.provider
    add_credentials(provider, call.headers, True)
    upstream = await send(call, provider.base_url, call.headers, call.body, provider.name)
    try:
        return await relay(request, upstream, call.exchange, started, strip_usage)
    finally:
        upstream.release()


async def _featured(
    request: web.Request, call: Call, features: Features, bodies: list[bytes], started: float, strip_usage: bool
) -> web.StreamResponse:
    app = request.app
    exchange = call.exchange
    cache = features.cache
    extra: dict[str, str] = {}
    if cache is not None:
        targets = " ".join(t.base_url for t in features.targets)
        key = cache_key(call.provider.name, targets, call.method, call.path_qs, exchange.request_body, cache.seed)
        found = await lookup(app[CACHE], key, cache, app[SETTINGS].proxy.cache_lookup_timeout_s)
        if found.hit is not None:
            exchange.cache_result = "hit"
            return await _from_cache(request, exchange, found, strip_usage)
        extra["Helicone-Cache"] = "MISS"
        if cache.read:
            exchange.cache_result = "miss"
    grant = None
    if features.rate is not None:
        try:
            grant = await app[RATE_LIMITER].admit(features.rate)
        except RateLimited as exc:
            exchange.status, exchange.error_type, exchange.error_message = 429, "rate_limited", exc.message
            raise
        extra.update(grant.headers)
    upstream, index = await send_to_targets(call, features.targets, bodies, features.retry)
    if features.fallbacks:
        extra["Helicone-Fallback-Index"] = str(index)
        exchange.extra_properties["feedgate-fallback-index"] = str(index)
    try:
        response = await relay(request, upstream, exchange, started, strip_usage, extra)
    finally:
        upstream.release()
    try:
        if cache is not None and (op := entry_op(key, found.slot, cache, exchange)) is not None:
            app[CACHE].save(op)
        if grant is not None:
            app[RATE_LIMITER].charge(grant, exchange, app[PRICES])
    except Exception:
        # The client has its answer (a stream has even ended): bookkeeping must not turn it into an error.
        log.exception("could not cache or charge request %s", exchange.request_id)
    return response


async def _from_cache(request: web.Request, exchange: Exchange, found: Lookup, strip_usage: bool) -> web.StreamResponse:
    """A cache hit: replayed, and logged as its own request pointing at the one that was cached."""
    entry = found.hit
    assert entry is not None
    exchange.status, exchange.is_stream, exchange.cache_reference_id = entry.status, entry.is_stream, entry.request_id
    exchange.response_headers = CIMultiDict((str(k), str(v)) for k, v in orjson.loads(entry.headers_json))
    exchange.response_chunks.append(entry.body)
    exchange.ttft_ms = found.latency_ms
    extra = {
        "Helicone-Cache": "HIT",
        "Helicone-Cache-Bucket-Idx": str(entry.slot),
        "Helicone-Cache-Latency": str(round(found.latency_ms)),
    }
    return await replay(request, entry, strip_usage, extra)
