"""``feedgate rollups rebuild`` and ``feedgate rollups check``: the per-hour sums recomputed from rows, or
compared with them.

Both open the store themselves and are safe beside a running gateway: a rebuild is cut into windows of whole
hours, each its own short transaction, and the gateway's writer keeps summing the rows it logs meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from feedgate.analysis.selection import moment
from feedgate.config import Settings
from feedgate.errors import FilterError
from feedgate.store import make_store
from feedgate.store.ops import WriteOp
from feedgate.store.rollups.build import check, rebuild

BAR_WIDTH = 30


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rollups", help="recompute the per-hour rollups from the logged rows, or check them against the rows"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    rebuilding = actions.add_parser("rebuild", help="recompute the rollups from rows (all hours, or --since)")
    common(rebuilding)
    rebuilding.add_argument(
        "--since", help="only the hours from this time on: ISO 8601 or a span back from now (30d, 12h)"
    )
    rebuilding.set_defaults(run=run_rebuild)
    checking = actions.add_parser("check", help="compare the rollups with sums recomputed from rows on a sample")
    common(checking)
    checking.add_argument("--hours", type=int, default=48, help="how many hours to sample (default 48)")
    checking.set_defaults(run=run_check)


class Bar:
    """A progress bar on a terminal; a line per tenth otherwise (a log file, CI)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        share = min(1.0, done / total) if total else 1.0
        if self.tty:
            filled = int(share * BAR_WIDTH)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} of ~{total:,} requests")
            sys.stderr.flush()
        elif int(share * 10) > self.shown:
            self.shown = int(share * 10)
            print(f"rollups: {share:.0%} of ~{total:,} requests", file=sys.stderr)

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


async def _rebuild(settings: Settings, since_utc: str | None) -> int:
    if not settings.analysis.rollups:
        raise FilterError("analysis.rollups is false: there are no rollups to rebuild")
    store = make_store(settings)
    await store.open()
    bar = Bar()

    async def submit(op: WriteOp) -> None:
        await store.apply([op])

    try:
        windows = await rebuild(store, submit, since_utc, bar)
    finally:
        bar.end()
        await store.close()
    return windows


def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    try:
        since = moment(args.since, "--since") if args.since else None
        windows = asyncio.run(_rebuild(settings, since))
    except FilterError as exc:
        print(f"feedgate: {exc}", file=sys.stderr)
        return 2
    print(f"rollups rebuilt: {windows} windows{f' from {since}' if since else ''}")
    return 0


async def _check(settings: Settings, hours: int) -> tuple[int, list[str]]:
    store = make_store(settings)
    await store.open()
    try:
        return await check(store, tuple(settings.analysis.properties), hours)
    finally:
        await store.close()


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    if args.hours < 1:
        print("feedgate: --hours must be at least 1", file=sys.stderr)
        return 2
    hours, problems = asyncio.run(_check(settings, args.hours))
    for problem in problems[:50]:
        print(problem)
    if problems:
        print(f"{len(problems)} differences in {hours} hours: run feedgate rollups rebuild")
        return 1
    print(f"rollups match the rows in the {hours} hours checked")
    return 0
