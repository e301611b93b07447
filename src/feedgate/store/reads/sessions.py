"""Sessions (``Helicone-Session-Id``) as lists of calls: their size, time span and session rating, newest first.

Written once for both stores. A session is every logged request carrying its ID; a filter narrows which of
its requests count (a session appears when at least one does).
"""

from __future__ import annotations

from typing import Any

from feedgate.store.dialect import Frag
from feedgate.store.protocol import Store

SessionPosition = tuple[str, str]  # (last_utc, session_id) of a session: where a newest-first list stands


async def sessions_before(
    store: Store, where: Frag, before: SessionPosition | None, limit: int
) -> list[dict[str, Any]]:
    """Sessions with requests matching ``where``, by their latest request, newest first, after ``before``.

    Each: ``session_id``, ``requests`` (distinct request IDs), ``first_utc``, ``last_utc`` and ``rating``
    (the session's own explicit rating, or None).
    """
    query = Frag(
        "SELECT r.session_id, COUNT(DISTINCT r.request_id) AS requests, MIN(r.datetime_utc) AS first_utc, "
        "MAX(r.datetime_utc) AS last_utc, (SELECT f.rating FROM feedback f WHERE f.target_type = 'session' "
        "AND f.target_id = r.session_id) AS rating FROM requests r WHERE r.session_id IS NOT NULL AND ("
    )
    query = query + where + Frag(") GROUP BY r.session_id")
    if before is not None:
        moment, session_id = before
        query = query + Frag(
            " HAVING MAX(r.datetime_utc) < ? OR (MAX(r.datetime_utc) = ? AND r.session_id < ?)",
            (moment, moment, session_id),
        )
    query = query + Frag(" ORDER BY MAX(r.datetime_utc) DESC, r.session_id DESC LIMIT ?", (limit,))
    rows = await store.query(query.sql, query.params)
    for row in rows:
        row["rating"] = None if row["rating"] is None else bool(row["rating"])
    return rows
