"""The console's bounded text search: requests whose prompt (request body) or answer text holds a needle.

A substring test cannot use an index, so the search never scans an unbounded table: it looks only at the
``cap`` newest latest attempts that match the other filters (time range included), counted from where the
page starts (a cursor), and says when it stopped at that bound so the reader can narrow the filters or
carry on from where it stopped. The needle is a plain substring (``instr`` / ``strpos`` / ``position``, never
``LIKE``), so ``%``, ``_`` and ``\\`` in it are the characters themselves.

What it matches: the answer text as ``contains`` compares text everywhere in feedgate (case-insensitive;
SQLite folds ASCII letters only, PostgreSQL every letter its collation knows), and the request body's
bytes as sent, ignoring ASCII case (``Dialect.bytes_contain``; a body stored compressed is decoded and tested
in Python, so a large request is found as a small one is). The body is the JSON the client sent, so a
word the client escaped (``\\u00e9`` for ``é``, ``\\n``, ``\\"``) is found only as it was written there.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from zstandard import ZstdDecompressor

from feedgate.store.bodies import decoded_body, decoded_rows
from feedgate.store.dialect import Dialect, Frag
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import LATEST
from feedgate.store.reads.requests import Position, after_position

SEARCH_CAP = 50_000  # rows examined per page at most: the newest latest attempts the other filters select


@dataclass(frozen=True, slots=True)
class Searched:
    rows: list[dict[str, Any]]
    stopped_at: Position | None  # the last row looked at when the bound ended the search before the page filled


def text_match(dialect: Dialect, needle: str) -> Frag:
    """``r``'s answer text or request body holds ``needle``. A compressed body (store/bodies.py) is not
    tested here (SQL cannot read it): ``_matches`` tests those rows in Python."""
    answer = Frag(dialect.contains("r.response_text"), (needle,))
    body = Frag(dialect.bytes_contain("r.request_body"), dialect.ascii_folded(needle))
    return answer.wrap("(") + body.wrap(" OR (r.request_body_encoding IS NULL AND ", "))")


def _window_matches(
    dialect: Dialect, where: Frag, needle: str, position: Position | None, newer: bool, cap: int
) -> Frag:
    """Rows among the ``cap`` next to ``position`` (newer or older) that ``where`` selects, nearest first, that
    hold ``needle`` or whose request body is compressed (with the body, and whether the answer matched).

    The window is a subquery with its own LIMIT, and the text test sits outside it: neither store moves a
    condition into a subquery that has a LIMIT (the answer would change), so the test never reaches rows
    beyond the bound, as a join or ``IN`` would let a planner do by testing the whole table first.
    """
    order = "ASC" if newer else "DESC"
    columns = "r.id, r.request_id, r.datetime_utc, r.response_text, r.request_body, r.request_body_encoding"
    window = Frag(f"SELECT {columns} FROM requests r WHERE {LATEST} AND (") + where + Frag(")")
    window = window + after_position(position, newer)
    window = window + Frag(f" ORDER BY r.datetime_utc {order}, r.id {order} LIMIT ?", (cap,))
    answered = Frag(dialect.contains("r.response_text"), (needle,)).wrap("CASE WHEN ", " THEN 1 ELSE 0 END")
    picked = answered.wrap(
        "SELECT r.id, r.request_id, r.request_body_encoding, "
        "CASE WHEN r.request_body_encoding IS NULL THEN NULL ELSE r.request_body END AS packed, ",
        " AS answered FROM (",
    )
    query = picked + window + Frag(") r WHERE (") + text_match(dialect, needle)
    return query + Frag(f" OR r.request_body_encoding IS NOT NULL) ORDER BY r.datetime_utc {order}, r.id {order}")


async def _matches(
    store: Store, where: Frag, needle: str, position: Position | None, newer: bool, cap: int, limit: int
) -> list[tuple[int, str]]:
    """``(id, request_id)`` of up to ``limit`` rows holding ``needle``, nearest first, among the ``cap`` rows
    next to ``position``. Read as a stream and stopped at ``limit``: compressed bodies are decoded one by one
    and only as far as the page needs."""
    query = _window_matches(store.dialect, where, needle, position, newer, cap)
    folded = needle.encode().lower()  # ASCII case alone, as Dialect.bytes_contain ignores it
    decompressor = ZstdDecompressor()
    found: list[tuple[int, str]] = []
    # aclosing: stopping early must hand the stream's connection back now, not when the generator is collected.
    async with aclosing(store.stream(query.sql, query.params, batch=max(limit, 64))) as batches:
        async for rows in batches:
            for row in rows:
                encoding = row["request_body_encoding"]
                if encoding is None or row["answered"]:
                    hit = True
                else:
                    body = decoded_body(row["packed"], encoding, decompressor)
                    hit = body is not None and folded in bytes(body).lower()
                if hit:
                    found.append((int(row["id"]), str(row["request_id"])))
                    if len(found) >= limit:
                        return found
    return found


async def search_before(
    store: Store, where: Frag, needle: str, before: Position | None, limit: int, cap: int = SEARCH_CAP
) -> Searched:
    """Up to ``limit`` rows holding ``needle``, newest first, among the ``cap`` rows older than ``before``."""
    found = await _matches(store, where, needle, before, False, cap, limit)
    rows = await _rows(store, [row_id for row_id, _ in found])
    if len(rows) >= limit:
        return Searched(rows, None)
    # Fewer than asked: the window either held every row there is, or ended at the bound with more beyond.
    edge = Frag(f"SELECT r.datetime_utc, r.id FROM requests r WHERE {LATEST} AND (") + where + Frag(")")
    edge = edge + after_position(before, False) + Frag(" ORDER BY r.datetime_utc DESC, r.id DESC LIMIT 2 OFFSET ?")
    edges = await store.fetch(edge.sql, (*edge.params, cap - 1))
    return Searched(rows, (str(edges[0][0]), int(edges[0][1])) if len(edges) == 2 else None)


async def adjacent_match(
    store: Store, where: Frag, needle: str, position: Position, newer: bool, cap: int = SEARCH_CAP
) -> str | None:
    """The request ID next to ``position`` holding ``needle``, among the ``cap`` rows on that side (or None)."""
    found = await _matches(store, where, needle, position, newer, cap, 1)
    return found[0][1] if found else None


async def _rows(store: Store, row_ids: list[int]) -> list[dict[str, Any]]:
    """The matches' whole rows, newest first: read once the page's rows are known, a page's worth at most."""
    if not row_ids:
        return []
    marks = ", ".join("?" for _ in row_ids)
    sql = f"SELECT r.* FROM requests r WHERE r.id IN ({marks}) ORDER BY r.datetime_utc DESC, r.id DESC"
    return decoded_rows(await store.query(sql, row_ids))
