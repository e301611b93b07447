"""``feedgate demo --requests N``: fill the store with realistic synthetic traffic and feedback.

So a newcomer can try every analysis command without an API key, and the benchmark has data at scale.
What the data holds is described in ``demo/traffic.py`` (including a regression planted in the last
days). Generation runs in a child process while this one writes, in large batches through the store's
own ``apply`` (the path the log writer uses), so a million requests take a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from feedgate.commands.client import guarded, print_json
from feedgate.config import Settings
from feedgate.demo.traffic import REGRESSED_FEATURE, REGRESSED_MODEL, REGRESSION_DAYS, DemoCounts, produce
from feedgate.store import make_store
from feedgate.store.sqlite import sqlite_path


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = subparsers.add_parser("demo", help="fill the store with synthetic traffic and feedback to explore")
    parser.add_argument("--requests", type=int, default=10_000, help="requests to generate (default 10000)")
    parser.add_argument("--days", type=float, default=30.0, help="spread them over this many days up to now")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    parser.add_argument("--rated-share", type=float, default=0.2, help="share of requests with a thumbs up/down")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    common(parser)
    parser.set_defaults(run=run)


async def _fill(args: argparse.Namespace, settings: Settings) -> DemoCounts:
    # spawn, not fork: the child must not inherit this process's threads or open connections.
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue(maxsize=8)
    child = context.Process(
        target=produce,
        args=(
            args.requests,
            args.days,
            args.seed,
            args.rated_share,
            time.time(),
            5000,
            queue,
            (settings.log.stream_events, settings.log.request_body_compress_over_bytes),
        ),
        daemon=True,
    )
    child.start()
    store = make_store(settings)
    await store.open()
    written = 0
    try:
        while (ops := await asyncio.to_thread(queue.get)) is not None:
            await store.apply(ops)
            written += len(ops)
            if sys.stderr.isatty() and not args.json:
                sys.stderr.write(f"\r{written:,} rows written")
        counts: DemoCounts = await asyncio.to_thread(queue.get)
    finally:
        await store.close()
        child.join(timeout=10)
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    return counts


def _size(url: str) -> int | None:
    if not url.startswith("sqlite:///"):
        return None
    path = sqlite_path(url)
    return sum(os.path.getsize(path + suffix) for suffix in ("", "-wal") if os.path.exists(path + suffix))


def run(args: argparse.Namespace, settings: Settings) -> int:
    def work() -> int:
        started = time.monotonic()
        counts = asyncio.run(_fill(args, settings))
        took = time.monotonic() - started
        size = _size(settings.database.url)
        summary = {
            "requests": counts.requests,
            "attempts": counts.attempts,
            "ratings": counts.ratings,
            "signals": counts.signals,
            "scores": counts.scores,
            "seconds": round(took, 1),
            "store_bytes": size,
            "bytes_per_request": None if size is None or not counts.requests else round(size / counts.requests),
        }
        if args.json:
            print_json(summary)
            return 0
        print(
            f"wrote {counts.requests:,} requests ({counts.attempts:,} attempts), {counts.ratings:,} ratings, "
            f"{counts.signals:,} signals and {counts.scores:,} scores in {took:.1f}s"
        )
        if size is not None:
            print(f"store: {size / 1e6:,.1f} MB, {summary['bytes_per_request']:,} bytes per request")
        print(
            f"planted: {REGRESSED_MODEL} on feature={REGRESSED_FEATURE} got worse in the last {REGRESSION_DAYS} days.\n"
            "try: feedgate stats --by model | feedgate insights | feedgate regressions | "
            "feedgate export --format openai-chat --rating positive -o good.jsonl"
        )
        return 0

    return guarded(work)
