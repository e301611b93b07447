"""``feedgate pending``: feedback waiting for a request ID that has not been logged (yet)."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from feedgate.config import Settings
from feedgate.store import make_store
from feedgate.store.reads.feedback import pending_feedback
from feedgate.store.utc import utc_text


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pending", help="list feedback whose request ID has not been logged"
    )
    common(parser)
    parser.add_argument(
        "--older-than", type=float, default=0.0, metavar="SECONDS", help="only feedback waiting at least this long"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.set_defaults(run=run)


async def _rows(settings: Settings, older_than_s: float) -> list[dict[str, Any]]:
    store = make_store(settings)
    await store.open()
    try:
        # A cut-off a little in the future lists everything when --older-than is 0.
        return await pending_feedback(store, utc_text(time.time() - older_than_s + 1))
    finally:
        await store.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    rows = asyncio.run(_rows(settings, args.older_than))
    ttl = settings.feedback.pending_ttl_s
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    if not rows:
        print("no pending feedback")
        return 0
    print(f"{'request_id':<40} {'notes':>5}  {'first noted (UTC)':<28} (dropped after {ttl:.0f}s)")
    for row in rows:
        print(f"{row['request_id']:<40} {row['events']:>5}  {row['first_utc']:<28}")
    return 0
