"""When an answer can come from the rollups, which cells it reads, and how a time range splits into whole
hours (rollups) and the partial hours at its edges (rows). Pure: no I/O.

A selection is answerable from rollups when its only filters are ``since``/``until`` and at most one
equality on a rolled-up dimension (``model``, ``user``, ``path``, ``prompt`` or ``property.NAME`` for a
NAME in ``analysis.properties``), and every grouping asked for is that same dimension, the day or week, or
none; and each dimension read is complete (``rollup_dimensions``) from the hour of ``since`` on. A session,
a rating or a score threshold, or an equality on a second dimension, needs the rows.

Percentiles come from the latency histograms: ranked like ``stats.percentile`` (position ``(n-1)*q/100``,
linear interpolation between the closest ranks) over bucket middles. A bucket spans a factor 2**(1/8), so
its middle is within a factor 2**(1/16) of any value in it, and so is a value interpolated between two
middles of the one interpolated between the exact values: within 4.4 % (2**(1/16) - 1) of the exact answer.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from feedgate.analysis.selection import Selection
from feedgate.store.reads.rollup_reads import By, Cells, Hours
from feedgate.store.rollups.cells import bucket_middle, hour_of
from feedgate.store.utc import parse_utc_text, utc_text

KEYED = ("model", "user", "path", "prompt")  # selection names that are also rollup dimension names
CHRONOLOGICAL = ("day", "week")
ERROR_BOUND = 2 ** (1 / 16) - 1  # the largest relative error of a percentile read from the histograms


def equalities(selection: Selection) -> list[tuple[str, str]] | None:
    """The selection's dimension equalities as ``(dimension, value)``; ``None`` when a filter needs rows."""
    if selection.session is not None or selection.rating is not None or selection.min_scores:
        return None
    found = [(name, value) for name in KEYED if (value := getattr(selection, name)) is not None]
    return found + [(f"property:{name}", value) for name, value in sorted(selection.properties.items())]


def readable(coverage: Mapping[str, str], properties: Collection[str], since: str | None) -> set[str]:
    """The dimensions whose rollups are complete over every hour from ``since`` (all hours: ``None``).

    A property's rollups count only while its name is in ``analysis.properties``: the writer keeps no others.
    """
    start = hour_of(since) if since is not None else ""
    out = set()
    for name, complete_from in coverage.items():
        if name.startswith("property:") and name[len("property:") :] not in properties:
            continue
        if complete_from == "" or (start and complete_from <= start):
            out.add(name)
    return out


def cells_for(selection: Selection, group: str | None, usable: set[str]) -> Cells | None:
    """The cells that answer ``group`` (a dimension name, ``day``, ``week`` or ``None``: overall) under
    ``selection``, or ``None`` when the rollups cannot answer it. Weeks are read by day (and folded)."""
    found = equalities(selection)
    if found is None or len(found) > 1:
        return None
    by: By = "key" if group is not None and group not in CHRONOLOGICAL else ("day" if group is not None else None)
    if found:
        [(dimension, value)] = found
        if group is not None and group not in CHRONOLOGICAL and group != dimension:
            return None
        cells = Cells(dimension, value, by)
    elif group is None or group in CHRONOLOGICAL:
        cells = Cells("all", None, by)
    else:
        cells = Cells(group, None, by)
    return cells if cells.dimension in usable else None


def _next_hour(hour: str) -> str:
    return utc_text(parse_utc_text(hour) + timedelta(hours=1))


@dataclass(frozen=True, slots=True)
class Split:
    """A time range as whole hours for the rollups and partial hours ``[start, end)`` for the rows."""

    hours: Hours
    edges: tuple[tuple[str, str], ...]


def split(since: str | None, until: str | None, cuts: Iterable[str] = ()) -> Split:
    """``[since, until)`` split at hour boundaries; each of ``since``, ``until`` and ``cuts`` (where an answer
    splits into windows) that falls inside an hour makes that hour an edge, answered from rows."""
    if since is not None and until is not None and since >= until:
        return Split(Hours(since, since), ())
    low = None if since is None else (since if hour_of(since) == since else _next_hour(hour_of(since)))
    high = None if until is None else hour_of(until)
    edges: dict[str, tuple[str, str]] = {}
    for point in (since, until, *cuts):
        if point is None or hour_of(point) == point:
            continue
        hour = hour_of(point)
        start, end = hour, _next_hour(hour)
        if since is not None:
            start = max(start, since)
        if until is not None:
            end = min(end, until)
        if start < end:
            edges[hour] = (start, end)
    skip = tuple(hour for hour in sorted(edges) if (low is None or hour >= low) and (high is None or hour < high))
    return Split(Hours(low, high, skip), tuple(edges[hour] for hour in sorted(edges)))


def histogram_percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """``stats.percentile`` of the values a histogram holds, each bucket standing for its middle."""
    buckets = sorted((bucket, count) for bucket, count in histogram.items() if count > 0)
    total = sum(count for _, count in buckets)
    if not total:
        return None
    position = (total - 1) * (q / 100.0)
    low = math.floor(position)
    high = min(low + 1, total - 1)

    def value_at(rank: int) -> float:
        seen = 0
        for bucket, count in buckets:
            seen += count
            if rank < seen:
                return bucket_middle(bucket)
        return bucket_middle(buckets[-1][0])

    below, fraction = value_at(low), position - low
    if fraction == 0.0 or low == high:
        return below
    return below + (value_at(high) - below) * fraction
