"""The analysis figures at scale, on a store filled by ``feedgate demo --requests 1000000``.

    feedgate demo --requests 1000000 --database-url sqlite:////tmp/bench1m.db
    python scripts/bench_analysis.py sqlite:////tmp/bench1m.db

Measured through a gateway on loopback (HTTP, JSON and all), each figure the median of a few warm runs:
stats over 30 days grouped by model, by ``property:feature`` and by day, insights and regressions, each
answered twice: by a gateway reading the rollups and by a second one on the same store with
``analysis.rollups=false`` (the rows), with both times and whether the answers are equal (counts exactly,
costs to 1e-9, the largest relative gap between latency percentiles shown: the rollups' are within 4.4 % of
the exact ones, the rows' are exact up to 150,000 durations and sampled above). Then query pages (one
filtered, newest first; sorted by latency, with and without that filter), and an export of about 100,000
rows (rows per second, and the process's memory sampled while it runs, to show it stays flat; the client
counts the newlines of whole chunks, so it costs the shared event loop little). Also the store's size per
request. ``--exports-only`` runs just the exports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from feedgate.app import create_app
from feedgate.appkeys import SETTINGS
from feedgate.config import load_settings
from feedgate.store.sqlite import sqlite_path
from feedgate.store.utc import utc_text


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


PERCENTILES = ("duration_ms_p50", "duration_ms_p95")
FLOATS = ("cost_usd", "scores")


def differences(fast: Any, slow: Any, where: str = "") -> tuple[list[str], float]:
    """Where two answers differ beyond the rules above, and the largest relative gap between percentiles."""
    if isinstance(fast, dict) and isinstance(slow, dict):
        found: list[str] = []
        gap = 0.0
        if fast.keys() != slow.keys():
            return [f"{where}: keys {sorted(fast.keys() ^ slow.keys())}"], gap
        for name in fast:
            if name == "source" or (name in ("baseline", "recent") and "from" in fast[name]):
                continue  # the path taken; the regression windows, which end at each call's "now"
            if name in PERCENTILES and fast[name] is not None and slow[name]:
                gap = max(gap, abs(fast[name] - slow[name]) / slow[name])
            elif name in FLOATS:
                pairs = fast[name].items() if isinstance(fast[name], dict) else [("", fast[name])]
                for key, value in pairs:
                    other = slow[name].get(key) if isinstance(slow[name], dict) else slow[name]
                    if other is None or abs(value - other) > 1e-9 * max(abs(other), 1e-9):
                        found.append(f"{where}.{name}{key}: {value} != {other}")
            else:
                more, more_gap = differences(fast[name], slow[name], f"{where}.{name}")
                found += more
                gap = max(gap, more_gap)
        return found, gap
    if isinstance(fast, list) and isinstance(slow, list) and len(fast) == len(slow):
        found, gap = [], 0.0
        for index, (a, b) in enumerate(zip(fast, slow, strict=True)):
            more, more_gap = differences(a, b, f"{where}[{index}]")
            found += more
            gap = max(gap, more_gap)
        return found, gap
    return ([] if fast == slow else [f"{where}: {str(fast)[:80]} != {str(slow)[:80]}"]), 0.0


async def serve(url: str, properties: list[str], rollups: bool) -> tuple[web.AppRunner, str]:
    """A gateway on the store; ``rollups=False``: its answers come from rows.

    Both open the store with rollups on: a store opened with ``analysis.rollups=false`` withdraws the
    rollups' coverage for every instance (nothing would keep them), so the second gateway is told to answer
    from rows only once its store is open.
    """
    overrides = {
        "database": {"url": url},
        "server": {"access_log": False},
        "analysis": {"properties": properties, "rollups": True},
    }
    settings = load_settings(environ={}, overrides=overrides)
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    if not rollups:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # a started app's state, changed on purpose
            app[SETTINGS] = settings.model_copy(
                update={"analysis": settings.analysis.model_copy(update={"rollups": False})}
            )
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


async def main(url: str, runs: int, export: dict[str, str], properties: list[str], exports_only: bool) -> None:
    runner, base = await serve(url, properties, rollups=True)
    # The gateway answering from rows is only compared with; the exports run on the first one alone.
    rows_runner, rows_base = (None, "") if exports_only else await serve(url, properties, rollups=False)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:

        async def get_json(path: str, at: str = base, **params: str) -> Any:
            async with http.get(at + path, params=params) as r:
                assert r.status == 200, await r.text()
                return (await r.json())["data"]

        async def both(what: str, path: str, size: Callable[[Any], str], **params: str) -> None:
            """One answer from the rollups and from the rows, timed in turn, and compared."""
            for at in (base, rows_base):  # the first run opens the read connections
                await get_json(path, at, **params)
            fast_took, fast = await timed(runs, lambda: get_json(path, base, **params))
            slow_took, slow = await timed(runs, lambda: get_json(path, rows_base, **params))
            found, gap = differences(fast, slow)
            verdict = "equal" if not found else f"DIFFERENT ({len(found)}: {'; '.join(found[:3])})"
            print(
                f"{what}, {size(slow)}: {fast['source']} {fast_took * 1000:.1f} ms, {slow['source']} "
                f"{slow_took * 1000:.0f} ms ({slow_took / fast_took:.0f}x); answers {verdict}, "
                f"largest percentile gap {gap:.2%}"
            )

        async def post_json(path: str, body: Any) -> Any:
            async with http.post(base + path, json=body) as r:
                assert r.status == 200, await r.text()
                return (await r.json())["data"]

        count = await post_json("/request/count/query", {"filter": "all"})
        if not exports_only:
            # One range for both paths: what since=30d means (from the top of the hour 30 days ago), fixed
            # once so that the two calls agree even if an hour turns between them.
            month_ago = time.time() - 30 * 86400
            since = utc_text(month_ago - month_ago % 3600)
            for group in ("model", *(f"property:{name}" for name in properties), "day"):
                await both(
                    f"stats by {group}, 30 days",
                    "/feedback/stats",
                    lambda r: f"{r['overall']['requests']:,} requests, {len(r['groups'])} groups",
                    group_by=group,
                    since=since,
                )
            await both("insights", "/feedback/insights", lambda r: f"{len(r['insights'])} found")
            await both(
                "regressions", "/feedback/regressions", lambda r: f"{len(r['regressions'])} found", notify="false"
            )
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
            async with http.get(base + "/export", params={"format": fmt, **export}) as r:
                assert r.status == 200, await r.text()
                rows = int(r.headers["Feedgate-Export-Rows"])
                # The server is measured, not this client: counting newlines in whole chunks costs the shared
                # event loop far less than iterating line by line.
                next_sample = 10_000
                async for chunk in r.content.iter_any():
                    lines += chunk.count(b"\n")
                    while lines >= next_sample:
                        samples.append(anon_mb())
                        next_sample += 10_000
            took = time.perf_counter() - started
            shown = ", ".join(f"{s:.0f}" for s in samples) or f"{anon_mb():.0f} (fewer than 10,000 lines)"
            print(
                f"export {fmt}: {rows:,} rows read, {lines:,} lines in {took:.1f}s = {rows / took:,.0f} rows/s; "
                f"anonymous RSS MB every 10,000 lines: {shown}"
            )
    await runner.cleanup()
    if rows_runner is not None:
        await rows_runner.cleanup()
    if url.startswith("sqlite:///"):
        path = sqlite_path(url)
        size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
        print(f"store: {size / 1e9:.2f} GB for {count:,} requests = {size / count:,.0f} bytes per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="database URL of a store filled by feedgate demo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--export-since", default="20d", help="bounds the export to about 100,000 thumbs-up rows")
    parser.add_argument(
        "--export-rating", default="positive", help="the rows exported: positive (thumbs-up), negative, or any"
    )
    parser.add_argument(
        "--properties", default="feature", help="analysis.properties of both gateways, comma-separated (rolled up)"
    )
    parser.add_argument(
        "--exports-only", action="store_true", help="only the exports (and the store's size): skip stats and pages"
    )
    args = parser.parse_args()
    properties = [p for p in args.properties.split(",") if p]
    export = {"since": args.export_since}
    if args.export_rating != "any":
        export["rating"] = args.export_rating
    asyncio.run(main(args.url, args.runs, export, properties, args.exports_only))
