"""Quality statistics per group, from what the store counts: rates with their intervals, and percentiles.

The store counts and fetches (``store/reads/groups.py``); this module computes what the counts mean, with
the same definitions as the pure reference in ``stats.py``: the Wilson interval of the positive rate, mean
scores, and p50/p95 latency ranked like ``stats.percentile``.
"""

from __future__ import annotations

import asyncio

from feedgate.analysis.stats import GroupStats, percentile, wilson_interval
from feedgate.store.dialect import Frag
from feedgate.store.protocol import Store
from feedgate.store.reads.durations import DEFAULT_SAMPLING, Key, Sampling
from feedgate.store.reads.groups import Dimension, GroupCounts, group_counts

Pair = tuple[float | None, float | None]  # (p50, p95)


async def group_stats(
    store: Store, dim: Dimension | None, where: Frag, sampling: Sampling = DEFAULT_SAMPLING
) -> tuple[list[GroupStats], GroupStats]:
    """Per-group statistics (sorted like ``stats.aggregate``, by time for a time dimension) and the overall figures.

    ``sampling`` says when the latency percentiles are exact and how they are estimated otherwise.
    """
    counted = await group_counts(store, dim, where, sampling)
    # Sorting a few hundred thousand durations would hold up the proxy: rank them on a worker thread.
    ranked, overall = await asyncio.to_thread(_rank, counted.durations, counted.all_durations)
    return finish(counted.groups, counted.overall, ranked, overall, dim is not None and dim.chronological)


def finish(
    groups: dict[Key, GroupCounts],
    overall: GroupCounts,
    ranked: dict[Key, Pair],
    overall_latency: Pair,
    chronological: bool,
) -> tuple[list[GroupStats], GroupStats]:
    """Statistics from counts and latency percentiles (the rows' or the rollups'), sorted as ``group_stats`` sorts."""
    result = [_finish(k, counts, ranked.get(k, (None, None))) for k, counts in groups.items()]
    if chronological:
        result.sort(key=lambda g: (g.key is None, g.key or ""))
    else:
        result.sort(key=lambda g: (-g.requests, g.key is None, g.key or ""))
    return result, _finish(None, overall, overall_latency)


def _finish(key: Key, counts: GroupCounts, latency: Pair) -> GroupStats:
    rated = counts.positive + counts.negative
    low, high = wilson_interval(counts.positive, rated)
    return GroupStats(
        key=key,
        requests=counts.requests,
        rated=rated,
        positive=counts.positive,
        negative=counts.negative,
        positive_rate=counts.positive / rated if rated else None,
        positive_rate_low=low,
        positive_rate_high=high,
        signals={name: dict(counts.signals[name]) for name in sorted(counts.signals)},
        scores={name: total / n for name, (n, total) in sorted(counts.score_sums.items()) if n},
        cost_usd=counts.cost if counts.requests else 0.0,
        duration_ms_p50=latency[0],
        duration_ms_p95=latency[1],
    )


def _rank(groups: dict[Key, list[float]], every: list[float]) -> tuple[dict[Key, Pair], Pair]:
    return {k: _pair(values) for k, values in groups.items()}, _pair(every)


def _pair(values: list[float]) -> Pair:
    values.sort()  # so that ``percentile``'s own sort finds them in order and costs one pass
    return percentile(values, 50.0), percentile(values, 95.0)
