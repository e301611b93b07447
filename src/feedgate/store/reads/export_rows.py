"""Rows for dataset exports, read in two steps so memory stays flat and the order is ours to choose.

Step one reads only narrow facts of every matching request (row id, conversation fingerprint, rating)
and orders them in Python: the best-rated first (so the first copy of an input kept is the best one), or
grouped by conversation (so preference pairs are found group by group). Step two reads the wide rows,
bodies included, a chunk of IDs at a time, in that order. Sorting wide rows in SQL would spill bodies
into temporary storage; reading them in chunks by row id keeps only one chunk in memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from zstandard import ZstdDecompressor

from feedgate.store.bodies import decoded_row
from feedgate.store.dialect import Frag
from feedgate.store.ops import REQUEST_COLUMNS
from feedgate.store.protocol import Store
from feedgate.store.reads.feedback import scores_for
from feedgate.store.reads.groups import LATEST

Order = Literal["time", "rating", "conversation"]
# What the training formats read (analysis/export_run.py, response_chains.py): no properties, users or times.
NARROW_COLUMNS = [
    "id",
    "request_id",
    "provider",
    "path",
    "is_stream",
    "status",
    "messages_fingerprint",
    "request_body",
    "response_body",
    "response_json",
    "method",
    "api",
    "response_id",
    "request_body_encoding",
    "response_body_encoding",
]
# A stream's answer is its reassembled message (response_json); its raw events (response_body, the largest
# column) are read only for jsonl, which exports them. A plain answer's response_json is not read either.
_NARROW_SELECT = {
    "response_body": "CASE WHEN r.is_stream = 0 THEN r.response_body END",
    "response_json": "CASE WHEN r.is_stream <> 0 THEN r.response_json END",
}
FULL_COLUMNS = ["id", "attempt", *REQUEST_COLUMNS]
_RATING = "(SELECT f.rating FROM feedback f WHERE f.target_type = 'request' AND f.target_id = r.request_id)"
_RANK = {1: 0, None: 1, 0: 2}
READ_AHEAD = 2


def dataset_scope(dataset_id: str) -> Frag:
    return Frag("r.request_id IN (SELECT i.request_id FROM dataset_items i WHERE i.dataset_id = ?)", (dataset_id,))


async def export_order(store: Store, where: Frag, order: Order, rated_only: bool = False) -> list[int]:
    """Row ids of the matching requests (latest attempts) in export order."""
    rated = " AND EXISTS (SELECT 1 FROM feedback f WHERE f.target_type = 'request' AND f.target_id = r.request_id)"
    rating = _RATING if order == "rating" else "NULL"  # a lookup per row, for the one order that uses it
    query = Frag(f"SELECT r.id, r.messages_fingerprint, {rating} FROM requests r WHERE {LATEST}")
    query = query + Frag(rated if rated_only else "") + where.wrap(" AND (", ")")
    if order == "conversation":
        query = query + Frag(" AND r.messages_fingerprint IS NOT NULL")
    rows = await store.fetch(query.sql, query.params)
    if order == "rating":
        rows.sort(key=lambda row: (_RANK.get(row[2], 1), row[0]))
    elif order == "conversation":
        rows.sort(key=lambda row: (row[1], row[0]))
    else:
        rows.sort(key=lambda row: row[0])
    return [row[0] for row in rows]


async def _chunk(store: Store, part: list[int], full: bool) -> list[dict[str, Any]]:
    marks = ", ".join("?" for _ in part)
    columns = FULL_COLUMNS if full else NARROW_COLUMNS
    selected = ", ".join(f"r.{name}" if full else _NARROW_SELECT.get(name, f"r.{name}") for name in columns)
    rows = await store.fetch(
        f"SELECT {selected}, f.rating, f.comment, f.datetime_utc "
        "FROM requests r LEFT JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id "
        f"WHERE r.id IN ({marks})",
        part,
    )
    names = [*columns, "rating", "comment", "rated_utc"]
    decompressor = ZstdDecompressor()
    by_id = {row[0]: decoded_row(dict(zip(names, row, strict=True)), decompressor) for row in rows}
    found = [by_id[row_id] for row_id in part if row_id in by_id]
    request_ids = [row["request_id"] for row in found]
    if not request_ids or not full:
        return found
    marks = ", ".join("?" for _ in request_ids)
    later = await store.fetch(
        f"SELECT request_id, key, value FROM request_properties WHERE request_id IN ({marks})", request_ids
    )
    scores = await scores_for(store, request_ids)
    properties: dict[str, dict[str, str]] = {}
    for request_id, key, value in later:
        properties.setdefault(request_id, {})[key] = value
    for row in found:
        row["scores"] = scores.get(row["request_id"], {})
        row["later_properties"] = properties.get(row["request_id"], {})
    return found


async def export_rows(
    store: Store, ids: Sequence[int], *, full: bool = False, chunk: int = 1000
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of ``ids`` in that order, a chunk at a time, with ``rating`` and ``comment``; ``full`` rows
    (every column) also with ``scores`` and ``later_properties``, narrow ones with what the formats read.

    The next chunks are read while the caller converts this one, each on a read connection of its own
    (SQLite reads on their own threads), so reading and converting overlap.
    """
    parts = [list(ids[start : start + chunk]) for start in range(0, len(ids), chunk)]
    ahead: deque[asyncio.Future[list[dict[str, Any]]]] = deque()
    try:
        for index in range(len(parts)):
            while len(ahead) < READ_AHEAD and index + len(ahead) < len(parts):
                ahead.append(asyncio.ensure_future(_chunk(store, parts[index + len(ahead)], full)))
            yield await ahead.popleft()
    finally:
        for future in ahead:
            future.cancel()


RESPONSE_COLUMNS = [
    "id",
    "response_id",
    "method",
    "status",
    "is_stream",
    "request_body",
    "response_body",
    "response_json",
    "request_body_encoding",
    "response_body_encoding",
]


async def rows_by_response_id(store: Store, response_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The logged Responses API calls that answered with each response ID (the create, and any retrieval of a
    background response), oldest first; found through the partial index on ``response_id``."""
    ids = list(dict.fromkeys(response_ids))
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ", ".join("?" for _ in part)
        selected = ", ".join(f"r.{name}" for name in RESPONSE_COLUMNS)
        rows = await store.fetch(
            f"SELECT {selected} FROM requests r WHERE r.api = 'responses' AND r.response_id IN ({marks}) ORDER BY r.id",
            part,
        )
        for row in rows:
            found = decoded_row(dict(zip(RESPONSE_COLUMNS, row, strict=True)))
            out.setdefault(found["response_id"], []).append(found)
    return out
