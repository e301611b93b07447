"""Reading feedback back: one request's or session's ratings, signals and scores, and pending feedback.

Written once with ``?`` placeholders over ``Store.query``, so SQLite and PostgreSQL run the same SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson

from feedgate.store.bounds import MAX_EXACT_INT
from feedgate.store.protocol import Store


def _rating(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _metadata(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def score_value(value: float, value_type: str) -> int | float | bool:
    """A score as it was given: integers stay integers, booleans booleans.

    An integer score beyond +-2**53 (which older versions accepted) comes back as the float the store
    holds: as an integer it would not be the one sent anyway, and beyond 64 bits no JSON encoder writes it.
    """
    if value_type == "bool":
        return bool(value)
    if value_type == "int" and math.isfinite(value) and abs(value) <= MAX_EXACT_INT:
        return int(value)
    return float(value)


async def scores_for(store: Store, request_ids: Sequence[str]) -> dict[str, dict[str, int | float | bool]]:
    if not request_ids:
        return {}
    marks = ", ".join("?" for _ in request_ids)
    rows = await store.query(
        f"SELECT request_id, name, value, value_type FROM scores WHERE request_id IN ({marks}) ORDER BY name",
        list(request_ids),
    )
    out: dict[str, dict[str, int | float | bool]] = {}
    for row in rows:
        out.setdefault(row["request_id"], {})[row["name"]] = score_value(row["value"], row["value_type"])
    return out


async def feedback_state(store: Store, target_type: str, target_id: str) -> dict[str, Any]:
    """The current explicit rating, its history, implicit signals and (for requests) scores."""
    current = await store.query(
        "SELECT rating, comment, user_id, metadata_json, datetime_utc FROM feedback "
        "WHERE target_type = ? AND target_id = ?",
        (target_type, target_id),
    )
    events = await store.query(
        "SELECT kind, rating, signal, comment, user_id, metadata_json, source, datetime_utc FROM feedback_events "
        "WHERE target_type = ? AND target_id = ? ORDER BY id",
        (target_type, target_id),
    )
    history: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    for event in events:
        item = {
            "rating": _rating(event["rating"]),
            "comment": event["comment"],
            "user_id": event["user_id"],
            "metadata": _metadata(event["metadata_json"]),
            "source": event["source"],
            "datetime_utc": event["datetime_utc"],
        }
        if event["kind"] == "explicit":
            history.append(item)
        else:
            signals.append({"signal": event["signal"], **item})
    state: dict[str, Any] = {
        "rating": _rating(current[0]["rating"]) if current else None,
        "comment": current[0]["comment"] if current else None,
        "user_id": current[0]["user_id"] if current else None,
        "metadata": _metadata(current[0]["metadata_json"]) if current else None,
        "datetime_utc": current[0]["datetime_utc"] if current else None,
        "history": history,
        "signals": signals,
    }
    if target_type == "request":
        state["scores"] = (await scores_for(store, [target_id])).get(target_id, {})
    return state


async def request_annotations(store: Store, request_id: str) -> dict[str, Any]:
    """What feedback adds to a request row: its rating, scores and after-the-fact properties."""
    current = await store.query(
        "SELECT rating, datetime_utc FROM feedback WHERE target_type = 'request' AND target_id = ?", (request_id,)
    )
    properties = await store.query(
        "SELECT key, value FROM request_properties WHERE request_id = ? ORDER BY key", (request_id,)
    )
    return {
        "feedback_rating": _rating(current[0]["rating"]) if current else None,
        "feedback_created_at": current[0]["datetime_utc"] if current else None,
        "scores": (await scores_for(store, [request_id])).get(request_id, {}),
        "properties": {row["key"]: row["value"] for row in properties},
    }


_PENDING = """
SELECT target_id AS request_id, COUNT(*) AS events, MIN(datetime_utc) AS first_utc, MAX(datetime_utc) AS last_utc
FROM (
    SELECT target_id, datetime_utc FROM feedback_events WHERE target_type = 'request'
    UNION ALL SELECT request_id, datetime_utc FROM scores
    UNION ALL SELECT request_id, datetime_utc FROM request_properties
) AS notes
WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = notes.target_id)
GROUP BY target_id
HAVING MIN(datetime_utc) < ?
ORDER BY first_utc
"""


async def pending_feedback(store: Store, older_than_utc: str) -> list[dict[str, Any]]:
    """Feedback, scores and properties whose request has not been logged, first noted before the cut-off.

    Pass a cut-off in the future to list everything pending.
    """
    return await store.query(_PENDING, (older_than_utc,))


async def session_request_count(store: Store, session_id: str) -> int:
    """How many request IDs carry this session ID."""
    rows = await store.query("SELECT COUNT(DISTINCT request_id) AS n FROM requests WHERE session_id = ?", (session_id,))
    return int(rows[0]["n"]) if rows else 0


_PENDING_COUNT = """
SELECT COUNT(DISTINCT target_id) AS n
FROM (
    SELECT target_id FROM feedback_events WHERE target_type = 'request'
    UNION ALL SELECT request_id FROM scores
    UNION ALL SELECT request_id FROM request_properties
) AS notes
WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = notes.target_id)
"""


async def pending_count(store: Store) -> int:
    """How many request IDs have feedback, scores or properties but no logged request (yet)."""
    rows = await store.fetch(_PENDING_COUNT)
    return int(rows[0][0]) if rows else 0


async def trace_of(store: Store, request_id: str) -> tuple[str, str] | None:
    """The trace and span of a traced request's latest attempt: where feedback on it is recorded."""
    rows = await store.fetch(
        "SELECT trace_id, span_id FROM requests WHERE request_id = ? AND trace_id IS NOT NULL "
        "ORDER BY attempt DESC LIMIT 1",
        (request_id,),
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows and rows[0][1] is not None else None


async def signals_for(store: Store, request_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per request ID: how many times each implicit signal was recorded for it."""
    if not request_ids:
        return {}
    marks = ", ".join("?" for _ in request_ids)
    rows = await store.fetch(
        "SELECT target_id, signal, COUNT(*) FROM feedback_events WHERE target_type = 'request' AND kind = 'implicit' "
        f"AND target_id IN ({marks}) GROUP BY target_id, signal ORDER BY target_id, signal",
        list(request_ids),
    )
    out: dict[str, dict[str, int]] = {}
    for target_id, signal, count in rows:
        out.setdefault(str(target_id), {})[str(signal)] = int(count)
    return out
