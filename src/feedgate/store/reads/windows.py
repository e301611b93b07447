"""Per-group counts for poor-rating insights and regression checks, and property-name lookups.

Like ``groups.py`` these are grouped COUNTs in SQL shared by both stores; the tests themselves are
pure (``analysis/grouped.py``). Only explicit ratings feed insights; regressions count explicit ratings
and, separately, the requests that carry each negative implicit signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from feedgate.store.dialect import Frag
from feedgate.store.filters import PROPERTY_NAME
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import LATEST, Dimension, aggregate_query


@dataclass(slots=True)
class Rated:
    """Explicit ratings of one group."""

    positive: int = 0
    negative: int = 0

    @property
    def rated(self) -> int:
        return self.positive + self.negative


@dataclass(slots=True)
class WindowCounts:
    """One group in one window: requests, explicit ratings, and requests carrying each negative signal."""

    requests: int = 0
    rated: int = 0
    positive: int = 0
    signal_requests: dict[str, int] = field(default_factory=dict)


async def rated_counts(store: Store, dim: Dimension | None, where: Frag) -> dict[str | None, Rated]:
    """Explicit ratings per group (latest attempts only): all attempts minus the superseded ones."""
    key = dim.key if dim is not None else None
    queries = [aggregate_query(key, "ratings", where, superseded=flag, dialect=store.dialect) for flag in (False, True)]
    every, stale = await asyncio.gather(*(store.fetch(q.sql, q.params) for q in queries))
    out: dict[str | None, Rated] = {}
    for rows, sign in ((every, 1), (stale, -1)):
        for k, rating, n in rows:
            counts = out.setdefault(k, Rated())
            if rating:
                counts.positive += sign * n
            else:
                counts.negative += sign * n
    return {k: v for k, v in out.items() if v.rated}


async def window_counts(
    store: Store, dim: Dimension, where: Frag, recent_from: str, signals: Sequence[str]
) -> dict[str, tuple[WindowCounts, WindowCounts]]:
    """``{key: (baseline, recent)}``; ``where`` bounds both windows, ``recent_from`` splits them."""
    flag = Frag("CASE WHEN r.datetime_utc >= ? THEN 1 ELSE 0 END", (recent_from,))
    head = dim.key.wrap("SELECT ", " AS k, ") + flag + Frag(" AS w, ")
    scope = Frag(f" AND {LATEST} AND (") + where + Frag(") GROUP BY 1, 2")
    requests = head + Frag("COUNT(*) FROM requests r WHERE 1 = 1") + scope
    ratings = (
        head
        + Frag(
            f"COUNT(*), SUM(f.rating) FROM feedback f CROSS JOIN {store.dialect.requests_joined_by_id()} "
            "WHERE f.target_type = 'request' AND f.target_id = r.request_id"
        )
        + scope
    )
    marks = ", ".join("?" for _ in signals) or "NULL"
    signal_rows = (
        head
        + Frag(
            "e.signal, COUNT(DISTINCT r.request_id) FROM feedback_events e "
            f"CROSS JOIN {store.dialect.requests_joined_by_id()} "
            "WHERE e.kind = 'implicit' AND e.target_type = 'request' AND e.target_id = r.request_id "
            f"AND e.signal IN ({marks})",
            tuple(signals),
        )
        + scope.wrap("", ", 3")
    )
    results = await asyncio.gather(*(store.fetch(q.sql, q.params) for q in (requests, ratings, signal_rows)))
    out: dict[str, tuple[WindowCounts, WindowCounts]] = {}

    def slot(k: str | None, w: int) -> WindowCounts | None:
        if k is None:
            return None
        pair = out.setdefault(k, (WindowCounts(), WindowCounts()))
        return pair[1 if w else 0]

    for k, w, n in results[0]:
        if (counts := slot(k, w)) is not None:
            counts.requests += n
    for k, w, n, positive in results[1]:
        if (counts := slot(k, w)) is not None:
            counts.rated += n
            counts.positive += int(positive or 0)
    for k, w, name, n in results[2]:
        if (counts := slot(k, w)) is not None:
            counts.signal_requests[name] = n
    return out


async def property_exists(store: Store, name: str) -> bool:
    """Whether any request has property ``name`` (sent as a header or set afterwards)."""
    later = await store.fetch("SELECT 1 FROM request_properties WHERE key = ? LIMIT 1", (name,))
    if later:
        return True
    sent = store.dialect.json_text("r.properties_json", name)
    query = sent.wrap("SELECT 1 FROM requests r WHERE ", " IS NOT NULL ORDER BY r.id DESC LIMIT 1")
    return bool(await store.fetch(query.sql, query.params))


async def recent_property_names(store: Store, sample: int = 2000) -> list[str]:
    """Property names seen on the latest ``sample`` requests or set afterwards: the default dimensions.

    Only names a filter or grouping can take (``PROPERTY_NAME``): a header such as ``Helicone-Property-a!b``
    is logged as sent, but made a default dimension it would turn every insights page into a 400.
    """
    rows = await store.fetch("SELECT properties_json FROM requests ORDER BY id DESC LIMIT ?", (sample,))
    names: set[str] = set()
    for (raw,) in rows:
        try:
            value = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            names.update(k for k in value if isinstance(k, str))
    later = await store.fetch("SELECT DISTINCT key FROM request_properties LIMIT ?", (sample,))
    names.update(row[0] for row in later)
    return sorted(name for name in names if PROPERTY_NAME.fullmatch(name))
