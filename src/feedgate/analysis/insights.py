"""Find the groups of requests that users dislike significantly more than the rest.

Why: a dashboard of per-model / per-prompt rates invites eyeballing small numbers
("prompt X has 3 thumbs down!").  This module answers the real question, "is this group
worse than everything else, beyond chance?", with a one-sided pooled two-proportion
z-test of the group's negative rate against the negative rate of all other rated rows,
and attaches a few concrete thumbs-down examples so a human can see *why*.

Only explicit ratings are used; implicit signals are analysed by ``regressions``.
Rows whose key is ``None`` (no value for the dimension) form no group, but still count
in "the rest" of every group of that dimension.  Pure: rows in, insights out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feedgate.analysis.stats import StatRow, two_proportion_z_one_sided, wilson_interval

__all__ = ["Insight", "find_poor_groups"]


@dataclass(slots=True)
class Insight:
    """A group whose negative-rating rate is significantly above the rest's."""

    dimension: str
    key: str
    rated: int
    negative: int
    negative_rate: float
    overall_negative_rate: float  # over every rated row, this group included
    gap: float  # negative_rate minus the negative rate of all other rated rows
    p_value: float  # one-sided: H1 = group's negative rate > the rest's
    negative_rate_low: float
    negative_rate_high: float
    examples: list[dict[str, str | None]] = field(default_factory=list)  # {request_id, comment}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


def _pick_examples(negatives: list[StatRow], limit: int) -> list[StatRow]:
    """Rows with a comment first (they explain the rating), then the most recent."""
    ordered = sorted(negatives, key=lambda r: (r.datetime_utc, r.request_id), reverse=True)
    ordered.sort(key=lambda r: not (r.comment and r.comment.strip()))  # stable
    return ordered[: max(0, limit)]


def find_poor_groups(
    rows: Iterable[StatRow],
    dimensions: Mapping[str, Callable[[StatRow], str | None]],
    min_ratings: int = 10,
    alpha: float = 0.05,
    examples: int = 3,
) -> list[Insight]:
    """Groups whose explicit negative rate is significantly higher than everyone else's.

    For every dimension and every group value with at least ``min_ratings`` explicit
    ratings (and at least ``min_ratings`` ratings outside it to compare against), run a
    one-sided pooled two-proportion z-test of the group's negative rate against the rest;
    report the group when ``p_value < alpha``.  Results are sorted by p-value, then by
    gap (largest first), then dimension and key.  No multiple-comparison correction is
    applied: pass a smaller ``alpha`` when testing many groups.
    """
    rated_rows = [r for r in rows if r.rating is not None]
    total_rated = len(rated_rows)
    total_negative = sum(1 for r in rated_rows if r.rating is False)
    if total_rated == 0:
        return []

    found: list[Insight] = []
    for dimension, key_fn in dimensions.items():
        groups: dict[str, list[StatRow]] = {}
        for row in rated_rows:
            key = key_fn(row)
            if key is not None:
                groups.setdefault(key, []).append(row)
        for key, members in groups.items():
            rated = len(members)
            rest_rated = total_rated - rated
            if rated < min_ratings or rest_rated < max(1, min_ratings):
                continue
            negatives = [r for r in members if r.rating is False]
            negative = len(negatives)
            insight = compare_group(dimension, key, rated, negative, total_rated, total_negative, alpha)
            if insight is None:
                continue
            picked = _pick_examples(negatives, examples)
            insight.examples = [{"request_id": r.request_id, "comment": r.comment} for r in picked]
            found.append(insight)
    found.sort(key=lambda i: (i.p_value, -i.gap, i.dimension, i.key))
    return found


def compare_group(
    dimension: str, key: str, rated: int, negative: int, total_rated: int, total_negative: int, alpha: float
) -> Insight | None:
    """One group against everyone else: an ``Insight`` when its negative rate is significantly higher."""
    rest_rated, rest_negative = total_rated - rated, total_negative - negative
    _z, p_value = two_proportion_z_one_sided(negative, rated, rest_negative, rest_rated, "greater")
    rate = negative / rated
    gap = rate - rest_negative / rest_rated
    if not (p_value < alpha and gap > 0):
        return None
    low, high = wilson_interval(negative, rated)
    assert low is not None and high is not None  # rated >= 1 here
    return Insight(
        dimension=dimension,
        key=key,
        rated=rated,
        negative=negative,
        negative_rate=rate,
        overall_negative_rate=total_negative / total_rated,
        gap=gap,
        p_value=p_value,
        negative_rate_low=low,
        negative_rate_high=high,
    )
