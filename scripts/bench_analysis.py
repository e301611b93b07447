"""The analysis figures at scale, on a store filled by ``feedgate demo --requests 1000000``.

    feedgate demo --requests 1000000 --database-url sqlite:////tmp/bench1m.db
    python scripts/bench_analysis.py sqlite:////tmp/bench1m.db

Measured through a gateway on loopback (HTTP, JSON and all), each figure the median of a few warm runs:
stats grouped by model over 30 days, query pages (one filtered, newest first; sorted by latency, with and
without that filter), and an export of about 100,000 rows (rows per second, and the process's memory
sampled while it runs, to show it stays flat). Also the store's size per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from feedgate.app import create_app
from feedgate.config import load_settings
from feedgate.store.sqlite import sqlite_path


def anon_mb() -> float:
    """Anonymous resident memory: the heap, without the store's memory-mapped pages (shared page cache)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1000
    return 0.0


async def timed(runs: int, call: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def main(url: str, runs: int, export_since: str) -> None:
    settings = load_settings(environ={}, overrides={"database": {"url": url}, "server": {"access_log": False}})
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/v1"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:

        async def get_json(path: str, **params: str) -> Any:
            async with http.get(base + path, params=params) as r:
                assert r.status == 200, await r.text()
                return (await r.json())["data"]

        async def post_json(path: str, body: Any) -> Any:
            async with http.post(base + path, json=body) as r:
                assert r.status == 200, await r.text()
                return (await r.json())["data"]

        count = await post_json("/request/count/query", {"filter": "all"})
        await get_json("/feedback/stats", group_by="model", since="30d")  # first run opens the read connections
        took, stats = await timed(runs, lambda: get_json("/feedback/stats", group_by="model", since="30d"))
        print(f"stats by model, 30 days, {stats['overall']['requests']:,} requests: {took * 1000:.0f} ms")
        tree = {
            "left": {"request": {"model": {"equals": "gpt-4o"}}},
            "operator": "and",
            "right": {
                "left": {"feedback": {"rating": {"equals": False}}},
                "operator": "and",
                "right": {"properties": {"feature": {"equals": "support"}}},
            },
        }
        body = {"filter": tree, "limit": 25, "sort": {"created_at": "desc"}}
        took, page = await timed(runs, lambda: post_json("/request/query", body))
        print(
            f"query page (model + thumbs-down + property, 25 rows, newest first): "
            f"{took * 1000:.1f} ms, {len(page)} rows"
        )
        # Sorted by latency, which no index orders: every matching row's duration is read and sorted.
        for what, sorted_body in (
            ("all requests", {"filter": "all", "limit": 25, "sort": {"latency": "desc"}}),
            ("model + thumbs-down + property", {**body, "sort": {"latency": "desc"}}),
        ):
            took, page = await timed(runs, lambda b=sorted_body: post_json("/request/query", b))
            print(f"query page ({what}, 25 slowest): {took * 1000:.0f} ms, {len(page)} rows")
        for fmt in ("openai-chat", "jsonl"):
            samples: list[float] = []
            started = time.perf_counter()
            rows = lines = 0
            async with http.get(
                base + "/export", params={"format": fmt, "rating": "positive", "since": export_since}
            ) as r:
                assert r.status == 200, await r.text()
                rows = int(r.headers["Feedgate-Export-Rows"])
                async for _line in r.content:
                    lines += 1
                    if lines % 10_000 == 0:
                        samples.append(anon_mb())
            took = time.perf_counter() - started
            shown = ", ".join(f"{s:.0f}" for s in samples) or f"{anon_mb():.0f} (fewer than 10,000 lines)"
            print(
                f"export {fmt}: {rows:,} rows read, {lines:,} lines in {took:.1f}s = {rows / took:,.0f} rows/s; "
                f"anonymous RSS MB every 10,000 lines: {shown}"
            )
    await runner.cleanup()
    if url.startswith("sqlite:///"):
        path = sqlite_path(url)
        size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
        print(f"store: {size / 1e9:.2f} GB for {count:,} requests = {size / count:,.0f} bytes per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="database URL of a store filled by feedgate demo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--export-since", default="20d", help="bounds the export to about 100,000 thumbs-up rows")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.runs, args.export_since))
