"""Reference statistics for feedback analysis: rows in, numbers out.

Why this module exists: the store computes the same aggregates in SQL for speed, and
the SQL is checked against this pure-Python version.  So every definition here is
deliberately exact and documented (what is counted, what is skipped, how percentiles
interpolate), with no I/O and no third-party numerics (no numpy/scipy), so the two
implementations can be compared number for number.

Definitions used throughout feedgate:

* ``rated``/``positive``/``negative`` count ONLY explicit ratings (thumbs up/down).
  Implicit signals (``code_accepted``, ``regenerated``...) are reported separately in
  ``signals`` and never folded into the positive rate: they mean different things and
  arrive at very different volumes.
* ``positive_rate`` is ``positive / rated`` with a 95% Wilson score interval, which
  behaves well for small ``n`` and for rates of 0 or 1 (unlike the normal interval).
* ``signals`` counts one per entry in ``StatRow.signals``.
* ``scores`` is the arithmetic mean per score name over the rows that carry that score.
* ``cost_usd`` is the sum of the known costs (rows whose cost is ``None`` are skipped);
  sums use :func:`math.fsum`, which is exact-then-rounded and so independent of row order.
* Percentiles interpolate linearly between closest ranks (numpy's default method).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DIMENSIONS",
    "Z95",
    "GroupStats",
    "StatRow",
    "aggregate",
    "by_property",
    "normal_sf",
    "one_sided_p",
    "percentile",
    "two_proportion_z",
    "two_proportion_z_one_sided",
    "wilson_interval",
]

#: Two-sided 95% standard normal quantile (scipy.stats.norm.ppf(0.975)).
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for ``successes`` out of ``n`` (95% by default).

    Returns ``(None, None)`` when ``n == 0``.  The bounds are clamped to [0, 1] and are
    exactly 0.0 / 1.0 when ``successes`` is 0 / ``n``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"invalid proportion {successes}/{n}")
    if n == 0:
        return (None, None)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return (low, high)


def normal_sf(z: float) -> float:
    """Survival function of the standard normal: P(Z >= z)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def one_sided_p(z: float, alternative: Literal["greater", "less"] = "greater") -> float:
    """One-sided p-value of a z statistic.

    ``"greater"`` tests H1: statistic > 0 (P(Z >= z)); ``"less"`` tests H1: statistic < 0
    (P(Z <= z)).
    """
    if alternative == "greater":
        return normal_sf(z)
    if alternative == "less":
        return normal_sf(-z)
    raise ValueError(f"unknown alternative {alternative!r}")


def _pooled_z(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """``(p1 - p2) / se`` with the pooled standard error; ``None`` when undefined."""
    for x, n in ((x1, n1), (x2, n2)):
        if n < 0 or x < 0 or x > n:
            raise ValueError(f"invalid proportion {x}/{n}")
    if n1 == 0 or n2 == 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return None
    return (x1 / n1 - x2 / n2) / math.sqrt(var)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of ``x1/n1`` against ``x2/n2``.

    Returns ``(z, two_sided_p)`` with ``z = (p1 - p2) / se`` where ``se`` uses the pooled
    proportion.  Degenerate inputs (an empty sample, or a pooled rate of 0 or 1 so that
    there is no variance) give ``(0.0, 1.0)``: no evidence of a difference.
    """
    z = _pooled_z(x1, n1, x2, n2)
    if z is None:
        return (0.0, 1.0)
    return (z, min(1.0, math.erfc(abs(z) / math.sqrt(2.0))))


def two_proportion_z_one_sided(
    x1: int, n1: int, x2: int, n2: int, alternative: Literal["greater", "less"] = "greater"
) -> tuple[float, float]:
    """Pooled two-proportion z-test with a one-sided p-value.

    ``"greater"`` tests H1: p1 > p2; ``"less"`` tests H1: p1 < p2.  Degenerate inputs give
    ``(0.0, 1.0)`` like the two-sided test, so "no data" never looks significant.
    """
    z = _pooled_z(x1, n1, x2, n2)
    if z is None:
        return (0.0, 1.0)
    return (z, one_sided_p(z, alternative))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values``, ``None`` if empty.

    Linear interpolation between closest ranks, identical to ``numpy.percentile``'s
    default (``method="linear"``): position ``(n - 1) * q / 100`` in the sorted values.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    if frac == 0.0 or lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * frac)


@dataclass(slots=True)
class StatRow:
    """One logged request with its current feedback, flattened for analysis."""

    request_id: str
    model: str | None
    user_id: str | None
    path: str | None
    prompt: str | None
    day: str  # 'YYYY-MM-DD' (UTC)
    properties: dict[str, str]
    rating: bool | None  # current explicit rating: True = up, False = down, None = unrated
    signals: list[tuple[str, bool]]  # implicit signals: (name, positive?)
    scores: dict[str, float]
    cost_usd: float | None
    duration_ms: float | None
    datetime_utc: str  # ISO 8601
    comment: str | None = None  # free-text comment attached to the explicit rating


@dataclass(slots=True)
class GroupStats:
    """Aggregated feedback and usage numbers for one group of requests."""

    key: str | None
    requests: int = 0
    rated: int = 0
    positive: int = 0
    negative: int = 0
    positive_rate: float | None = None
    positive_rate_low: float | None = None
    positive_rate_high: float | None = None
    signals: dict[str, dict[str, int]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    duration_ms_p50: float | None = None
    duration_ms_p95: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


class _Accumulator:
    """Running sums for one group; finalised into a :class:`GroupStats`."""

    __slots__ = ("key", "requests", "positive", "negative", "signals", "scores", "costs", "durations")

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.requests = 0
        self.positive = 0
        self.negative = 0
        self.signals: dict[str, dict[str, int]] = {}
        self.scores: dict[str, list[float]] = {}
        self.costs: list[float] = []
        self.durations: list[float] = []

    def add(self, row: StatRow) -> None:
        self.requests += 1
        if row.rating is True:
            self.positive += 1
        elif row.rating is False:
            self.negative += 1
        for name, positive in row.signals:
            counts = self.signals.setdefault(name, {"positive": 0, "negative": 0})
            counts["positive" if positive else "negative"] += 1
        for name, value in row.scores.items():
            self.scores.setdefault(name, []).append(float(value))
        if row.cost_usd is not None:
            self.costs.append(float(row.cost_usd))
        if row.duration_ms is not None:
            self.durations.append(float(row.duration_ms))

    def finish(self) -> GroupStats:
        rated = self.positive + self.negative
        low, high = wilson_interval(self.positive, rated)
        return GroupStats(
            key=self.key,
            requests=self.requests,
            rated=rated,
            positive=self.positive,
            negative=self.negative,
            positive_rate=(self.positive / rated) if rated else None,
            positive_rate_low=low,
            positive_rate_high=high,
            signals={name: dict(self.signals[name]) for name in sorted(self.signals)},
            scores={name: math.fsum(v) / len(v) for name, v in sorted(self.scores.items())},
            cost_usd=math.fsum(self.costs),
            duration_ms_p50=percentile(self.durations, 50.0),
            duration_ms_p95=percentile(self.durations, 95.0),
        )


def _group_order(g: GroupStats) -> tuple[int, bool, str]:
    return (-g.requests, g.key is None, g.key or "")


def aggregate(rows: Iterable[StatRow], key: Callable[[StatRow], str | None]) -> tuple[list[GroupStats], GroupStats]:
    """Group ``rows`` by ``key(row)`` and compute :class:`GroupStats` per group and overall.

    Groups are sorted by ``requests`` descending, then by key (a ``None`` key, i.e. rows
    without a value for the dimension, sorts after every string).  ``overall`` covers all
    rows and has ``key=None``.
    """
    overall = _Accumulator(None)
    groups: dict[str | None, _Accumulator] = {}
    for row in rows:
        k = key(row)
        acc = groups.get(k)
        if acc is None:
            acc = groups[k] = _Accumulator(k)
        acc.add(row)
        overall.add(row)
    result = sorted((acc.finish() for acc in groups.values()), key=_group_order)
    return result, overall.finish()


# --- common dimensions -------------------------------------------------------------


def by_property(name: str) -> Callable[[StatRow], str | None]:
    """A key function grouping rows by the custom property ``name``."""

    def key(row: StatRow) -> str | None:
        return row.properties.get(name)

    key.__name__ = f"property:{name}"
    return key


#: Key functions for the built-in dimensions, by name.
DIMENSIONS: dict[str, Callable[[StatRow], str | None]] = {
    "model": lambda r: r.model,
    "user_id": lambda r: r.user_id,
    "path": lambda r: r.path,
    "prompt": lambda r: r.prompt,
    "day": lambda r: r.day,
}
