"""Quality statistics in SQL: counts, sums and percentiles per group, written once for SQLite and PostgreSQL.

Why in SQL: at a million requests, moving rows into Python costs seconds; grouped COUNT/SUM over covering
indexes costs a fraction of that. ``analysis/stats.py`` is the reference these numbers are tested against.

The unit is the request, not the attempt: only each request ID's latest attempt counts (``LATEST``).
Explicit ratings (``feedback``), implicit signals (``feedback_events`` of kind ``implicit``) and scores
are counted by separate queries and reported apart, never mixed. The queries are independent, so they
run concurrently (SQLite: on several reader connections; PostgreSQL: on the pool).

Checking "is this the latest attempt?" row by row costs as much as the rest of a query, and retries are
rare, so the additive figures are computed over all attempts and the superseded attempts (a small set,
found through a partial index) are subtracted. Percentiles are exact and interpolate like
``analysis.stats.percentile``. With few groups and an index on ``(group, duration_ms)`` SQL walks the
index to the rank (``LIMIT .. OFFSET k``), fetching enough values past it to step over superseded
attempts (see ``_kth``); otherwise one window query numbers the latest rows of every group.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from feedgate.analysis.stats import GroupStats, wilson_interval
from feedgate.store.filters import FilterError, property_expr
from feedgate.store.sql import Dialect, Frag

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
WALK_MAX_GROUPS = 12
DIMENSION_NAMES = ("model", "user", "prompt", "path", "day", "week", "property:<name>")


class Reader(Protocol):
    """What the analysis queries need from a store (SqliteStore and PostgresStore provide it).

    SQL is written with ``?`` placeholders, as for ``Store.query``; each store adapts them to its driver.
    """

    dialect: Dialect

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as tuples; safe to call concurrently (each call may use its own connection)."""


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    key: Frag
    walkable: bool = False  # an index orders durations within each key (see m003)
    chronological: bool = False


def dimension(dialect: Dialect, name: str) -> Dimension:
    """The SQL key of a grouping dimension; ``FilterError`` (400) for an unknown one."""
    simple = {
        "model": Dimension("model", Frag("r.model"), walkable=True),
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
class _Acc:
    requests: int = 0
    durations: int = 0
    cost: float = 0.0
    positive: int = 0
    negative: int = 0
    signals: dict[str, dict[str, int]] = field(default_factory=dict)
    score_sums: dict[str, tuple[int, float]] = field(default_factory=dict)
    p50: float | None = None
    p95: float | None = None

    def merge(self, other: _Acc, sign: int = 1) -> None:
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

    def finish(self, key: str | None) -> GroupStats:
        rated = self.positive + self.negative
        low, high = wilson_interval(self.positive, rated)
        return GroupStats(
            key=key,
            requests=self.requests,
            rated=rated,
            positive=self.positive,
            negative=self.negative,
            positive_rate=self.positive / rated if rated else None,
            positive_rate_low=low,
            positive_rate_high=high,
            signals={name: dict(self.signals[name]) for name in sorted(self.signals)},
            scores={name: total / n for name, (n, total) in sorted(self.score_sums.items()) if n},
            cost_usd=self.cost if self.requests else 0.0,
            duration_ms_p50=self.p50,
            duration_ms_p95=self.p95,
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
    "scores": ("s.name, COUNT(*), SUM(s.value)", "scores s", "s.request_id = r.request_id", ", 2"),
}


def aggregate_query(key: Frag | None, source: str, where: Frag, *, superseded: bool) -> Frag:
    """One grouped aggregate over all attempts in scope, or (``superseded``) over the superseded ones only.

    ``CROSS JOIN`` fixes SQLite's join order (PostgreSQL plans it like any inner join): feedback, signals
    and scores drive the join over all attempts, since they are far fewer than requests; the few
    superseded attempts drive it when only they are wanted.
    """
    head = key.wrap("SELECT ", " AS k, ") if key is not None else Frag("SELECT NULL AS k, ")
    if source == "requests":
        if superseded:  # the rows themselves: their durations are needed to correct the percentiles
            return head + Frag(f"1, r.cost_usd, r.duration_ms FROM {STALE_ROWS} AND (") + where + Frag(")")
        tail = " GROUP BY 1" if key is not None else ""
        body = Frag("COUNT(*), SUM(r.cost_usd), COUNT(r.duration_ms) FROM requests r WHERE (")
        return head + body + where + Frag(")" + tail)
    columns, table, joined, group = _SOURCES[source]
    rows = (
        f"{STALE_ROWS.replace(' WHERE ', f' CROSS JOIN {table} WHERE ', 1)} AND"
        if superseded
        else (f"{table} CROSS JOIN requests r WHERE")
    )
    grouping = f" GROUP BY 1{group}" if key is not None else f" GROUP BY {group[2:]}"
    return head + Frag(f"{columns} FROM {rows} {joined} AND (") + where + Frag(")" + grouping)


def _fill(groups: dict[str | None, _Acc], source: str, rows: list[tuple[Any, ...]]) -> None:
    for row in rows:
        acc = groups.setdefault(row[0], _Acc())
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


async def group_stats(reader: Reader, dim: Dimension | None, where: Frag) -> tuple[list[GroupStats], GroupStats]:
    """Per-group statistics (sorted like ``analysis.stats.aggregate``) and the overall figures."""
    key = dim.key if dim is not None else None
    sources = ("requests", "ratings", "signals", "scores")
    queries = [aggregate_query(key, source, where, superseded=flag) for flag in (False, True) for source in sources]
    results = await asyncio.gather(*(reader.fetch(q.sql, q.params) for q in queries))
    totals: dict[str | None, _Acc] = {}
    stale: dict[str | None, _Acc] = {}
    for source, rows in zip(sources, results[:4], strict=True):
        _fill(totals, source, rows)
    for source, rows in zip(sources, results[4:], strict=True):
        _fill(stale, source, rows)
    stale_durations: dict[str | None, list[float]] = {}
    for k, _one, _cost, duration in results[4]:
        if duration is not None:
            stale_durations.setdefault(k, []).append(duration)
    overall = _Acc()
    for k, acc in totals.items():
        if k in stale:
            acc.merge(stale[k], -1)
            acc.clean()
        overall.merge(acc)
    overall.clean()
    await _percentiles(reader, dim, where, totals, overall, stale_durations)
    result = [acc.finish(k) for k, acc in totals.items() if acc.requests]
    if dim is not None and dim.chronological:
        result.sort(key=lambda g: (g.key is None, g.key or ""))
    else:
        result.sort(key=lambda g: (-g.requests, g.key is None, g.key or ""))
    return result, overall.finish(None)


def _ranks(n: int) -> list[tuple[int, float]]:
    """For q = 50 and 95: the lower rank and the interpolation fraction, exactly as ``percentile`` does."""
    out = []
    for q in (50.0, 95.0):
        pos = (n - 1) * (q / 100.0)
        lo = math.floor(pos)
        out.append((lo, pos - lo))
    return out


def _interpolate(low: float | None, high: float | None, frac: float) -> float | None:
    if low is None:
        return None
    if frac == 0.0 or high is None:
        return float(low)
    return float(low + (high - low) * frac)


def _kth(window: list[float], offset: int, complete: bool, stale: list[float], k: int) -> float | None:
    """The k-th smallest latest-attempt value, from ``window`` = all-attempt values from rank ``offset`` on.

    Superseded values (``stale``, sorted) are a sub-multiset of all values, so the answer is in the window
    when it is at least ``len(stale) + 1`` long past rank k. For a value x in the window, the number of
    all values <= x is ``offset + bisect_right(window, x)`` (everything before the window is <= window[0]),
    exact unless x is the window's last value and more may follow (``complete`` says none do).
    """
    for index, x in enumerate(window):
        if index + 1 < len(window) and window[index + 1] == x:
            continue  # judge each distinct value once, at its last copy
        if index == len(window) - 1 and not complete:
            return None  # cannot tell how many copies of x lie past the window: caller widens it
        if offset + index + 1 - bisect.bisect_right(stale, x) >= k + 1:
            return x
    return None


async def _percentiles(
    reader: Reader,
    dim: Dimension | None,
    where: Frag,
    groups: dict[str | None, _Acc],
    overall: _Acc,
    stale: dict[str | None, list[float]],
) -> None:
    every = sorted(d for values in stale.values() for d in values)
    jobs = [_walk(reader, overall, None, where, every)]
    if dim is not None and dim.walkable and len(groups) <= WALK_MAX_GROUPS:
        for k, acc in groups.items():
            condition = dim.key.wrap("", " IS NULL") if k is None else dim.key + Frag(" = ?", (k,))
            jobs.append(_walk(reader, acc, condition, where, sorted(stale.get(k, []))))
    elif dim is not None:
        jobs.append(_window(reader, dim, where, groups))
    await asyncio.gather(*jobs)


async def _walk(reader: Reader, acc: _Acc, condition: Frag | None, where: Frag, stale: list[float]) -> None:
    if acc.durations <= 0:
        return
    scope = where if condition is None else condition + Frag(" AND (") + where + Frag(")")
    base = Frag("SELECT r.duration_ms FROM requests r WHERE r.duration_ms IS NOT NULL AND (") + scope

    async def around(lo: int) -> tuple[float | None, float | None]:
        size = len(stale) + 3
        while True:
            query = base + Frag(") ORDER BY r.duration_ms LIMIT ? OFFSET ?", (size, lo))
            window = [row[0] for row in await reader.fetch(query.sql, query.params)]
            complete = len(window) < size
            low = _kth(window, lo, complete, stale, lo)
            high = _kth(window, lo, complete, stale, lo + 1) if lo + 1 < acc.durations else None
            if low is not None and (high is not None or lo + 1 >= acc.durations):
                return low, high
            if complete:  # rows changed between the count and the walk: leave this percentile out
                return low, high
            size *= 4  # many equal values at the window's edge: look further

    found = await asyncio.gather(*(around(lo) for lo, _frac in _ranks(acc.durations)))
    (_lo50, f50), (_lo95, f95) = _ranks(acc.durations)
    acc.p50 = _interpolate(*found[0], f50)
    acc.p95 = _interpolate(*found[1], f95)


async def _window(reader: Reader, dim: Dimension, where: Frag, groups: dict[str | None, _Acc]) -> None:
    inner = dim.key.wrap("SELECT ", " AS k, r.duration_ms AS d FROM requests r WHERE r.duration_ms IS NOT NULL")
    inner = inner + Frag(f" AND {LATEST} AND (") + where + Frag(")")
    near = " OR ".join(f"(w.rn >= (w.n - 1) * {q} / 100 - 1 AND w.rn <= (w.n - 1) * {q} / 100 + 2)" for q in (50, 95))
    query = inner.wrap(
        "SELECT w.k, w.rn, w.d FROM (SELECT b.k, b.d, ROW_NUMBER() OVER (PARTITION BY b.k ORDER BY b.d) - 1 AS rn, "
        "COUNT(*) OVER (PARTITION BY b.k) AS n FROM (",
        f") b) w WHERE {near}",
    )
    values: dict[str | None, dict[int, float]] = {}
    for k, rn, d in await reader.fetch(query.sql, query.params):
        values.setdefault(k, {})[rn] = d
    for k, acc in groups.items():
        if acc.durations <= 0 or k not in values:
            continue
        (lo50, f50), (lo95, f95) = _ranks(acc.durations)
        found = values[k]
        acc.p50 = _interpolate(found.get(lo50), found.get(lo50 + 1), f50)
        acc.p95 = _interpolate(found.get(lo95), found.get(lo95 + 1), f95)
