"""``feedgate prune --before WHEN``: delete logged requests older than WHEN, then give the space back.

The same small batches as ``log.retention_days`` (``store/pruning.py``), applied straight to the store: each
a short transaction of its own, so a gateway serving the same store keeps logging in between. Requests in
a live dataset are kept. ``--dry-run`` only counts. ``--vacuum`` (SQLite) rewrites the file once with a
full VACUUM, which switches a store created before incremental vacuum to it; it locks the store meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from feedgate.analysis.selection import moment
from feedgate.commands.client import guarded, print_json
from feedgate.config import Settings
from feedgate.errors import CommandError, FilterError
from feedgate.store import make_store
from feedgate.store.ops import WriteOp
from feedgate.store.protocol import Store
from feedgate.store.pruning import prune_before, reclaim_space
from feedgate.store.retention import FileSpace, count_prunable, sqlite_space, vacuum_full
from feedgate.store.sqlite import sqlite_path


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = subparsers.add_parser(
        "prune", help="delete logged requests older than a time and reclaim the space (safe while serving)"
    )
    parser.add_argument("--before", help="ISO 8601 date or time, or a span back from now: 30d, 12h, 2w")
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite: rewrite the file with a full VACUUM (locks the store while it runs; needs free disk for "
        "a copy); turns on incremental vacuum for a store created before it",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    common(parser)
    parser.set_defaults(run=run)


def _mb(pages: int, space: FileSpace) -> float:
    return round(pages * space.page_size / 1e6, 1)


async def _prune(args: argparse.Namespace, settings: Settings, before: str | None) -> dict[str, Any]:
    store = make_store(settings)
    await store.open()
    summary: dict[str, Any] = {"before": before, "dry_run": bool(args.dry_run)}
    try:
        start = await sqlite_space(store)
        if before is not None and args.dry_run:
            doomed = await count_prunable(store, before)
            summary.update(
                requests=doomed.requests,
                kept_for_datasets=doomed.kept_for_datasets,
                feedback_events=doomed.feedback_events,
                feedback=doomed.feedback,
                scores=doomed.scores,
                request_properties=doomed.request_properties,
            )
        elif before is not None:
            summary.update(await _delete(store, before))
        if args.vacuum and not args.dry_run:
            await _vacuum(store, settings)
            summary["vacuumed"] = True
        end = await sqlite_space(store)
    finally:
        await store.close()
    if start is not None and end is not None:
        summary.update(
            auto_vacuum=end.auto_vacuum,
            file_mb_before=_mb(start.pages, start),
            file_mb_after=_mb(end.pages, end),
            reclaimed_mb=_mb(start.pages - end.pages, end),
            free_mb_inside=_mb(end.free_pages, end),
        )
    return summary


async def _delete(store: Store, before: str) -> dict[str, Any]:
    async def submit(op: WriteOp) -> None:
        await store.apply([op])

    started = time.monotonic()
    totals = await prune_before(submit, before, pause_s=0.01)
    freed = await reclaim_space(submit, pause_s=0.01) if totals.requests else 0
    return {
        "requests": totals.requests,
        "feedback_events": totals.feedback_events,
        "feedback": totals.feedback,
        "scores": totals.scores,
        "request_properties": totals.request_properties,
        "batches": totals.batches,
        "freed_pages": freed,
        "seconds": round(time.monotonic() - started, 1),
    }


async def _vacuum(store: Store, settings: Settings) -> None:
    if store.dialect.name != "sqlite":
        raise CommandError("--vacuum is for SQLite stores: PostgreSQL's autovacuum reclaims space by itself")
    await vacuum_full(sqlite_path(settings.database.url))


def _print(summary: dict[str, Any]) -> None:
    before, requests = summary["before"], summary.get("requests")
    if requests is not None and summary["dry_run"]:
        rest = sum(summary[name] for name in ("feedback_events", "feedback", "scores", "request_properties"))
        print(
            f"would delete {requests:,} requests logged before {before} and {rest:,} feedback, score and "
            f"property rows of them; {summary['kept_for_datasets']:,} older requests are kept for datasets "
            "(dry run: nothing deleted)"
        )
    elif requests is not None:
        rest = sum(summary[name] for name in ("feedback_events", "feedback", "scores", "request_properties"))
        print(
            f"deleted {requests:,} requests logged before {before} and {rest:,} feedback, score and property rows "
            f"of them, in {summary['batches']:,} batches, {summary['seconds']}s"
        )
    if summary["dry_run"]:
        return
    if "auto_vacuum" not in summary:
        if requests is not None:
            print("space: PostgreSQL's autovacuum makes the deleted rows' space reusable (VACUUM FULL shrinks files)")
        return
    print(
        f"space: {summary['reclaimed_mb']:,} MB given back; the file is {summary['file_mb_after']:,} MB "
        f"(was {summary['file_mb_before']:,} MB)"
    )
    if summary["auto_vacuum"] != "incremental" and summary["free_mb_inside"] > 0:
        print(
            f"{summary['free_mb_inside']:,} MB stay free inside the file for new rows: this store was created "
            "before incremental vacuum. `feedgate prune --vacuum` rewrites it once (locking the store while it "
            "runs) so later prunes give space back."
        )


def _moment(value: str) -> str:
    try:
        return moment(value, "--before")
    except FilterError as exc:
        raise CommandError(f"{exc}, nor a span back from now such as 90d, 12h or 2w") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    def work() -> int:
        if args.before is None and not args.vacuum:
            raise CommandError("prune: say --before WHEN (e.g. --before 90d or --before 2025-01-01), or --vacuum")
        before = None if args.before is None else _moment(args.before)
        summary = asyncio.run(_prune(args, settings, before))
        if args.json:
            print_json(summary)
        else:
            _print(summary)
        return 0

    return guarded(work)
