"""Keeping rollups inside the writer's transaction: each batch's change to them, from before and after.

For the requests a batch touches, the state before the batch is read inside its transaction (most new rows
have none: one probe query per batch finds the few that do), the state after is the state before with the
batch's ops played over it in the order the store applies them (request rows first, then the rest in
order), and the rollups change by after minus before. Implicit signals the store derives itself
(``regenerated`` on an earlier answer) are passed in once it has inserted them.

PostgreSQL: two instances could each read a state the other is changing; ``RollupLock`` makes their
rollup-changing transactions take turns, so each reads what the other committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from feedgate.store.ops import (
    REQUEST_COLUMNS,
    DeleteScores,
    InsertRequest,
    PutFeedback,
    PutProperty,
    PutScores,
    WriteOp,
)
from feedgate.store.rollups.cells import ATTEMPT_COLUMNS, Attempt, RequestState, Totals, attempt_from
from feedgate.store.rollups.upserts import write_totals

CHUNK = 500  # ids per IN list: within every SQLite build's limit on bound parameters
_COLUMN = {name: index for index, name in enumerate(REQUEST_COLUMNS)}
_ATTEMPT_INDEXES = tuple(_COLUMN[name] for name in ATTEMPT_COLUMNS)
Touching = InsertRequest | PutFeedback | PutScores | DeleteScores | PutProperty


class Fetcher(Protocol):
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Reader(Fetcher, Protocol):
    """The writer's connection, read from inside its transaction."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def touched_id(op: WriteOp) -> str | None:
    """The request whose statistics an op changes, if any."""
    if isinstance(op, InsertRequest):
        return op.request_id
    if isinstance(op, PutFeedback):
        return op.target_id if op.target_type == "request" else None
    if isinstance(op, PutScores | DeleteScores | PutProperty):
        return op.request_id
    return None


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


async def _chunks(db: Fetcher, sql: str, ids: list[str], times: int = 1) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows += await db.fetch(sql.format(marks=_marks(len(chunk))), chunk * times)
    return rows


_PROBE = (
    "SELECT target_id FROM feedback_events WHERE target_type = 'request' AND target_id IN ({marks}) "
    "UNION ALL SELECT request_id FROM scores WHERE request_id IN ({marks}) "
    "UNION ALL SELECT request_id FROM request_properties WHERE request_id IN ({marks})"
)
_PROBE_ROWS = " UNION ALL SELECT request_id FROM requests WHERE request_id IN ({rows})"
_ATTEMPTS = f"SELECT request_id, attempt, {', '.join(ATTEMPT_COLUMNS)} FROM requests WHERE request_id IN ({{marks}})"
_RATINGS = "SELECT target_id, rating FROM feedback WHERE target_type = 'request' AND target_id IN ({marks})"
_SIGNALS = (
    "SELECT target_id, signal, rating, COUNT(*) FROM feedback_events "
    "WHERE kind = 'implicit' AND target_type = 'request' AND target_id IN ({marks}) GROUP BY 1, 2, 3"
)
_SCORES = "SELECT request_id, name, value FROM scores WHERE request_id IN ({marks})"
_PROPERTIES = "SELECT request_id, key, value FROM request_properties WHERE request_id IN ({marks})"


async def load_states(db: Reader, ids: list[str], probe_rows: list[str]) -> dict[str, RequestState]:
    """The stored state of each of ``ids`` that has any: a logged attempt, feedback, scores or properties.

    Request rows are only looked for among ``probe_rows`` (an ID the gateway minted has no earlier row).
    """
    found: set[str] = set()
    wanted = set(probe_rows)
    for start in range(0, len(ids), CHUNK):
        # One query per chunk (each query is a hop to the database's thread): feedback of any kind, and
        # the earlier rows of the IDs that can have them.
        chunk = ids[start : start + CHUNK]
        rows = [request_id for request_id in chunk if request_id in wanted]
        sql = _PROBE.format(marks=_marks(len(chunk)))
        if rows:
            sql += _PROBE_ROWS.format(rows=_marks(len(rows)))
        found.update(row[0] for row in await db.fetch(sql, [*chunk, *chunk, *chunk, *rows]))
    if not found:
        return {}
    return await read_states(db, sorted(found))


async def read_states(db: Fetcher, ids: list[str]) -> dict[str, RequestState]:
    """The full state of each of ``ids`` (an empty one when nothing is stored for it)."""
    states = {request_id: RequestState() for request_id in ids}
    latest: dict[str, int] = {}
    for row in await _chunks(db, _ATTEMPTS, ids):
        request_id, attempt = row[0], row[1]
        if attempt > latest.get(request_id, 0):
            latest[request_id] = attempt
            states[request_id].latest = attempt_from(dict(zip(ATTEMPT_COLUMNS, row[2:], strict=True)))
    for request_id, rating in await _chunks(db, _RATINGS, ids):
        states[request_id].rating = bool(rating)
    for request_id, signal, rating, count in await _chunks(db, _SIGNALS, ids):
        states[request_id].signals[(signal, bool(rating))] += count
    for request_id, name, value in await _chunks(db, _SCORES, ids):
        states[request_id].scores[name] = float(value)
    for request_id, key, value in await _chunks(db, _PROPERTIES, ids):
        states[request_id].properties[key] = value
    return states


# The window's requests (latest attempts only) are found first and their feedback looked up by ID: a
# materialized CTE and CROSS JOIN keep both planners from starting at the feedback tables (PostgreSQL did, with
# statistics from before a bulk load, and scanned an hour of requests per signal event).
_WINDOW = (
    "WITH w AS MATERIALIZED (SELECT r.request_id FROM requests r WHERE r.datetime_utc >= ? AND r.datetime_utc < ? "
    "AND NOT EXISTS (SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.attempt > r.attempt)) "
)
_WINDOW_READS = (
    f"SELECT r.request_id, {', '.join(f'r.{name}' for name in ATTEMPT_COLUMNS)} FROM requests r "
    "WHERE r.datetime_utc >= ? AND r.datetime_utc < ? "
    "AND NOT EXISTS (SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.attempt > r.attempt)",
    f"{_WINDOW}SELECT f.target_id, f.rating FROM w CROSS JOIN feedback f "
    "WHERE f.target_type = 'request' AND f.target_id = w.request_id",
    f"{_WINDOW}SELECT e.target_id, e.signal, e.rating, COUNT(*) FROM w CROSS JOIN feedback_events e "
    "WHERE e.target_type = 'request' AND e.target_id = w.request_id AND e.kind = 'implicit' GROUP BY 1, 2, 3",
    f"{_WINDOW}SELECT s.request_id, s.name, s.value FROM w CROSS JOIN scores s WHERE s.request_id = w.request_id",
    f"{_WINDOW}SELECT p.request_id, p.key, p.value FROM w CROSS JOIN request_properties p "
    "WHERE p.request_id = w.request_id",
)


async def window_states(db: Fetcher, from_utc: str, until_utc: str) -> dict[str, RequestState]:
    """The state of every request whose latest attempt falls in a time window, read by ranges, not by IDs."""
    reads = [await db.fetch(sql, (from_utc, until_utc)) for sql in _WINDOW_READS]
    states: dict[str, RequestState] = {}
    for row in reads[0]:
        states[row[0]] = RequestState(attempt_from(dict(zip(ATTEMPT_COLUMNS, row[1:], strict=True))))
    for request_id, rating in reads[1]:
        states[request_id].rating = bool(rating)
    for request_id, signal, rating, count in reads[2]:
        states[request_id].signals[(signal, bool(rating))] += count
    for request_id, name, value in reads[3]:
        states[request_id].scores[name] = float(value)
    for request_id, key, value in reads[4]:
        states[request_id].properties[key] = value
    return states


def _attempt(op: InsertRequest) -> Attempt:
    values = op.values
    return attempt_from({name: values[index] for name, index in zip(ATTEMPT_COLUMNS, _ATTEMPT_INDEXES, strict=True)})


def play(state: RequestState, op: WriteOp) -> None:
    """``op``'s effect on a request's state, as the store's statements have it."""
    if isinstance(op, InsertRequest):
        state.latest = _attempt(op)  # numbered MAX(attempt) + 1: always the latest
    elif isinstance(op, PutFeedback):
        if op.kind == "explicit":
            state.rating = op.rating
        else:
            state.signals[(op.signal or "", bool(op.rating))] += 1
    elif isinstance(op, PutScores):
        for name, (value, _kind) in op.scores.items():
            state.scores[name] = float(value)
    elif isinstance(op, DeleteScores):
        if op.names is None:
            state.scores.clear()
        else:
            for name in op.names:
                state.scores.pop(name, None)
    elif isinstance(op, PutProperty):
        state.properties[op.key] = op.value


class RollupChange:
    """One batch's change to the rollups: ``begin`` before the batch's writes, ``finish`` after them."""

    def __init__(self, properties: tuple[str, ...]) -> None:
        self.properties = properties
        self.before: dict[str, RequestState] = {}
        self.after: dict[str, RequestState] = {}

    @staticmethod
    def touches(ops: Sequence[WriteOp]) -> bool:
        return any(touched_id(op) is not None for op in ops)

    async def begin(self, db: Reader, ops: Sequence[WriteOp]) -> None:
        ids: dict[str, None] = {}
        probe_rows: dict[str, None] = {}
        for op in ops:
            request_id = touched_id(op)
            if request_id is None:
                continue
            ids[request_id] = None
            if not (isinstance(op, InsertRequest) and op.fresh_id):
                probe_rows[request_id] = None
        self.before = await load_states(db, list(ids), list(probe_rows))
        after = {request_id: state.copy() for request_id, state in self.before.items()}
        inserts = [op for op in ops if isinstance(op, InsertRequest)]
        rest = [op for op in ops if not isinstance(op, InsertRequest)]
        for op in (*inserts, *rest):
            request_id = touched_id(op)
            if request_id is not None:
                play(after.setdefault(request_id, RequestState()), op)
        self.after = after

    async def finish(self, db: Reader, derived: Sequence[tuple[str, str, bool]]) -> None:
        """Write the change; ``derived`` are the signal events the store added itself (ID, signal, positive)."""
        later = sorted({request_id for request_id, _, _ in derived if request_id not in self.after})
        if later:  # requests the batch did not name, read now: the derived events are in them already
            stored = await read_states(db, later)
            for request_id, signal, positive in derived:
                if request_id in stored:
                    before = self.before.setdefault(request_id, stored[request_id].copy())
                    before.signals[(signal, positive)] -= 1
                    self.after[request_id] = stored[request_id]
            for state in self.before.values():
                state.signals = +state.signals  # drop counts taken to zero
        for request_id, signal, positive in derived:
            if request_id not in later:
                self.after[request_id].signals[(signal, positive)] += 1
        totals = Totals(self.properties)
        for request_id, state in self.after.items():
            totals.add(state, 1)
            if request_id in self.before:
                totals.add(self.before[request_id], -1)
        await write_totals(db, totals)
