"""The hot path: forward one request upstream and relay the answer, teeing bytes for the log.

Nothing here parses a response or waits for the database. Bodies are forwarded as bytes; compressed
answers pass through compressed (the client asked for that encoding); streams are written to the client
chunk by chunk as they arrive. When the exchange ends, however it ends, one ``Exchange`` goes on the
writer's queue.

A request with none of the Helicone feature headers (``features.FEATURE_HEADERS``) takes the plain path:
a few dictionary lookups decide that. Otherwise ``_featured`` runs the features in Helicone's order: parse
every header (400 before any connection), cache lookup, rate limit, then the call itself, over fallback
targets and with retries, relayed like a plain one. Each feature lives in its own module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from feedgate.errors import RateLimited, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from feedgate.keys import CACHE, INFLIGHT, PRICES, PROVIDERS, RATE_LIMITER, REQUEST_ID, SETTINGS, UPSTREAM, WRITER
from feedgate.proxy.cache import Lookup, cache_key, entry_op, lookup, replay
from feedgate.proxy.exchange import Exchange
from feedgate.proxy.fallbacks import override_body
from feedgate.proxy.features import FEATURE_HEADERS, Features, parse_features
from feedgate.proxy.headers import client_headers, upstream_headers
from feedgate.proxy.providers import Provider
from feedgate.proxy.retry import RetryPolicy, retryable
from feedgate.proxy.stream_usage import UsageChunkFilter, ensure_stream_usage
from feedgate.proxy.upstream import UpstreamResponse

_CLIENT_GONE = (ConnectionResetError, aiohttp.ClientConnectionResetError)
# Where clients put a provider key; when feedgate injects the provider's own key, what a client sends
# there is its feedgate key, which must never leave the gateway.
_CREDENTIALS = ("Authorization", "x-api-key", "api-key")


def _route(request: web.Request) -> tuple[Provider, str]:
    """The provider and the path (with query) to call on it."""
    match_info = request.match_info
    name = match_info.get("provider")
    provider = request.app[PROVIDERS].for_route(match_info.route.name, name)
    if provider is None:
        raise web.HTTPNotFound()
    return provider, request.raw_path if name is None else request.raw_path[len(name) + 1 :]


def _credentials(provider: Provider, headers: CIMultiDict[str], own_origin: bool) -> None:
    """Put the provider's key and extra headers in, but only for a call to the provider's own origin."""
    if provider.api_key is not None:
        for name in _CREDENTIALS:
            headers.popall(name, None)
        if own_origin:
            if provider.kind == "anthropic":
                headers["x-api-key"] = provider.api_key
            elif provider.kind == "azure":
                headers["api-key"] = provider.api_key
            else:
                headers["Authorization"] = f"Bearer {provider.api_key}"
    if own_origin:
        for name, value in provider.headers.items():
            headers[name] = value


def _usage_request(
    provider: Provider, method: str, path: str, body: bytes, headers: CIMultiDict[str], show: bool = False
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


def _exchange(request: web.Request, provider: Provider, path_qs: str, path: str, body: bytes, target: str) -> Exchange:
    return Exchange(
        request_id=request[REQUEST_ID],
        started_at=time.time(),
        provider=provider.name,
        provider_kind=provider.log_kind,
        method=request.method,
        path=path,
        query=path_qs[len(path) + 1 :],
        target_url=target,
        request_headers=request.headers,
        request_body=body,
        fresh_id="Helicone-Request-Id" not in request.headers,
    )


async def _send(
    request: web.Request,
    base_url: str,
    path_qs: str,
    headers: CIMultiDict[str],
    body: bytes,
    exchange: Exchange,
    who: str,
) -> UpstreamResponse:
    try:
        return await request.app[UPSTREAM].request(request.method, base_url, path_qs, headers, body)
    except TimeoutError:
        exchange.error_type, exchange.error_message = "upstream_timeout", "no answer from the upstream"
        raise UpstreamTimeout(f"{who} did not answer in time", code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        exchange.error_type, exchange.error_message = "upstream_unreachable", str(exc) or type(exc).__name__
        raise UpstreamUnreachable(
            f"cannot reach {who}: {exchange.error_message}", code="upstream_unreachable"
        ) from None


def _finish(request: web.Request, exchange: Exchange, started: float) -> None:
    exchange.duration_ms = (time.perf_counter() - started) * 1000.0
    request.app[INFLIGHT].discard(exchange.request_id)
    request.app[WRITER].log(exchange, exchange.request_id)


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    provider, path_qs = _route(request)
    body = await request.read()
    incoming = request.headers
    for name in FEATURE_HEADERS:
        if name in incoming:
            return await _featured(request, provider, path_qs, body)
    headers = upstream_headers(incoming)
    _credentials(provider, headers, True)
    path = path_qs.split("?", 1)[0]
    send_body, strip_usage = _usage_request(provider, request.method, path, body, headers)
    exchange = _exchange(request, provider, path_qs, path, body, provider.base_url)
    started = time.perf_counter()
    request.app[INFLIGHT].add(exchange.request_id)
    try:
        upstream = await _send(request, provider.base_url, path_qs, headers, send_body, exchange, provider.name)
        try:
            return await _relay(request, upstream, exchange, started, strip_usage)
        finally:
            upstream.release()
    finally:
        _finish(request, exchange, started)


async def _featured(request: web.Request, provider: Provider, path_qs: str, body: bytes) -> web.StreamResponse:
    app = request.app
    features = parse_features(request.headers, body, provider, app[PROVIDERS].allowed_origins)
    path = path_qs.split("?", 1)[0]
    headers = upstream_headers(request.headers)
    send_body, strip_usage = _usage_request(provider, request.method, path, body, headers, features.show_stream_usage)
    # bodyKeyOverride is applied now, so a body it cannot apply to is a 400 before any connection.
    bodies = [override_body(send_body, t.body_override) if t.body_override else send_body for t in features.targets]
    cache = features.cache
    if cache is not None:
        headers["Accept-Encoding"] = "identity"  # a cached answer is replayed to clients of any encoding
    exchange = _exchange(request, provider, path_qs, path, body, features.targets[0].base_url)
    started = time.perf_counter()
    app[INFLIGHT].add(exchange.request_id)
    extra: dict[str, str] = {}
    try:
        if cache is not None:
            targets = " ".join(t.base_url for t in features.targets)
            key = cache_key(provider.name, targets, request.method, path_qs, body, cache.seed)
            found = await lookup(app[CACHE], key, cache, app[SETTINGS].proxy.cache_lookup_timeout_s)
            if found.hit is not None:
                return await _from_cache(request, exchange, found, strip_usage)
            extra["Helicone-Cache"] = "MISS"
        grant = None
        if features.rate is not None:
            try:
                grant = await app[RATE_LIMITER].admit(features.rate)
            except RateLimited as exc:
                exchange.status, exchange.error_type, exchange.error_message = 429, "rate_limited", exc.message
                raise
            extra.update(grant.headers)
        upstream, index = await _send_targets(request, provider, features, path_qs, headers, bodies, exchange)
        if features.fallbacks:
            extra["Helicone-Fallback-Index"] = str(index)
            exchange.extra_properties["feedgate-fallback-index"] = str(index)
        try:
            response = await _relay(request, upstream, exchange, started, strip_usage, extra)
        finally:
            upstream.release()
        if cache is not None and (op := entry_op(key, found.slot, cache, exchange)) is not None:
            app[CACHE].save(op)
        if grant is not None:
            app[RATE_LIMITER].charge(grant, exchange, app[PRICES])
        return response
    finally:
        _finish(request, exchange, started)


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


async def _send_targets(
    request: web.Request,
    provider: Provider,
    features: Features,
    path_qs: str,
    base_headers: CIMultiDict[str],
    bodies: list[bytes],
    exchange: Exchange,
) -> tuple[UpstreamResponse, int]:
    """Call the targets in order until one answers with a status its entry does not fall back on."""
    last = len(features.targets) - 1
    retries = 0
    for index, target in enumerate(features.targets):
        headers = base_headers.copy()
        _credentials(provider, headers, target.own_origin)
        headers.update(target.headers)
        exchange.target_url = target.base_url
        try:
            who = provider.name if target.own_origin else target.base_url
            upstream, tried = await _send_retrying(
                request, target.base_url, path_qs, headers, bodies[index], exchange, who, features.retry
            )
        except UpstreamError:
            if index == last:
                raise
            continue
        retries += tried
        if retries:
            exchange.extra_properties["feedgate-retries"] = str(retries)
        if index < last and target.falls_back_on(upstream.status):
            await _drain(upstream)
            continue
        return upstream, index
    raise AssertionError("the last target always answers or raises")


async def _send_retrying(
    request: web.Request,
    base_url: str,
    path_qs: str,
    headers: CIMultiDict[str],
    body: bytes,
    exchange: Exchange,
    who: str,
    policy: RetryPolicy | None,
) -> tuple[UpstreamResponse, int]:
    """One target, retried on 429, 5xx and failed connections per ``Helicone-Retry-*``: (answer, retries made)."""
    retry = 0
    while True:
        exchange.error_type = exchange.error_message = None
        retry_after = None
        try:
            upstream = await _send(request, base_url, path_qs, headers, body, exchange, who)
        except UpstreamError:
            if policy is None or retry >= policy.retries:
                raise
        else:
            if policy is None or retry >= policy.retries or not retryable(upstream.status):
                return upstream, retry
            retry_after = upstream.headers.get("Retry-After")
            await _drain(upstream)
        retry += 1
        await asyncio.sleep(policy.delay_s(retry, retry_after))


async def _drain(upstream: UpstreamResponse) -> None:
    """Read and drop an answer that will not be relayed, so its connection can be reused."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        await upstream.read()
    upstream.release()


async def _relay(
    request: web.Request,
    upstream: UpstreamResponse,
    exchange: Exchange,
    started: float,
    strip_usage: bool,
    extra_headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    exchange.status = upstream.status
    exchange.response_headers = upstream.headers
    is_sse = upstream.content_type == "text/event-stream"
    headers = client_headers(upstream.headers, keep_encoding=True)
    if extra_headers:
        headers.update(extra_headers)
    if not is_sse and upstream.content_length is not None:
        try:
            data = await upstream.read()
        except TimeoutError:
            exchange.error_type = "upstream_timeout"
            raise UpstreamTimeout("the upstream stopped sending its answer", code="upstream_timeout") from None
        except aiohttp.ClientError as exc:
            exchange.error_type, exchange.error_message = "upstream_disconnected", str(exc)
            raise UpstreamUnreachable(f"the upstream broke off its answer: {exc}") from None
        exchange.response_chunks.append(data)
        if request.method == "HEAD" and upstream.content_length is not None:
            headers["Content-Length"] = str(upstream.content_length)  # what a GET would send, as HEAD promises
        return web.Response(status=upstream.status, body=data, headers=headers)

    exchange.is_stream = is_sse
    response = web.StreamResponse(status=upstream.status, headers=headers)
    chunks = exchange.response_chunks
    usage_filter = UsageChunkFilter() if strip_usage and is_sse else None
    # A reset can come from either side; only one raised while writing is the client's.
    writing = True
    try:
        await response.prepare(request)  # the client may be gone before its answer starts
        writing = False
        read_chunk = upstream.read_chunk
        while chunk := await read_chunk():
            if not chunks:
                exchange.ttft_ms = (time.perf_counter() - started) * 1000.0
            chunks.append(chunk)
            out = usage_filter.feed(chunk) if usage_filter is not None else chunk
            if out:
                writing = True
                await response.write(out)
                writing = False
        writing = True
        if usage_filter is not None:
            rest = usage_filter.flush()
            if rest:
                await response.write(rest)
        await response.write_eof()
    except (TimeoutError, aiohttp.ClientError, asyncio.IncompleteReadError, ConnectionResetError) as exc:
        if writing and isinstance(exc, _CLIENT_GONE):
            exchange.error_type = "client_disconnected"
            exchange.error_message = f"client went away after {sum(len(c) for c in chunks)} bytes"
            return response
        exchange.error_type = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_disconnected"
        exchange.error_message = str(exc) or type(exc).__name__
        # The status line is gone already: breaking the connection is the only honest signal left.
        if request.transport is not None:
            request.transport.abort()
    return response
