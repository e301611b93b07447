"""The insight and regression tests on per-group counts instead of rows.

Why: at a million requests the store counts in SQL and hands over a few numbers per group; these
functions then apply exactly the tests of ``insights.find_poor_groups`` and
``regressions.find_regressions`` (the tests check that both routes agree). Pure: counts in, results out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from feedgate.analysis.insights import Insight, compare_group
from feedgate.analysis.regressions import DEFAULT_NEGATIVE_SIGNALS, Regression, Window, check_group
from feedgate.store.reads.windows import Rated, WindowCounts

__all__ = ["poor_groups", "regressions"]


def _window(counts: WindowCounts) -> Window:
    out = Window()
    out.requests, out.rated, out.positive = counts.requests, counts.rated, counts.positive
    out.signal_requests = dict(counts.signal_requests)
    return out


def poor_groups(
    groups: Mapping[str, Mapping[str | None, Rated]],
    total: Rated,
    min_ratings: int = 10,
    alpha: float = 0.05,
) -> list[Insight]:
    """``find_poor_groups`` on counts: ``groups[dimension][key]`` are a group's ratings, ``total`` all of them.

    Keys that are ``None`` form no group (they still count in "the rest"). Examples are left empty for the
    caller to fill.
    """
    if total.rated == 0:
        return []
    found: list[Insight] = []
    for dimension, by_key in groups.items():
        for key, counts in by_key.items():
            rated, negative = counts.rated, counts.negative
            rest_rated = total.rated - rated
            if key is None or rated < min_ratings or rest_rated < max(1, min_ratings):
                continue
            insight = compare_group(dimension, key, rated, negative, total.rated, total.negative, alpha)
            if insight is not None:
                found.append(insight)
    found.sort(key=lambda i: (i.p_value, -i.gap, i.dimension, i.key))
    return found


def regressions(
    windows: Mapping[str, Mapping[str, tuple[WindowCounts, WindowCounts]]],
    min_ratings: int = 20,
    alpha: float = 0.05,
    signals_negative: Iterable[str] = DEFAULT_NEGATIVE_SIGNALS,
) -> list[Regression]:
    """``find_regressions`` on counts: ``windows[dimension][key] = (baseline, recent)``."""
    tracked = frozenset(signals_negative)
    found: list[Regression] = []
    for dimension, by_key in windows.items():
        for key, (base, recent) in by_key.items():
            found.extend(check_group(dimension, key, _window(base), _window(recent), min_ratings, alpha, tracked))
    found.sort(key=lambda r: (r.p_value, -abs(r.delta), r.dimension, r.key, r.metric))
    return found
