"""Counts and sums per group for the quality statistics, in SQL written once for SQLite and PostgreSQL.

Why in SQL: at a million requests, moving rows into Python costs seconds; grouped COUNT/SUM over covering
indexes costs a fraction of that. The store only counts; ``analysis/quality.py`` turns the counts into
rates, intervals and percentiles, and ``analysis/stats.py`` is the reference both are tested against.

The unit is the request, not the attempt: only each request ID's latest attempt counts (``LATEST``).
Explicit ratings (``feedback``), implicit signals (``feedback_events`` of kind ``implicit``) and scores
are counted by separate queries and reported apart, never mixed. The queries are independent, so they
run concurrently (SQLite: on several reader connections; PostgreSQL: on the pool).

Checking "is this the latest attempt?" row by row costs as much as the rest of a query, and retries are
rare, so the additive figures are computed over all attempts and the superseded attempts (a small set,
found through a partial index) are subtracted. The durations behind the latency percentiles
(``durations.py``) are fetched in one query, all of them up to a size and a systematic sample above it;
the superseded attempts' ids are dropped from what that query returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from feedgate.errors import FilterError
from feedgate.store.bounds import MAX_EXACT_INT
from feedgate.store.dialect import Dialect, Frag
from feedgate.store.filters import property_expr
from feedgate.store.protocol import Store
from feedgate.store.reads.durations import (
    DEFAULT_SAMPLING,
    Key,
    Sampling,
    fetch_durations,
    first_share,
    latency_values,
)

# Earlier attempts of retried request IDs: few rows, found through the partial index on attempt > 1.
SUPERSEDED = (
    "SELECT p.id FROM requests n JOIN requests p ON p.request_id = n.request_id AND p.attempt < n.attempt "
    "WHERE n.attempt > 1"
)
LATEST = f"r.id NOT IN ({SUPERSEDED})"
# The superseded attempts as ``r``: attempts are numbered 1, 2, ... per request ID, so an attempt is
# superseded exactly when attempt + 1 exists. Read through indexes only (m003), never the wide rows.
STALE_ROWS = (
    "requests n CROSS JOIN requests r WHERE n.attempt > 1 AND r.request_id = n.request_id AND r.attempt = n.attempt - 1"
)
DIMENSION_NAMES = ("model", "user", "prompt", "path", "day", "week", "property:<name>")


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    key: Frag
    chronological: bool = False


def dimension(dialect: Dialect, name: str) -> Dimension:
    """The SQL key of a grouping dimension; ``FilterError`` (400) for an unknown one."""
    simple = {
        "model": Dimension("model", Frag("r.model")),
        "user": Dimension("user", Frag("r.user_id")),
        "path": Dimension("path", Frag("r.path")),
        "prompt": Dimension("prompt", Frag("COALESCE(r.prompt_id, r.prompt_fingerprint)")),
        "day": Dimension("day", Frag("substr(r.datetime_utc, 1, 10)"), chronological=True),
        "week": Dimension("week", Frag(dialect.week_start("r.datetime_utc")), chronological=True),
    }
    if name in simple:
        return simple[name]
    if name.startswith("property:"):
        return Dimension(name, property_expr(dialect, name[len("property:") :]))
    raise FilterError(f"unknown dimension {name[:64]!r}; use one of {', '.join(DIMENSION_NAMES)}")


@dataclass(slots=True)
class GroupCounts:
    """What the store counts for one group (latest attempts only)."""

    requests: int = 0
    durations: int = 0  # requests with a duration
    cost: float = 0.0
    positive: int = 0  # explicit ratings
    negative: int = 0
    signals: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"positive": n, "negative": n}
    score_sums: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (count, sum)

    def merge(self, other: GroupCounts, sign: int = 1) -> None:
        self.requests += sign * other.requests
        self.durations += sign * other.durations
        self.cost += sign * other.cost
        self.positive += sign * other.positive
        self.negative += sign * other.negative
        for name, counts in other.signals.items():
            mine = self.signals.setdefault(name, {"positive": 0, "negative": 0})
            mine["positive"] += sign * counts["positive"]
            mine["negative"] += sign * counts["negative"]
        for name, (n, total) in other.score_sums.items():
            count, sum_ = self.score_sums.get(name, (0, 0.0))
            self.score_sums[name] = (count + sign * n, sum_ + sign * total)

    def clean(self) -> None:
        """Drop what subtraction left at zero (a signal only superseded attempts had)."""
        self.signals = {k: v for k, v in self.signals.items() if v["positive"] or v["negative"]}
        self.score_sums = {k: v for k, v in self.score_sums.items() if v[0]}


# Scores are summed within +-2**53, what the API accepts: a larger one stored by an older version would
# make PostgreSQL's SUM overflow and fail every stats page that meets it.
_BOUNDED_SCORE = (
    f"CASE WHEN s.value > {MAX_EXACT_INT} THEN {MAX_EXACT_INT} "
    f"WHEN s.value < -{MAX_EXACT_INT} THEN -{MAX_EXACT_INT} ELSE s.value END"
)
# source -> (columns, table, how it joins requests r, grouping columns after the key)
_SOURCES = {
    "ratings": ("f.rating, COUNT(*)", "feedback f", "f.target_type = 'request' AND f.target_id = r.request_id", ", 2"),
    "signals": (
        "e.signal, e.rating, COUNT(*)",
        "feedback_events e",
        "e.kind = 'implicit' AND e.target_type = 'request' AND e.target_id = r.request_id",
        ", 2, 3",
    ),
    "scores": (f"s.name, COUNT(*), SUM({_BOUNDED_SCORE})", "scores s", "s.request_id = r.request_id", ", 2"),
}


def aggregate_query(key: Frag | None, source: str, where: Frag, *, superseded: bool, dialect: Dialect) -> Frag:
    """One grouped aggregate over all attempts in scope, or (``superseded``) over the superseded ones only.

    ``CROSS JOIN`` fixes SQLite's join order (PostgreSQL plans it like any inner join): feedback, signals
    and scores drive the join over all attempts, since they are far fewer than requests; the few
    superseded attempts drive it when only they are wanted.
    """
    head = key.wrap("SELECT ", " AS k, ") if key is not None else Frag("SELECT NULL AS k, ")
    if source == "requests":
        if superseded:  # the rows themselves: their ids are dropped from the durations the percentiles rank
            return head + Frag(f"1, r.cost_usd, r.duration_ms, r.id FROM {STALE_ROWS} AND (") + where + Frag(")")
        tail = " GROUP BY 1" if key is not None else ""
        body = Frag("COUNT(*), SUM(r.cost_usd), COUNT(r.duration_ms) FROM requests r WHERE (")
        return head + body + where + Frag(")" + tail)
    columns, table, joined, group = _SOURCES[source]
    rows = (
        f"{STALE_ROWS.replace(' WHERE ', f' CROSS JOIN {table} WHERE ', 1)} AND"
        if superseded
        else (f"{table} CROSS JOIN {dialect.requests_joined_by_id()} WHERE")
    )
    grouping = f" GROUP BY 1{group}" if key is not None else f" GROUP BY {group[2:]}"
    return head + Frag(f"{columns} FROM {rows} {joined} AND (") + where + Frag(")" + grouping)


def _fill(groups: dict[Key, GroupCounts], source: str, rows: list[tuple[Any, ...]]) -> None:
    for row in rows:
        acc = groups.setdefault(row[0], GroupCounts())
        if source == "requests":
            acc.requests += row[1]
            acc.cost += row[2] or 0.0
            acc.durations += row[3] if isinstance(row[3], int) else (0 if row[3] is None else 1)
        elif source == "ratings":
            acc.positive += row[2] if row[1] else 0
            acc.negative += 0 if row[1] else row[2]
        elif source == "signals":
            counter = acc.signals.setdefault(row[1], {"positive": 0, "negative": 0})
            counter["positive" if row[2] else "negative"] += row[3]
        else:
            count, total = acc.score_sums.get(row[1], (0, 0.0))
            acc.score_sums[row[1]] = (count + row[2], total + float(row[3]))


@dataclass(slots=True)
class Counted:
    """Per-group counts, the overall counts, and the durations to rank for the latency percentiles
    (every one in scope, or a sample: see ``durations.py``)."""

    groups: dict[Key, GroupCounts]
    overall: GroupCounts
    durations: dict[Key, list[float]]
    all_durations: list[float]


async def group_counts(
    store: Store, dim: Dimension | None, where: Frag, sampling: Sampling = DEFAULT_SAMPLING
) -> Counted:
    """Counts per group of ``dim`` (one group, keyed None, without a dimension) over the rows ``where`` selects.

    ``sampling`` says when the durations are all fetched and how large a sample stands in for them otherwise.
    """
    key = dim.key if dim is not None else None
    sources = ("requests", "ratings", "signals", "scores")
    queries = [
        aggregate_query(key, source, where, superseded=flag, dialect=store.dialect)
        for flag in (False, True)
        for source in sources
    ]
    share = await first_share(store, sampling)  # two index lookups

    async def aggregates() -> list[list[tuple[Any, ...]]]:
        return await asyncio.gather(*(store.fetch(q.sql, q.params) for q in queries))

    # The durations first: the longest single query, it should not queue behind the others for a connection.
    first, results = await asyncio.gather(fetch_durations(store, key, where, share), aggregates())
    totals: dict[Key, GroupCounts] = {}
    stale: dict[Key, GroupCounts] = {}
    for source, rows in zip(sources, results[:4], strict=True):
        _fill(totals, source, rows)
    for source, rows in zip(sources, results[4:], strict=True):
        _fill(stale, source, rows)
    superseded = {row[4] for row in results[4]}
    overall = GroupCounts()
    for k, acc in totals.items():
        if k in stale:
            acc.merge(stale[k], -1)
            acc.clean()
        overall.merge(acc)
    overall.clean()
    counts = {k: acc.durations for k, acc in totals.items()}
    values = await latency_values(store, key, where, counts, superseded, first, sampling)
    groups = {k: acc for k, acc in totals.items() if acc.requests}
    return Counted(groups, overall, values.groups, values.every)
