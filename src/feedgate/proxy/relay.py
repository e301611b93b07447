"""Relaying an upstream's answer to the client, teeing every byte into the exchange for the log.

A body with a length is read whole and answered in one piece; a stream (SSE, or a body without a length)
is written to the client piece by piece as it arrives. Nothing here parses the answer. Reading can fail
only with the upstream client's ``UpstreamError``s and writing only with the server's connection errors,
so which side broke off is told by type.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from feedgate.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from feedgate.logrows.exchange import Exchange
from feedgate.proxy.headers import client_headers
from feedgate.proxy.stream_usage import UsageChunkFilter
from feedgate.upstream.client import UpstreamResponse

log = logging.getLogger("feedgate")
# What writing to a client that has gone away raises: a reset, a broken pipe, or aiohttp's "Connection lost"
# for a writer paused on a slow client whose connection then closed (a plain ConnectionError).
CLIENT_GONE = (ConnectionError,)


async def relay(
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
        except UpstreamTimeout:
            exchange.error_type = "upstream_timeout"
            raise UpstreamTimeout("the upstream stopped sending its answer", code="upstream_timeout") from None
        except UpstreamError as exc:
            exchange.error_type, exchange.error_message = "upstream_disconnected", exc.message
            raise UpstreamUnreachable(f"the upstream broke off its answer: {exc.message}") from None
        exchange.response_chunks.append(data)
        if request.method == "HEAD":
            headers["Content-Length"] = str(upstream.content_length)  # what a GET would send, as HEAD promises
        return web.Response(status=upstream.status, body=data, headers=headers)

    exchange.is_stream = is_sse
    response = web.StreamResponse(status=upstream.status, headers=headers)
    chunks = exchange.response_chunks
    # Each chunk's arrival time, for the writer to find when the first output came (a C-level append each).
    times_append, clock = exchange.chunk_times.append, time.perf_counter
    exchange.perf_started = started
    usage_filter = UsageChunkFilter() if strip_usage and is_sse else None
    try:
        await response.prepare(request)  # the client may be gone before its answer starts
        read_chunk = upstream.read_chunk
        while chunk := await read_chunk():
            if not chunks:
                exchange.ttft_ms = (time.perf_counter() - started) * 1000.0
            chunks.append(chunk)
            times_append(clock())
            out = usage_filter.feed(chunk) if usage_filter is not None else chunk
            if out:
                await response.write(out)
        if usage_filter is not None:
            rest = usage_filter.flush()
            if rest:
                await response.write(rest)
        await response.write_eof()
    except CLIENT_GONE:
        exchange.error_type = "client_disconnected"
        exchange.error_message = f"client went away after {sum(len(c) for c in chunks)} bytes"
    except UpstreamError as exc:
        exchange.error_type = "upstream_timeout" if isinstance(exc, UpstreamTimeout) else "upstream_disconnected"
        exchange.error_message = exc.message
        # The status line is gone already: breaking the connection is the only honest signal left.
        if request.transport is not None:
            request.transport.abort()
    except Exception as exc:
        if not response.prepared:
            raise  # nothing sent yet: the middleware answers a 500 in the OpenAI shape
        # Our own failure after the answer began: no second status line can follow, so the connection is cut
        # (as for an upstream breaking off) and the row says what happened.
        log.exception("unexpected failure relaying request %s", exchange.request_id)
        exchange.error_type, exchange.error_message = "internal_error", f"{type(exc).__name__}: {exc}"[:500]
        if request.transport is not None:
            request.transport.abort()
    return response
