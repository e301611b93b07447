"""How many log rows per second the writer sustains into a store.

    python scripts/bench_writer.py postgresql://postgres@127.0.0.1:5432/test --rows 50000
    python scripts/bench_writer.py sqlite:////tmp/bench.db

Two numbers: ``apply`` (rows already built, straight into ``Store.apply`` in batches: the database side alone)
and ``writer`` (realistic chat exchanges, half of them streamed, through the real ``Writer`` with
``build_row``: parsing, stream assembly, pricing and the database, as in production). A PostgreSQL URL gets
a throw-away schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import secrets
import time
import uuid

import asyncpg

from feedgate.config import load_settings
from feedgate.logrows.build import build_row
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.store import make_store
from feedgate.store.ops import InsertRequest
from feedgate.store.protocol import Store
from feedgate.store.writer import Writer


def exchange(n: int) -> Exchange:
    stream = n % 2 == 0
    request = {"model": "gpt-4o-mini", "user": f"u{n % 50}", "messages": [{"role": "user", "content": f"q {n}"}]}
    if stream:
        chunks = [
            b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,'
            b'"delta":{"content":"Hello "},"finish_reason":null}]}\n\n',
            b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,'
            b'"delta":{"content":"there"},"finish_reason":"stop"}]}\n\n',
            b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],'
            b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n',
            b"data: [DONE]\n\n",
        ]
        content_type = "text/event-stream"
    else:
        answer = {
            "id": "c",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        }
        chunks = [json.dumps(answer).encode()]
        content_type = "application/json"
    return Exchange(
        request_id=str(uuid.uuid4()),
        started_at=time.time(),
        provider="openai",
        provider_kind="openai",
        method="POST",
        path="/v1/chat/completions",
        query="",
        target_url="https://api.openai.com/v1/chat/completions",
        request_headers={"Authorization": "Bearer sk-x", "Content-Type": "application/json"},
        request_body=json.dumps({**request, "stream": stream}).encode(),
        status=200,
        response_headers={"Content-Type": content_type, "x-request-id": "req_1"},
        response_chunks=chunks,
        is_stream=stream,
        duration_ms=12.0,
        ttft_ms=3.0 if stream else None,
        # Most calls carry no Helicone-Request-Id, so the gateway mints the ID; a quarter bring their own.
        fresh_id=n % 4 != 0,
    )


async def open_store(url: str) -> Store:
    store = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await store.open()
    return store


async def bench_apply(url: str, rows: int, batch: int) -> float:
    prices = PriceTable.load()
    built: list[InsertRequest] = [build_row(exchange(n), prices) for n in range(rows)]
    store = await open_store(url)
    try:
        started = time.perf_counter()
        for start in range(0, rows, batch):
            await store.apply(built[start : start + batch])
        elapsed = time.perf_counter() - started
        assert await store.count_requests() >= rows
    finally:
        await store.close()
    return rows / elapsed


async def bench_writer(url: str, rows: int, batch: int) -> float:
    store = await open_store(url)
    writer = Writer(store, functools.partial(build_row, prices=PriceTable.load()), queue_size=rows, batch_max=batch)
    exchanges = [exchange(n) for n in range(rows)]
    writer.start()
    try:
        started = time.perf_counter()
        for item in exchanges:
            writer.log(item)
        while writer.queued_ids:
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - started
        assert writer.stats.written == rows, writer.stats
    finally:
        await writer.stop()
        await store.close()
    return rows / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction (database.batch_max)")
    args = parser.parse_args()
    url, schema = args.url, None
    if url.startswith(("postgresql://", "postgres://")):
        schema = f"fgbench_{secrets.token_hex(4)}"
        url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    try:
        apply_rate = await bench_apply(url, args.rows, args.batch)
        writer_rate = await bench_writer(url, args.rows, args.batch)
    finally:
        if schema is not None:
            conn = await asyncpg.connect(args.url)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
    print(
        f"{args.url.split(':', 1)[0]}: apply {apply_rate:,.0f} rows/s, "
        f"writer (derive + store) {writer_rate:,.0f} rows/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
