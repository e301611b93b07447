"""What metrics and traces add per proxied call, measured on the pieces that run for every call.

    python scripts/bench_metrics.py [--calls 200000]

Prints microseconds per call for:

- the request path's additions with metrics on and tracing off: the first-send and end timestamps and the
  ``is None`` tests (what ``proxy/`` does per call whatever the settings);
- the writer's extra work per call: ``Metrics.count_call`` on a built row (a non-streamed and a streamed
  chat call, labels already seen), against ``build`` itself, which runs anyway;
- a scrape of ``/metrics`` with a few hundred series (``generate_latest``).

The referee benchmark (``../shared/bench``) is what judges the whole: run it with
``FEEDGATE_METRICS_ENABLED=false`` and with the default to compare.
"""

from __future__ import annotations

import argparse
import time
import timeit

import orjson
from multidict import CIMultiDict
from prometheus_client import generate_latest

from feedgate.logrows.build import build
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.ops.metrics import Metrics, ModelLabels

CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello " * 20}]})
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello " * 40}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 23, "completion_tokens": 40, "total_tokens": 63},
    }
)
EVENTS = b"".join(
    b"data: "
    + orjson.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"delta": {"content": "w "}}],
        }
    )
    + b"\n\n"
    for _ in range(40)
) + (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],'
    b'"usage":{"prompt_tokens":23,"completion_tokens":40,"total_tokens":63}}\n\ndata: [DONE]\n\n'
)


def exchange(stream: bool) -> Exchange:
    ex = Exchange(
        request_id="r",
        started_at=time.time(),
        provider="openai",
        provider_kind="openai",
        method="POST",
        path="/v1/chat/completions",
        query="",
        target_url="http://upstream",
        request_headers=CIMultiDict({"Content-Type": "application/json", "Authorization": "Bearer sk"}),
        request_body=CHAT,
        status=200,
        response_headers=CIMultiDict({"Content-Type": "text/event-stream" if stream else "application/json"}),
        response_chunks=[EVENTS if stream else ANSWER],
        is_stream=stream,
        duration_ms=120.0,
        ttft_ms=40.0 if stream else None,
        proxied=True,
        upstream_ms=119.0,
    )
    return ex


def per_call_us(fn: object, calls: int) -> float:
    assert callable(fn)
    return min(timeit.repeat(fn, number=calls, repeat=5)) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    prices = PriceTable.load()

    def table_name(model: str) -> str | None:
        found = prices.lookup(model)
        return found[0] if found else None

    metrics = Metrics(["openai", "anthropic"], ModelLabels(table_name))
    ex = exchange(False)
    tracer = None

    def hot_path_additions() -> None:  # what handler.py and sending.py add per call
        if ex.upstream_started is None:
            ex.upstream_started = time.perf_counter()
        ended = time.perf_counter()
        if ex.upstream_started is not None and ex.status is not None:
            ex.upstream_ms = (ended - ex.upstream_started) * 1000.0
        if tracer is not None:
            raise AssertionError
        ex.upstream_started = None

    print(f"request path, per call:        {per_call_us(hot_path_additions, calls):6.2f} us")
    for stream in (False, True):
        ex = exchange(stream)
        built = build(ex, prices)
        kind = "stream" if stream else "json  "

        def count(ex: Exchange = ex, built: object = built) -> None:
            b = built
            assert b is not None
            metrics.count_call(ex, built.model, built.billed, built.cost_usd, built.unpriced)  # type: ignore[attr-defined]

        build_us = per_call_us(lambda ex=ex: build(ex, prices), max(calls // 20, 1000))
        print(f"writer, {kind}: build {build_us:7.2f} us, count_call {per_call_us(count, calls):5.2f} us")
    started = time.perf_counter()
    scrapes = 200
    for _ in range(scrapes):
        generate_latest(metrics.registry)
    print(
        f"scrape of {len(generate_latest(metrics.registry).splitlines())} lines: "
        f"{(time.perf_counter() - started) / scrapes * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
