"""Stats, insights and regression counts from the rollups, with the partial hours at the edges from rows.

``rollup_plan.py`` decides whether a selection can be answered this way and which cells to read. Whole hours
come from the rollup tables (``store/reads/rollup_reads.py``); the partial hours at ``since``, ``until``
and any window split are counted by the row path's own functions (``groups.group_counts``,
``windows.rated_counts``, ``windows.window_counts``) restricted to them, and added: every figure is a sum.
The edge rows' durations go into the same latency histogram as the rollups', bucketed as the writer does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from feedgate.analysis import rollup_plan
from feedgate.analysis.quality import Pair, finish
from feedgate.analysis.rollup_edges import counts_of, cut, durations_of, edge_cells, picked, rated_of, window_of
from feedgate.analysis.selection import Selection
from feedgate.analysis.stats import GroupStats
from feedgate.config import AnalysisSettings
from feedgate.store.protocol import Store
from feedgate.store.reads import rollup_reads
from feedgate.store.reads.durations import Sampling
from feedgate.store.reads.groups import Dimension, GroupCounts
from feedgate.store.reads.rollup_reads import Cells, Hours, Key
from feedgate.store.reads.windows import Rated, WindowCounts
from feedgate.store.rollups.cells import UNTIMED_DIMENSIONS

# The edges are at most a few hours: their durations are all fetched, so the histogram counts every one.
EVERY_DURATION = Sampling(exact_max=2**62)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """What to read: the cells per grouping asked for, the whole hours, and the rows of the partial ones."""

    cells: dict[str | None, Cells]
    hours: Hours
    edges: tuple[tuple[str, str], ...]  # the partial hours, [start, end), read from rows
    properties: tuple[str, ...]  # the rolled-up properties, which the edges are summed with


async def plan(
    store: Store,
    analysis: AnalysisSettings,
    selection: Selection,
    groups: Sequence[str | None],
    since: str | None,
    until: str | None,
    cuts: Sequence[str] = (),
    *,
    latency: bool = False,
) -> RollupPlan | None:
    """How to answer ``groups`` (dimension names; ``None``: overall) over ``[since, until)`` from rollups,
    or ``None`` when the rows must answer (``analysis.rollups`` off, a filter or grouping they cannot answer,
    a dimension not complete over the range). ``latency``: the answer needs percentiles, which the dimensions
    kept without histograms (``user``) cannot give."""
    if not analysis.rollups or rollup_plan.equalities(selection) is None:
        return None
    usable = rollup_plan.readable(await rollup_reads.coverage(store), analysis.properties, since)
    if latency:
        usable -= set(UNTIMED_DIMENSIONS)
    cells: dict[str | None, Cells] = {}
    for group in groups:
        found = rollup_plan.cells_for(selection, group, usable)
        if found is None:
            return None
        cells[group] = found
    parts = rollup_plan.split(since, until, cuts)
    return RollupPlan(cells, parts.hours, parts.edges, tuple(analysis.properties))


def week_of(day: str) -> str:
    """The Monday of a ``YYYY-MM-DD`` day, as the stores' ``week_start`` has it."""
    moment = date.fromisoformat(day)
    return (moment - timedelta(days=moment.weekday())).isoformat()


def _fold(by_day: dict[Key, T], weekly: bool, merge: Callable[[T, T], None], new: Callable[[], T]) -> dict[Key, T]:
    if not weekly:
        return by_day
    out: dict[Key, T] = {}
    for day, value in by_day.items():
        week = week_of(day) if day is not None else None
        if week not in out:
            out[week] = new()
        merge(out[week], value)
    return out


def _add_counts(into: GroupCounts, other: GroupCounts) -> None:
    into.merge(other)


def _add_histogram(into: Counter[int], other: Counter[int]) -> None:
    into.update(other)


def _add_rated(into: Rated, other: Rated) -> None:
    into.positive += other.positive
    into.negative += other.negative


def _add_windows(into: tuple[WindowCounts, WindowCounts], other: tuple[WindowCounts, WindowCounts]) -> None:
    for mine, theirs in zip(into, other, strict=True):
        mine.requests += theirs.requests
        mine.rated += theirs.rated
        mine.positive += theirs.positive
        for name, count in theirs.signal_requests.items():
            mine.signal_requests[name] = mine.signal_requests.get(name, 0) + count


def _two_windows() -> tuple[WindowCounts, WindowCounts]:
    return WindowCounts(), WindowCounts()


def _in_window(counts: WindowCounts, window: int) -> tuple[WindowCounts, WindowCounts]:
    return (WindowCounts(), counts) if window else (counts, WindowCounts())


def _weekly(dim: Dimension | None) -> bool:
    return dim is not None and dim.name == "week"


async def stats(store: Store, found: RollupPlan, dim: Dimension) -> tuple[list[GroupStats], GroupStats]:
    """``quality.group_stats`` from rollups: the same counts; percentiles from the latency histograms."""
    summed = await rollup_reads.summed(store, found.cells[dim.name], found.hours)
    weekly = _weekly(dim)
    groups = _fold(summed.groups, weekly, _add_counts, GroupCounts)
    latency = _fold(summed.latency, weekly, _add_histogram, Counter)
    for k, sums in picked(await edge_cells(store, found.edges, found.properties), found.cells[dim.name]):
        k = week_of(k) if weekly and k is not None else k
        groups.setdefault(k, GroupCounts()).merge(counts_of(sums))
        latency.setdefault(k, Counter()).update(durations_of(sums))
    overall = GroupCounts()
    every: Counter[int] = Counter()
    for counts in groups.values():
        overall.merge(counts)
        counts.clean()
    overall.clean()
    for histogram in latency.values():
        every.update(histogram)
    kept = {k: counts for k, counts in groups.items() if counts.requests}
    ranked = {k: _pair(latency.get(k, Counter())) for k in kept}
    return finish(kept, overall, ranked, _pair(every), dim.chronological)


def _pair(histogram: Counter[int]) -> Pair:
    return (
        rollup_plan.histogram_percentile(histogram, 50.0),
        rollup_plan.histogram_percentile(histogram, 95.0),
    )


async def rated(store: Store, found: RollupPlan, dim: Dimension | None) -> dict[Key, Rated]:
    """``windows.rated_counts`` from rollups."""
    cells = found.cells[dim.name if dim is not None else None]
    out = _fold(await rollup_reads.rated(store, cells, found.hours), _weekly(dim), _add_rated, Rated)
    weekly = _weekly(dim)
    for k, sums in picked(await edge_cells(store, found.edges, found.properties), cells):
        k = week_of(k) if weekly and k is not None else k
        _add_rated(out.setdefault(k, Rated()), rated_of(sums))
    return {k: v for k, v in out.items() if v.rated}


async def windows(
    store: Store, found: RollupPlan, dim: Dimension, recent_from: str, signals: Sequence[str]
) -> dict[str, tuple[WindowCounts, WindowCounts]]:
    """``windows.window_counts`` from rollups (the hours' split at ``recent_from`` is one of the plan's cuts)."""
    summed = await rollup_reads.windows(store, found.cells[dim.name], found.hours, recent_from, signals)
    out = _fold(summed, _weekly(dim), _add_windows, _two_windows)
    weekly = _weekly(dim)
    for start, end in cut(found.edges, recent_from):
        window = 1 if start >= recent_from else 0
        for k, sums in picked(await edge_cells(store, [(start, end)], found.properties), found.cells[dim.name]):
            k = week_of(k) if weekly and k is not None else k
            _add_windows(out.setdefault(k, _two_windows()), _in_window(window_of(sums, signals), window))
    return {k: pair for k, pair in out.items() if k is not None}
