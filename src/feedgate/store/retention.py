"""Retention in SQL, for both stores: delete old logged requests with what hangs off them, count them first.

A request goes with its feedback events, current rating, scores and properties (``target_type`` 'request'),
once no row (attempt) of its ID is left, so nothing is orphaned. Requests in a live dataset stay: a dataset
is what someone built on purpose. Session feedback, datasets, the response cache (it expires by itself),
rollups (``rollup_*``: trends outlive raw logs), ``feedgate_runs`` and ``console_sessions`` are never touched.

Space: PostgreSQL reuses deleted rows' space after autovacuum. SQLite keeps freed pages inside the file
unless the database was created with ``auto_vacuum=INCREMENTAL`` (new stores are): then
``PRAGMA incremental_vacuum`` gives them back in small steps (``ReclaimSpace``, applied by ``SqliteStore``).
An older store needs one full ``VACUUM`` (``vacuum_full``) to switch to incremental mode.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from feedgate.store.dialect import Executor
from feedgate.store.ops import PruneBefore
from feedgate.store.protocol import Store

_UNCLAIMED = "AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = {column})"


def drop_pending_statements(count: int) -> list[str]:
    """Delete what hangs off ``count`` request IDs (feedback events, rating, scores, properties), sparing the
    IDs a request row exists for: unclaimed feedback (``DropPending``) and what pruned requests leave."""
    marks = ", ".join("?" for _ in range(count))
    return [
        f"DELETE FROM feedback_events WHERE target_type = 'request' AND target_id IN ({marks}) "
        + _UNCLAIMED.format(column="feedback_events.target_id"),
        f"DELETE FROM feedback WHERE target_type = 'request' AND target_id IN ({marks}) "
        + _UNCLAIMED.format(column="feedback.target_id"),
        f"DELETE FROM scores WHERE request_id IN ({marks}) " + _UNCLAIMED.format(column="scores.request_id"),
        f"DELETE FROM request_properties WHERE request_id IN ({marks}) "
        + _UNCLAIMED.format(column="request_properties.request_id"),
    ]


# Any attempt of a request ID in a live dataset keeps every attempt of it.
_KEPT = (
    "EXISTS (SELECT 1 FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id "
    "WHERE i.request_id = r.request_id AND d.deleted_utc IS NULL)"
)
_OLDEST = (
    "SELECT r.id, r.request_id, r.datetime_utc FROM requests r "
    f"WHERE r.datetime_utc < ? AND r.datetime_utc >= ? AND NOT {_KEPT} ORDER BY r.datetime_utc LIMIT ?"
)
_CHUNK = 500  # parameters per IN list: far below either database's limit
_TABLES = ("feedback_events", "feedback", "scores", "request_properties")


async def apply_prune(db: Executor, op: PruneBefore) -> None:
    """Delete one batch inside the writer's transaction; fills ``op.result``."""
    rows = await db.fetch(_OLDEST, (op.before_utc, op.from_utc, op.limit))
    result = op.result
    result.requests = result.feedback_events = result.feedback = result.scores = result.request_properties = 0
    result.last_utc = rows[-1][2] if rows else None
    row_ids = [row[0] for row in rows]
    for start in range(0, len(row_ids), _CHUNK):
        chunk = row_ids[start : start + _CHUNK]
        result.requests += await db.changed(f"DELETE FROM requests WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    request_ids = list(dict.fromkeys(row[1] for row in rows))
    for start in range(0, len(request_ids), _CHUNK):
        chunk = request_ids[start : start + _CHUNK]
        # The statements that drop unclaimed feedback: they spare IDs a row (a newer attempt) is left for.
        for table, statement in zip(_TABLES, drop_pending_statements(len(chunk)), strict=True):
            deleted = await db.changed(statement, chunk)
            setattr(result, table, getattr(result, table) + deleted)


@dataclass(frozen=True, slots=True)
class Doomed:
    """What pruning before a time would delete (a dry run)."""

    requests: int
    kept_for_datasets: int
    feedback_events: int
    feedback: int
    scores: int
    request_properties: int


async def count_prunable(store: Store, before_utc: str) -> Doomed:
    """Count what ``PruneBefore`` batches up to ``before_utc`` would delete, without deleting anything."""
    old = "FROM requests r WHERE r.datetime_utc < ?"
    # IDs none of whose rows would be left: all older than the cut-off, and not kept for a dataset.
    gone = (
        f"SELECT DISTINCT r.request_id {old} AND NOT {_KEPT} AND NOT EXISTS "
        "(SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.datetime_utc >= ?)"
    )
    rows = await store.fetch(
        f"SELECT (SELECT COUNT(*) {old} AND NOT {_KEPT}), (SELECT COUNT(*) {old} AND {_KEPT}), "
        "(SELECT COUNT(*) FROM feedback_events WHERE target_type = 'request' AND target_id IN (g)), "
        "(SELECT COUNT(*) FROM feedback WHERE target_type = 'request' AND target_id IN (g)), "
        "(SELECT COUNT(*) FROM scores WHERE request_id IN (g)), "
        "(SELECT COUNT(*) FROM request_properties WHERE request_id IN (g))".replace("(g)", f"({gone})"),
        [before_utc, before_utc, *([before_utc, before_utc] * 4)],
    )
    return Doomed(*(int(value) for value in rows[0]))


@dataclass(frozen=True, slots=True)
class FileSpace:
    """A SQLite file's pages: how many, how large, how many free, and whether they can be given back."""

    page_size: int
    pages: int
    free_pages: int
    auto_vacuum: str  # "none", "full" or "incremental"

    @property
    def file_bytes(self) -> int:
        return self.page_size * self.pages


async def sqlite_space(store: Store) -> FileSpace | None:
    """The SQLite store's file pages; None on PostgreSQL."""
    if store.dialect.name != "sqlite":
        return None
    rows = await store.fetch(
        "SELECT (SELECT page_size FROM pragma_page_size), (SELECT page_count FROM pragma_page_count), "
        "(SELECT freelist_count FROM pragma_freelist_count), (SELECT auto_vacuum FROM pragma_auto_vacuum)"
    )
    size, pages, free, mode = (int(value) for value in rows[0])
    return FileSpace(size, pages, free, {0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode)))


async def vacuum_full(path: str) -> None:
    """Rewrite a SQLite file whole, in incremental auto-vacuum mode: it holds the store's write lock while
    it runs (minutes for gigabytes) and needs free disk for a copy. Later prunes then give space back."""

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=60.0)
        try:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    await asyncio.to_thread(run)


INCREMENTAL_VACUUM = "PRAGMA incremental_vacuum({pages})"
FREE_PAGES = "PRAGMA freelist_count"
