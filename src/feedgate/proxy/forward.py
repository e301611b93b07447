"""The hot path: forward one request upstream and relay the answer, teeing bytes for the log.

Nothing here parses a response or waits for the database. Bodies are forwarded as bytes; compressed
answers pass through compressed (the client asked for that encoding); streams are written to the client
chunk by chunk as they arrive. When the exchange ends, however it ends, one ``Exchange`` goes on the
writer's queue.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from feedgate.errors import UpstreamTimeout, UpstreamUnreachable
from feedgate.keys import HTTP, INFLIGHT, PROVIDERS, REQUEST_ID, WRITER
from feedgate.proxy.exchange import Exchange
from feedgate.proxy.headers import client_headers, upstream_headers
from feedgate.proxy.providers import Provider
from feedgate.proxy.stream_usage import UsageChunkFilter, ensure_stream_usage

_CLIENT_GONE = (ConnectionResetError, aiohttp.ClientConnectionResetError)


def _route(request: web.Request) -> tuple[Provider, str]:
    """The provider and the path (with query) to call on it."""
    providers = request.app[PROVIDERS]
    name = request.match_info.get("provider")
    if name is None:
        return providers.default, request.raw_path
    provider = providers.get(name)
    if provider is None:
        raise web.HTTPNotFound()
    return provider, request.raw_path[len(name) + 1 :]


def _auth_headers(provider: Provider, headers: CIMultiDict[str]) -> None:
    if provider.api_key is None:
        return
    if provider.kind == "anthropic":
        headers["x-api-key"] = provider.api_key
        headers.popall("Authorization", None)
    elif provider.kind == "azure":
        headers["api-key"] = provider.api_key
        headers.popall("Authorization", None)
    else:
        headers["Authorization"] = f"Bearer {provider.api_key}"


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    provider, path_qs = _route(request)
    request_id = request[REQUEST_ID]
    body = await request.read()
    headers = upstream_headers(request.headers)
    _auth_headers(provider, headers)
    for name, value in provider.headers.items():
        headers[name] = value
    path = path_qs.split("?", 1)[0]
    send_body = body
    strip_usage = False
    if provider.log_kind == "openai" and request.method == "POST":
        rewritten = ensure_stream_usage(path, body)
        if rewritten is not None:
            send_body, strip_usage = rewritten, True
            # The usage chunk must be found and removed, so this stream cannot arrive compressed.
            headers["Accept-Encoding"] = "identity"
    url = provider.base_url + path_qs
    exchange = Exchange(
        request_id=request_id,
        started_at=time.time(),
        provider=provider.name,
        provider_kind=provider.log_kind,
        method=request.method,
        path=path,
        query=path_qs[len(path) + 1 :],
        target_url=provider.base_url,
        request_headers=request.headers,
        request_body=body,
    )
    started = time.perf_counter()
    inflight = request.app[INFLIGHT]
    inflight.add(request_id)
    try:
        try:
            upstream = await request.app[HTTP].request(
                request.method, url, headers=headers, data=send_body, allow_redirects=False
            )
        except TimeoutError:
            exchange.error_type, exchange.error_message = "upstream_timeout", "no answer from the upstream"
            raise UpstreamTimeout(f"{provider.name} did not answer in time", code="upstream_timeout") from None
        except aiohttp.ClientError as exc:
            exchange.error_type, exchange.error_message = "upstream_unreachable", str(exc) or type(exc).__name__
            raise UpstreamUnreachable(
                f"cannot reach {provider.name}: {exchange.error_message}", code="upstream_unreachable"
            ) from None
        try:
            return await _relay(request, upstream, exchange, started, strip_usage)
        finally:
            upstream.release()
    finally:
        exchange.duration_ms = (time.perf_counter() - started) * 1000.0
        inflight.discard(request_id)
        request.app[WRITER].log(exchange, request_id)


async def _relay(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    exchange: Exchange,
    started: float,
    strip_usage: bool,
) -> web.StreamResponse:
    exchange.status = upstream.status
    exchange.response_headers = upstream.headers
    is_sse = upstream.content_type == "text/event-stream"
    headers = client_headers(upstream.headers, keep_encoding=True)
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
        return web.Response(status=upstream.status, body=data, headers=headers)

    exchange.is_stream = is_sse
    response = web.StreamResponse(status=upstream.status, headers=headers)
    await response.prepare(request)
    chunks = exchange.response_chunks
    usage_filter = UsageChunkFilter() if strip_usage and is_sse else None
    try:
        async for chunk in upstream.content.iter_any():
            if not chunks:
                exchange.ttft_ms = (time.perf_counter() - started) * 1000.0
            chunks.append(chunk)
            out = usage_filter.feed(chunk) if usage_filter is not None else chunk
            if out:
                await response.write(out)
        if usage_filter is not None:
            rest = usage_filter.flush()
            if rest:
                await response.write(rest)
        await response.write_eof()
    except _CLIENT_GONE:
        exchange.error_type = "client_disconnected"
        exchange.error_message = f"client went away after {sum(len(c) for c in chunks)} bytes"
    except (TimeoutError, aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
        exchange.error_type = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_disconnected"
        exchange.error_message = str(exc) or type(exc).__name__
        # The status line is gone already: breaking the connection is the only honest signal left.
        if request.transport is not None:
            request.transport.abort()
    return response
