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
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from zstandard import ZstdDecompressor

from feedgate.store.bodies import decoded_row
from feedgate.store.dialect import Frag
from feedgate.store.filters import RATED_REQUESTS
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
# What a jsonl line shows (analysis/request_rows.helicone_row): every column but the query string, the
# fingerprints, the response headers and the body size; a plain answer's response_json is not read either.
_NOT_SHOWN = ("query", "prompt_fingerprint", "messages_fingerprint", "response_headers_json", "body_bytes")
FULL_COLUMNS = ["id", "attempt", *(name for name in REQUEST_COLUMNS if name not in _NOT_SHOWN)]
_FULL_SELECT = {"response_json": _NARROW_SELECT["response_json"]}
_RATING = "(SELECT f.rating FROM feedback f WHERE f.target_type = 'request' AND f.target_id = r.request_id)"
_RANK = {1: 0, None: 1, 0: 2}
# Chunks in flight, the one being converted included. On PostgreSQL the next one is read while this one is
# converted (asyncpg decodes on the event loop; the server works meanwhile). SQLite reads on threads that
# need the GIL for every row, and contend with the conversion for it: reading ahead made a jsonl export of
# 99,465 rows slower (20,700 rows/s, against 25,100 read one chunk at a time; openai-chat 33,900 against
# 38,500-39,400).
READ_AHEAD = {"postgres": 2, "sqlite": 1}


def dataset_scope(dataset_id: str) -> Frag:
    return Frag("r.request_id IN (SELECT i.request_id FROM dataset_items i WHERE i.dataset_id = ?)", (dataset_id,))


async def export_order(store: Store, where: Frag, order: Order, rated_only: bool = False) -> list[int]:
    """Row ids of the matching requests (latest attempts) in export order."""
    # As compile_filter(every_row=True) matches a rating: the rated requests are a list SQLite can start from.
    rated = f" AND r.request_id IN ({RATED_REQUESTS})"
    rating = _RATING if order == "rating" else "NULL"  # a lookup per row, for the one order that uses it
    # The fingerprint only for the order that groups by it: without it, an index that does not hold it can
    # answer the query (requests_request_id_model, when the filter leads there).
    fingerprint = "r.messages_fingerprint" if order == "conversation" else "NULL"
    query = Frag(f"SELECT r.id, {fingerprint}, {rating} FROM requests r WHERE {LATEST}")
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


class Chunk:
    """One chunk of rows in export order, kept as the plain tuples read (which the GC stops tracking) and made
    dicts one at a time as the caller converts them: a dict held per row for the whole chunk would be
    traversed by every collection meanwhile, and promoted through the generations into the next full one."""

    def __init__(
        self,
        names: list[str],
        rows: list[tuple[Any, ...]],
        later: tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]] | None = None,
    ) -> None:
        self.names = names
        self.rows = rows
        self._later = later
        self._decompressor = ZstdDecompressor()

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self.rows)):
            yield self.row(index)

    def column(self, name: str) -> list[Any]:
        at = self.names.index(name)
        return [row[at] for row in self.rows]

    def row(self, index: int) -> dict[str, Any]:
        """The ``index``-th row as a dict, as iterating gives it."""
        return self._completed(dict(zip(self.names, self.rows[index], strict=True)))

    def _completed(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with its bodies decoded (``store/bodies.py``), and a full row's scores and later properties."""
        decoded_row(row, self._decompressor)
        if self._later is not None:
            scores, properties = self._later
            row["scores"] = scores.get(row["request_id"], {})
            row["later_properties"] = properties.get(row["request_id"], {})
        return row


async def _chunk(store: Store, part: list[int], full: bool) -> Chunk:
    marks = ", ".join("?" for _ in part)
    columns = FULL_COLUMNS if full else NARROW_COLUMNS
    select = _FULL_SELECT if full else _NARROW_SELECT
    selected = ", ".join(select.get(name, f"r.{name}") for name in columns)
    rows = await store.fetch(
        f"SELECT {selected}, f.rating, f.comment, f.datetime_utc "
        "FROM requests r LEFT JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id "
        f"WHERE r.id IN ({marks})",
        part,
    )
    names = [*columns, "rating", "comment", "rated_utc"]
    by_id = {row[0]: row for row in rows}
    found = [by_id[row_id] for row_id in part if row_id in by_id]
    if not found or not full:
        return Chunk(names, found)
    at = names.index("request_id")
    request_ids = [row[at] for row in found]
    marks = ", ".join("?" for _ in request_ids)
    later = await store.fetch(
        f"SELECT request_id, key, value FROM request_properties WHERE request_id IN ({marks})", request_ids
    )
    scores = await scores_for(store, request_ids)
    properties: dict[str, dict[str, str]] = {}
    for request_id, key, value in later:
        properties.setdefault(request_id, {})[key] = value
    return Chunk(names, found, (scores, properties))


async def export_rows(
    store: Store, ids: Sequence[int], *, full: bool = False, chunk: int = 1000
) -> AsyncIterator[Chunk]:
    """The rows of ``ids`` in that order, a chunk at a time, with ``rating`` and ``comment``; ``full`` rows
    (what a jsonl line shows) also with ``scores`` and ``later_properties``, narrow ones with what the other
    formats read.

    On PostgreSQL the next chunk is read while the caller converts this one (``READ_AHEAD``).
    """
    parts = [list(ids[start : start + chunk]) for start in range(0, len(ids), chunk)]
    in_flight = READ_AHEAD.get(store.dialect.name, 1)
    ahead: deque[asyncio.Future[Chunk]] = deque()
    try:
        for index in range(len(parts)):
            while len(ahead) < in_flight and index + len(ahead) < len(parts):
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
