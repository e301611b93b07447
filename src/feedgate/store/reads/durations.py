"""The durations behind the latency percentiles (p50, p95) per group, fetched in one query on both stores.

The store fetches; ``analysis/quality.py`` ranks. Why not rank in SQL: that is only cheap with an index
ordered by duration, and such an index costs every logged row a page write at a random place in its
B-tree (migration m005 dropped them). Without one, SQL would sort the durations too; fetching
``(group, id, duration)`` and sorting in Python costs about the same, and the same code serves SQLite and PostgreSQL.

Exact while the scope holds at most ``exact_max`` durations: every duration is fetched, to be ranked like
``analysis.stats.percentile``. Above that, a systematic sample of about ``sample_target`` rows stands in
for the scope (ids are numbered in insert order and say nothing about a request's duration), and each
group the sample saw too little of (fewer than ``min_sampled`` values) is fetched again in full, smallest
groups first, while their total stays within ``exact_max``; any left over keep the sample's estimate.

How many rows are in scope is known only once the counts (``groups.group_counts``) are in, and waiting
for them before fetching would add the fetch's time to theirs. So a first fetch runs alongside them,
sized by the whole table (``first_share``): exact when the table is small, a sample of about
``sample_target`` when the scope is most of the table (the usual "last 30 days"). When the counts show
it missed, the right fetch follows.

Only each request ID's latest attempt counts: the caller passes the ids of the superseded attempts in
scope (a small set, found through the partial index on ``attempt > 1``) and they are dropped here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from feedgate.store.dialect import Frag, join
from feedgate.store.protocol import Store

Key = str | None

# Measured on one core at 1M requests with SQLite: fetching and ranking every duration of a scope costs
# about 1.5 us a row (0.20 s at 107,000, 0.33 s at 212,000) and a sample of 100,000 from a million 0.23 s:
# up to about 150,000 rows, being exact costs no more than the sample of a million-row scope.
EXACT_MAX = 150_000
SAMPLE_TARGET = 100_000
# Groups with fewer sampled values are fetched again in full. At 1M requests, days with about 3,300
# sampled values each got a p95 within 3.2% of the exact one; models with 15,000-35,000, within about 1%.
MIN_SAMPLED = 2_000
# Bound parameters in one follow-up query (both drivers allow 32,767; the filter needs some too).
MAX_LISTED_KEYS = 5_000

# Which rows a sample keeps: those whose id, times the golden ratio, falls below a share of the unit
# interval (in 65,536ths). Consecutive kept ids are as evenly spaced as with "every k-th id", but unlike
# ``id % k = 0`` this never locks onto traffic that cycles through groups: an eval loop sending to four
# models in turn writes every fourth id to one model, and "every second id" would see only two of them.
_STRIDE, SCALE = 40_503, 65_536  # 40503 / 65536 = 0.61803...; r.id * _STRIDE stays in 64 bits below 2e14
SAMPLED = f"(r.id * {_STRIDE}) % {SCALE} < ?"
EVERY_GROUP = Frag("")
TABLE_IDS = "SELECT (SELECT MIN(id) FROM requests), (SELECT MAX(id) FROM requests)"  # two index lookups


@dataclass(frozen=True, slots=True)
class Sampling:
    """When percentiles are exact and how large a sample stands in for them otherwise (tests lower these)."""

    exact_max: int = EXACT_MAX
    sample_target: int = SAMPLE_TARGET
    min_sampled: int = MIN_SAMPLED
    max_listed_keys: int = MAX_LISTED_KEYS

    def share(self, rows: int) -> int:
        """The share of ``rows`` (in 65,536ths) to fetch: all of them up to ``exact_max``."""
        return SCALE if rows <= self.exact_max else min(SCALE, math.ceil(SCALE * self.sample_target / rows))


DEFAULT_SAMPLING = Sampling()


@dataclass(frozen=True, slots=True)
class Fetched:
    share: int  # of the rows in scope, in 65,536ths: SCALE means every one
    rows: list[tuple[Any, ...]]  # (key, id, duration_ms), superseded attempts included


@dataclass(slots=True)
class Durations:
    """The values to rank: per group, and overall (the overall ones are a sample when the groups' are)."""

    groups: dict[Key, list[float]]
    every: list[float]


async def first_share(store: Store, sampling: Sampling) -> int:
    """How much of the scope to fetch before its size is known: as much as if it were the whole table."""
    [(low, high)] = await store.fetch(TABLE_IDS)
    return sampling.share(0 if high is None else high - low + 1)


async def latency_values(
    store: Store,
    key: Frag | None,
    where: Frag,
    counts: dict[Key, int],
    superseded: set[int],
    first: Fetched,
    sampling: Sampling = DEFAULT_SAMPLING,
) -> Durations:
    """The ``duration_ms`` values per group of ``key`` (and overall) to rank, over the rows matching ``where``.

    ``counts`` holds each group's number of latest-attempt durations in scope, ``superseded`` the ids of
    the earlier attempts of retried request IDs in scope, ``first`` what was fetched with ``first_share``
    while the counts were being computed.
    """
    total = sum(counts.values())
    if total <= 0:
        return Durations({}, [])
    wanted = sampling.share(total)
    # The first look will do if it is exact, or if the scope wants a sample and it holds at least half
    # the values wanted (the scope is then at least half the table).
    usable = first.share == SCALE or (wanted < SCALE and wanted <= first.share * 2)
    fetched = first if usable else await fetch_durations(store, key, where, wanted)
    values = _by_key(fetched.rows, superseded)
    every = [d for group in values.values() for d in group]  # when sampled, the overall estimate
    if fetched.share < SCALE and key is not None:
        short = [k for k, n in counts.items() if len(values.get(k, ())) < min(n, sampling.min_sampled)]
        chosen = _within_budget(short, counts, sampling.exact_max)
        if chosen:
            picked = set(chosen)
            others = [k for k in counts if k not in picked]
            if len(others) < len(chosen) and len(others) <= sampling.max_listed_keys:
                among = _none_of(key, others)
            else:
                chosen = chosen[: sampling.max_listed_keys]
                among = _one_of(key, chosen)
            exact = _by_key((await fetch_durations(store, key, where, SCALE, among)).rows, superseded)
            values.update({k: exact.get(k, []) for k in chosen})
    return Durations(values, every)


async def fetch_durations(
    store: Store, key: Frag | None, where: Frag, share: int, among: Frag = EVERY_GROUP
) -> Fetched:
    """``(key, id, duration_ms)`` of a ``share`` of the rows in scope (all of them when it is ``SCALE``),
    of the groups ``among`` selects (all by default)."""
    head = key.wrap("SELECT ", " AS k, ") if key is not None else Frag("SELECT NULL AS k, ")
    query = head + Frag("r.id, r.duration_ms FROM requests r WHERE r.duration_ms IS NOT NULL")
    if share < SCALE:
        query = query + Frag(f" AND {SAMPLED}", (share,))
    query = query + among + Frag(" AND (") + where + Frag(")")
    if key is not None:
        # In key order: then SQLite reads an index that starts with the key and holds duration_ms
        # (requests_model_stats) instead of looking up every row found through the time index.
        query = query + Frag(" ORDER BY 1")
    return Fetched(share, await store.fetch(query.sql, query.params))


def _by_key(rows: list[tuple[Any, ...]], superseded: set[int]) -> dict[Key, list[float]]:
    out: dict[Key, list[float]] = {}
    for k, row_id, duration in rows:
        if row_id not in superseded:
            out.setdefault(k, []).append(duration)
    return out


def _within_budget(short: list[Key], counts: dict[Key, int], budget: int) -> list[Key]:
    """The smallest of the under-sampled groups, as many as fit in ``budget`` rows together."""
    chosen: list[Key] = []
    for k in sorted(short, key=lambda k: counts[k]):
        if counts[k] > budget:
            break
        budget -= counts[k]
        chosen.append(k)
    return chosen


def _one_of(key: Frag, keys: list[Key]) -> Frag:
    named = [k for k in keys if k is not None]
    parts = [key.wrap("", f" IN ({', '.join('?' for _ in named)})") + Frag("", tuple(named))] if named else []
    if None in keys:
        parts.append(key.wrap("", " IS NULL"))
    return join(" OR ", parts).wrap(" AND (", ")")


def _none_of(key: Frag, keys: list[Key]) -> Frag:
    """The complement of ``keys``: when a few large groups were sampled well and many small ones were not,
    naming the large ones is the short way to ask for the rest."""
    if not keys:
        return Frag("")
    named = [k for k in keys if k is not None]
    parts = [key.wrap("", " IS NOT NULL" if None in keys else " IS NULL")]
    if named:
        parts.append(key.wrap("", f" NOT IN ({', '.join('?' for _ in named)})") + Frag("", tuple(named)))
    return join(" AND " if None in keys else " OR ", parts).wrap(" AND (", ")")
