"""The console's bounded text search: requests whose prompt (request body) or answer text holds a needle.

A substring test cannot use an index, so the search never scans an unbounded table: it looks only at the
``cap`` newest latest attempts that match the other filters (time range included), counted from where the
page starts (a cursor), and says when it stopped at that bound so the reader can narrow the filters or
carry on from where it stopped. The needle is a plain substring (``instr`` / ``strpos`` / ``position``, never
``LIKE``), so ``%``, ``_`` and ``\\`` in it are the characters themselves.

What it matches: the answer text as ``contains`` compares text everywhere in feedgate (case-insensitive;
SQLite folds ASCII letters only, PostgreSQL every letter its collation knows), and the request body's
bytes as logged, ignoring ASCII case (``Dialect.bytes_contain``). The body is the JSON the client sent, so a
word the client escaped (``\\u00e9`` for ``é``, ``\\n``, ``\\"``) is found only as it was written there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedgate.store.bodies import decoded_rows
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
    """``r``'s answer text or request body holds ``needle``."""
    answer = Frag(dialect.contains("r.response_text"), (needle,))
    body = Frag(dialect.bytes_contain("r.request_body"), dialect.ascii_folded(needle))
    return answer.wrap("(") + body.wrap(" OR ", ")")


def _matches_in_window(
    dialect: Dialect, where: Frag, needle: str, position: Position | None, newer: bool, cap: int, limit: int
) -> Frag:
    """``id`` and ``request_id`` of up to ``limit`` rows holding ``needle``, nearest first, among the ``cap`` rows
    next to ``position`` (newer or older) that ``where`` selects.

    The window is a subquery with its own LIMIT, and the text test sits outside it: neither store moves a
    condition into a subquery that has a LIMIT (the answer would change), so the test never reaches rows
    beyond the bound, as a join or ``IN`` would let a planner do by testing the whole table first.
    """
    order = "ASC" if newer else "DESC"
    columns = "r.id, r.request_id, r.datetime_utc, r.response_text, r.request_body"
    window = Frag(f"SELECT {columns} FROM requests r WHERE {LATEST} AND (") + where + Frag(")")
    window = window + after_position(position, newer)
    window = window + Frag(f" ORDER BY r.datetime_utc {order}, r.id {order} LIMIT ?", (cap,))
    query = window.wrap("SELECT r.id, r.request_id FROM (", ") r WHERE ") + text_match(dialect, needle)
    return query + Frag(f" ORDER BY r.datetime_utc {order}, r.id {order} LIMIT ?", (limit,))


async def search_before(
    store: Store, where: Frag, needle: str, before: Position | None, limit: int, cap: int = SEARCH_CAP
) -> Searched:
    """Up to ``limit`` rows holding ``needle``, newest first, among the ``cap`` rows older than ``before``."""
    matches = _matches_in_window(store.dialect, where, needle, before, False, cap, limit)
    found = await store.fetch(matches.sql, matches.params)
    rows = await _rows(store, [int(item[0]) for item in found])
    if len(rows) >= limit:
        return Searched(rows, None)
    # Fewer than asked: the window either held every row there is, or ended at the bound with more beyond.
    edge = Frag(f"SELECT r.datetime_utc, r.id FROM requests r WHERE {LATEST} AND (") + where + Frag(")")
    edge = edge + after_position(before, False) + Frag(" ORDER BY r.datetime_utc DESC, r.id DESC LIMIT 2 OFFSET ?")
    found = await store.fetch(edge.sql, (*edge.params, cap - 1))
    return Searched(rows, (str(found[0][0]), int(found[0][1])) if len(found) == 2 else None)


async def adjacent_match(
    store: Store, where: Frag, needle: str, position: Position, newer: bool, cap: int = SEARCH_CAP
) -> str | None:
    """The request ID next to ``position`` holding ``needle``, among the ``cap`` rows on that side (or None)."""
    matches = _matches_in_window(store.dialect, where, needle, position, newer, cap, 1)
    rows = await store.fetch(matches.sql, matches.params)
    return str(rows[0][1]) if rows else None


async def _rows(store: Store, row_ids: list[int]) -> list[dict[str, Any]]:
    """The matches' whole rows, newest first: read once the page's rows are known, a page's worth at most."""
    if not row_ids:
        return []
    marks = ", ".join("?" for _ in row_ids)
    sql = f"SELECT r.* FROM requests r WHERE r.id IN ({marks}) ORDER BY r.datetime_utc DESC, r.id DESC"
    return decoded_rows(await store.query(sql, row_ids))
