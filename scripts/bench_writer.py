"""How many log rows per second the writer sustains into a store.

    python scripts/bench_writer.py postgresql://postgres@127.0.0.1:5432/test --rows 50000
    python scripts/bench_writer.py sqlite:////tmp/bench.db

Two numbers: ``apply`` (rows already built, straight into ``Store.apply`` in batches: the database side alone)
and ``writer`` (realistic chat exchanges, half of them streamed, through the real ``Writer`` with
``build_row``: parsing, stream assembly, pricing and the database, as in production). A PostgreSQL URL gets
a throw-away schema, dropped at the end.

    python scripts/bench_writer.py sqlite:////tmp/cpu.db --cpu --rows 20000

``--cpu``: the writer's CPU per row (process time, the store's own threads included), building and storing
apart, for a 20-event stream and a JSON answer under each ``log.stream_events`` setting and zstd level, and
the bytes each keeps (issue #15, docs/benchmarks.md "Leaner rows").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import secrets
import time
import uuid

import asyncpg

from feedgate.config import load_settings
from feedgate.logrows.build import build_row
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.store import make_store
from feedgate.store.bodies import BodyPacker, StreamEvents
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest
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


_REQUEST_BODY = REQUEST_COLUMNS.index("request_body")
_RESPONSE_BODY = REQUEST_COLUMNS.index("response_body")


def stream_exchange(n: int, events: int = 20) -> Exchange:
    """A chat answer streamed as OpenAI sends one: ``events`` content chunks of a few words, then usage."""
    base = {"id": f"chatcmpl-{n:029d}", "object": "chat.completion.chunk", "created": 1764000000 + n}
    base |= {"model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_0123456789"}
    words = ["Sure", " here", " is", " a", " short", " answer", " about", " the", " thing", " you", " asked"]
    chunks = []
    for k in range(events):
        delta = {"role": "assistant", "content": ""} if k == 0 else {"content": words[(n + k) % len(words)]}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        chunks.append(b"data: " + json.dumps({**base, "choices": [choice], "usage": None}).encode() + b"\n\n")
    usage = {"prompt_tokens": 90, "completion_tokens": events, "total_tokens": 90 + events}
    chunks.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
    chunks.append(b"data: [DONE]\n\n")
    plain = exchange(n * 2 + 1)
    plain.request_id, plain.is_stream, plain.response_chunks = str(uuid.uuid4()), True, chunks
    plain.response_headers = {"Content-Type": "text/event-stream", "x-request-id": "req_1"}
    return plain


async def cpu_per_row(url: str, rows: int, batch: int, stream: bool, packer: BodyPacker | None) -> tuple[float, ...]:
    """(build us, store us, stored body bytes) per row."""
    prices = PriceTable.load()
    exchanges = [stream_exchange(n) if stream else exchange(n * 2 + 1) for n in range(rows)]
    started = time.process_time()
    built = [build_row(item, prices, packer=packer) for item in exchanges]
    build_s = time.process_time() - started
    body_bytes = sum(len(row.values[_REQUEST_BODY] or b"") + len(row.values[_RESPONSE_BODY] or b"") for row in built)
    store = await open_store(url)
    try:
        started = time.process_time()
        for start in range(0, rows, batch):
            await store.apply(built[start : start + batch])
        store_s = time.process_time() - started
    finally:
        await store.close()
    return build_s / rows * 1e6, store_s / rows * 1e6, body_bytes / rows


async def bench_cpu(url: str, rows: int, batch: int, repeats: int = 5) -> None:
    """Each setting measured ``repeats`` times, interleaved; the least time of each part is printed (noise on
    a shared machine only ever adds time, so the minimum is the closest to the cost itself)."""
    settings: list[tuple[str, StreamEvents | None, int]] = [
        ("before (no packer)", None, 0),
        ("raw", "raw", 0),
        ("compressed, level 1", "compressed", 1),
        ("compressed, level 2", "compressed", 2),
        ("compressed, level 3", "compressed", 3),
        ("none", "none", 1),
    ]
    for kind in ("stream (20 events)", "json"):
        found: dict[str, list[tuple[float, ...]]] = {name: [] for name, _, _ in settings}
        for _ in range(repeats):
            for name, events, level in settings:
                packer = None if events is None else BodyPacker(events, 8192, level)
                fresh = url if not url.startswith("sqlite") else f"{url}.{secrets.token_hex(3)}"
                found[name].append(await cpu_per_row(fresh, rows, batch, kind.startswith("stream"), packer))
                if fresh != url:
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.remove(fresh.removeprefix("sqlite:///") + suffix)
        for name, runs in found.items():
            build_us, store_us, total_us = (
                min(part) for part in zip(*((b, s, b + s) for b, s, _ in runs), strict=True)
            )
            print(
                f"{kind:20} {name:20} build {build_us:6.1f} us  store {store_us:6.1f} us  "
                f"total {total_us:6.1f} us  bodies {runs[0][2]:6.0f} B/row"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction (database.batch_max)")
    parser.add_argument("--cpu", action="store_true", help="CPU per row by stream_events setting (issue #15)")
    args = parser.parse_args()
    url, schema = args.url, None
    if url.startswith(("postgresql://", "postgres://")):
        schema = f"fgbench_{secrets.token_hex(4)}"
        url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    if args.cpu:
        try:
            await bench_cpu(url, args.rows, args.batch)
        finally:
            if schema is not None:
                conn = await asyncpg.connect(args.url)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
        return
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
