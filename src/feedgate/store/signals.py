"""Implicit signals the store derives from the rows it inserts, written once for both stores.

Two kinds: the signals an exchange carries itself (a stream the client left early is ``abandoned``), and
``regenerated``, set on an earlier answer when the same user or session sends the same conversation again
within ``feedback.regenerate_window_s``: they asked again because the first answer did not do.

Only finding that earlier answer differs between the stores (SQLite looks row by row, PostgreSQL in one
query for the whole batch); each store passes its way of looking as ``find_previous``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from feedgate.store.dialect import Executor
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest
from feedgate.store.statements import INSERT_EVENT
from feedgate.store.utc import utc_text

# (messages fingerprint, request ID, window start, window end, session ID, user ID)
Lookup = tuple[str, str, str, str, str | None, str | None]
# The lookups to make, each with the index of its row in the batch -> {row index: earlier request ID}
Derived = tuple[str, str, bool]  # an event the store added: (request ID, signal, positive?)
FindPrevious = Callable[[list[tuple[int, Lookup]]], Awaitable[dict[int, str]]]

_COL = {name: index for index, name in enumerate(REQUEST_COLUMNS)}
_FINGERPRINT, _SESSION, _USER, _WHEN = (
    _COL["messages_fingerprint"],
    _COL["session_id"],
    _COL["user_id"],
    _COL["datetime_utc"],
)


def _lookups(inserts: Sequence[InsertRequest], window: timedelta) -> list[tuple[int, Lookup]]:
    """For each row that can have an earlier answer (a conversation, from a known user or session), what to look for."""
    out: list[tuple[int, Lookup]] = []
    for index, op in enumerate(inserts):
        values = op.values
        fingerprint, session_id, user_id = values[_FINGERPRINT], values[_SESSION], values[_USER]
        if fingerprint is None or (session_id is None and user_id is None):
            continue
        when = values[_WHEN]
        # A row's time is always utc_text's form, which fromisoformat reads in a tenth of strptime's time.
        since = utc_text(datetime.fromisoformat(when) - window)
        out.append((index, (fingerprint, op.request_id, since, when, session_id, user_id)))
    return out


def _event(request_id: str, signal: str, when: str) -> tuple[Any, ...]:
    return ("request", request_id, "implicit", 0, signal, None, None, None, "feedgate", when)


async def insert_derived_signals(
    db: Executor, inserts: Sequence[InsertRequest], window: timedelta, find_previous: FindPrevious
) -> list[Derived]:
    """Insert the signal events of a batch of request rows, in row order, inside the writer's transaction.

    Returns them as (request ID, signal, positive?) for the rollups.
    """
    lookups = _lookups(inserts, window)
    previous = await find_previous(lookups) if lookups else {}
    events: list[tuple[Any, ...]] = []
    for index, op in enumerate(inserts):
        when = op.values[_WHEN]
        events.extend(_event(op.request_id, signal, when) for signal in op.derived_signals)
        if index in previous:
            events.append(_event(previous[index], "regenerated", when))
    if events:
        await db.executemany(INSERT_EVENT, events)
    return [(event[1], event[4], bool(event[3])) for event in events]
