"""Detect feedback regressions: "this got worse recently" for a model, prompt, user...

Why: the most useful alert a gateway can send after a prompt or model change is "users
liked answers less since Tuesday".  We compare a recent window with the baseline window
right before it, per dimension value, and only report changes that are significant by a
one-sided pooled two-proportion z-test, so that noise in small groups does not page
anyone.  Two kinds of metric are checked, and never mixed:

* ``positive_rate``: share of explicit ratings that are thumbs up (a drop is bad);
  both windows need ``min_ratings`` explicit ratings.
* ``signal:<name>``: share of requests carrying the implicit negative signal ``name``
  (e.g. ``regenerated``; a rise is bad); both windows need ``min_ratings`` requests.
  A request counts once however many times the signal was sent, and a signal counts by
  its name (the names in ``signals_negative`` define what is negative).

Windows: recent = [now - recent, now), baseline = [now - recent - baseline, now - recent).
Timestamps without a zone are taken as UTC; rows with unparsable timestamps are skipped.
Each :class:`Regression` has a ``fingerprint`` that depends only on (dimension, key,
metric), so a notifier can alert once per new regression rather than on every run.
Pure: rows in, regressions out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from feedgate.analysis.stats import StatRow, two_proportion_z_one_sided

__all__ = ["DEFAULT_NEGATIVE_SIGNALS", "Regression", "find_regressions", "parse_utc"]

DEFAULT_NEGATIVE_SIGNALS: frozenset[str] = frozenset({"regenerated", "abandoned", "code_rejected"})


@dataclass(frozen=True, slots=True)
class Regression:
    """A significant worsening of one metric for one group, recent vs baseline."""

    dimension: str
    key: str
    metric: str  # "positive_rate" or "signal:<name>"
    baseline_rate: float
    recent_rate: float
    baseline_n: int  # ratings (positive_rate) or requests (signal:*) in the baseline window
    recent_n: int
    delta: float  # recent_rate - baseline_rate (negative for positive_rate, positive for signals)
    p_value: float  # one-sided, in the "worse" direction
    z: float  # pooled z of recent vs baseline (recent - baseline) / se

    @property
    def fingerprint(self) -> str:
        """Stable id of *what* regressed (not by how much): dimension, key and metric."""
        raw = json.dumps([self.dimension, self.key, self.metric], ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, including the fingerprint."""
        return {
            "dimension": self.dimension,
            "key": self.key,
            "metric": self.metric,
            "baseline_rate": self.baseline_rate,
            "recent_rate": self.recent_rate,
            "baseline_n": self.baseline_n,
            "recent_n": self.recent_n,
            "delta": self.delta,
            "p_value": self.p_value,
            "z": self.z,
            "fingerprint": self.fingerprint,
        }


def parse_utc(value: str | datetime) -> datetime | None:
    """Parse an ISO 8601 timestamp into an aware UTC datetime (naive means UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class Window:
    """Counts for one (dimension key, window)."""

    __slots__ = ("requests", "rated", "positive", "signal_requests")

    def __init__(self) -> None:
        self.requests = 0
        self.rated = 0
        self.positive = 0
        self.signal_requests: dict[str, int] = {}

    def add(self, row: StatRow, tracked: frozenset[str]) -> None:
        self.requests += 1
        if row.rating is not None:
            self.rated += 1
            if row.rating:
                self.positive += 1
        for name in {name for name, _positive in row.signals if name in tracked}:
            self.signal_requests[name] = self.signal_requests.get(name, 0) + 1


def find_regressions(
    rows: Iterable[StatRow],
    now: datetime,
    recent: timedelta,
    baseline: timedelta,
    dimensions: Mapping[str, Callable[[StatRow], str | None]],
    min_ratings: int = 20,
    alpha: float = 0.05,
    signals_negative: frozenset[str] = DEFAULT_NEGATIVE_SIGNALS,
) -> list[Regression]:
    """Significant recent-vs-baseline worsenings per dimension value.

    Sorted by p-value, then by the size of the change (largest first), then dimension,
    key and metric.  Groups whose key is ``None`` are skipped; to watch everything at
    once pass a constant dimension such as ``{"all": lambda r: "all"}``.
    """
    if recent <= timedelta(0) or baseline <= timedelta(0):
        raise ValueError("recent and baseline windows must be positive")
    now_utc = parse_utc(now)
    assert now_utc is not None
    recent_start = now_utc - recent
    baseline_start = recent_start - baseline

    windowed: list[tuple[StatRow, bool]] = []  # (row, is_recent)
    for row in rows:
        ts = parse_utc(row.datetime_utc)
        if ts is None or ts < baseline_start or ts >= now_utc:
            continue
        windowed.append((row, ts >= recent_start))

    found: list[Regression] = []
    for dimension, key_fn in dimensions.items():
        counts: dict[str, tuple[Window, Window]] = {}  # key -> (baseline, recent)
        for row, is_recent in windowed:
            key = key_fn(row)
            if key is None:
                continue
            pair = counts.get(key)
            if pair is None:
                pair = counts[key] = (Window(), Window())
            pair[1 if is_recent else 0].add(row, signals_negative)
        for key, (base, rec) in counts.items():
            found.extend(check_group(dimension, key, base, rec, min_ratings, alpha, signals_negative))

    found.sort(key=lambda r: (r.p_value, -abs(r.delta), r.dimension, r.key, r.metric))
    return found


def check_group(
    dimension: str,
    key: str,
    base: Window,
    rec: Window,
    min_ratings: int,
    alpha: float,
    signals_negative: frozenset[str],
) -> list[Regression]:
    """The regressions of one group, baseline window against recent: ``find_regressions``' test, also applied
    to counts from the store by ``grouped.regressions`` so both routes use one definition."""
    out: list[Regression] = []
    if base.rated >= min_ratings and rec.rated >= min_ratings:
        z, p = two_proportion_z_one_sided(rec.positive, rec.rated, base.positive, base.rated, "less")
        base_rate, rec_rate = base.positive / base.rated, rec.positive / rec.rated
        if p < alpha and rec_rate < base_rate:
            out.append(
                Regression(
                    dimension=dimension,
                    key=key,
                    metric="positive_rate",
                    baseline_rate=base_rate,
                    recent_rate=rec_rate,
                    baseline_n=base.rated,
                    recent_n=rec.rated,
                    delta=rec_rate - base_rate,
                    p_value=p,
                    z=z,
                )
            )
    if base.requests >= min_ratings and rec.requests >= min_ratings:
        for name in sorted(signals_negative):
            x_base, x_rec = base.signal_requests.get(name, 0), rec.signal_requests.get(name, 0)
            z, p = two_proportion_z_one_sided(x_rec, rec.requests, x_base, base.requests, "greater")
            base_rate, rec_rate = x_base / base.requests, x_rec / rec.requests
            if p < alpha and rec_rate > base_rate:
                out.append(
                    Regression(
                        dimension=dimension,
                        key=key,
                        metric=f"signal:{name}",
                        baseline_rate=base_rate,
                        recent_rate=rec_rate,
                        baseline_n=base.requests,
                        recent_n=rec.requests,
                        delta=rec_rate - base_rate,
                        p_value=p,
                        z=z,
                    )
                )
    return out
