"""Sending one proxied call upstream: to one target, over fallback targets, with retries.

What is sent travels as one ``Call``; what happened on the way (the target tried last, the failure kind)
is written on the call's ``Exchange``, so the log row says it whatever the client gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from multidict import CIMultiDict

from feedgate.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from feedgate.logrows.exchange import Exchange
from feedgate.proxy.features.fallbacks import Target
from feedgate.proxy.features.retry import RetryPolicy, retryable
from feedgate.proxy.providers import Provider
from feedgate.proxy.trace_hooks import AttemptSpan, CallTracer
from feedgate.upstream.client import UpstreamClient, UpstreamResponse

# Where clients put a provider key; when feedgate injects the provider's own key, what a client sends
# there is its feedgate key, which must never leave the gateway.
_CREDENTIALS = ("Authorization", "x-api-key", "api-key")


@dataclass(slots=True)
class Call:
    """One proxied call as it will be sent: the same for every target and every retry."""

    client: UpstreamClient
    provider: Provider
    method: str
    path_qs: str
    headers: CIMultiDict[str]  # the client's headers, cleaned; each target adds its credentials
    body: bytes
    exchange: Exchange
    tracer: CallTracer | None = None  # set only when tracing is on


def add_credentials(provider: Provider, headers: CIMultiDict[str], own_origin: bool) -> None:
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


async def send(call: Call, base_url: str, headers: CIMultiDict[str], body: bytes, who: str) -> UpstreamResponse:
    """Send to one upstream; its failure is logged on the exchange and raised as the client's 502 or 504."""
    exchange = call.exchange
    if exchange.upstream_started is None:  # the provider's time, for feedgate_overhead_seconds, starts here
        exchange.upstream_started = time.perf_counter()
    span: AttemptSpan | None = None
    if call.tracer is not None:
        span = call.tracer.start_attempt(exchange, call.provider.name, call.provider.kind, base_url)
        if call.provider.propagate_trace:
            span.inject(headers)
    try:
        return await call.client.request(call.method, base_url, call.path_qs, headers, body)
    except UpstreamTimeout:
        exchange.error_type, exchange.error_message = "upstream_timeout", "no answer from the upstream"
        if span is not None:
            span.finish(None, exchange.error_type)
        raise UpstreamTimeout(f"{who} did not answer in time", code="upstream_timeout") from None
    except UpstreamError as exc:
        # Before its answer began, whatever went wrong means the upstream could not be used.
        exchange.error_type, exchange.error_message = "upstream_unreachable", exc.message
        if span is not None:
            span.finish(None, exchange.error_type)
        raise UpstreamUnreachable(f"cannot reach {who}: {exc.message}", code="upstream_unreachable") from None


async def send_to_targets(
    call: Call, targets: list[Target], bodies: list[bytes], retry: RetryPolicy | None
) -> tuple[UpstreamResponse, int]:
    """Call the targets in order until one answers with a status its entry does not fall back on.

    Returns the answer and the index of the target that gave it.
    """
    exchange = call.exchange
    last = len(targets) - 1
    retries = 0
    for index, target in enumerate(targets):
        headers = call.headers.copy()
        add_credentials(call.provider, headers, target.own_origin)
        headers.update(target.headers)
        exchange.target_url = target.base_url
        who = call.provider.name if target.own_origin else target.base_url
        try:
            upstream, tried = await _send_retrying(call, target.base_url, headers, bodies[index], who, retry)
        except UpstreamError:
            if index == last:
                raise
            continue
        retries += tried
        if retries:
            exchange.extra_properties["feedgate-retries"] = str(retries)
        if index < last and target.falls_back_on(upstream.status):
            await drain(upstream, call)
            continue
        return upstream, index
    raise AssertionError("the last target always answers or raises")


async def _send_retrying(
    call: Call, base_url: str, headers: CIMultiDict[str], body: bytes, who: str, policy: RetryPolicy | None
) -> tuple[UpstreamResponse, int]:
    """One target, retried on 429, 5xx and failed connections per ``Helicone-Retry-*``: (answer, retries made)."""
    retry = 0
    while True:
        call.exchange.error_type = call.exchange.error_message = None
        retry_after = None
        try:
            upstream = await send(call, base_url, headers, body, who)
        except UpstreamError:
            if policy is None or retry >= policy.retries:
                raise
        else:
            if policy is None or retry >= policy.retries or not retryable(upstream.status):
                return upstream, retry
            retry_after = upstream.headers.get("Retry-After")
            await drain(upstream, call)
        retry += 1
        await asyncio.sleep(policy.delay_s(retry, retry_after))


async def drain(upstream: UpstreamResponse, call: Call) -> None:
    """Read and drop an answer that will not be relayed, so its connection can be reused."""
    with contextlib.suppress(UpstreamError):
        await upstream.read()
    upstream.release()
    if call.tracer is not None and call.exchange.attempt_spans:
        call.exchange.attempt_spans[-1].finish(upstream.status, None)
