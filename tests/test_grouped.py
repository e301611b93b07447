"""The count-based analysis routes agree with the row-based reference functions."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from feedgate.analysis.grouped import poor_groups, regressions
from feedgate.analysis.insights import find_poor_groups
from feedgate.analysis.regressions import find_regressions
from feedgate.analysis.stats import StatRow
from feedgate.store.reads.windows import Rated, WindowCounts

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def rows(seed: int) -> list[StatRow]:
    rng = random.Random(seed)
    out = []
    for i in range(3000):
        model = rng.choice(["good", "bad", "meh"])
        when = NOW - timedelta(hours=rng.uniform(0, 24 * 10))
        recent = when >= NOW - timedelta(days=2)
        p_up = {"good": 0.8, "bad": 0.55 if recent else 0.8, "meh": 0.7}[model]
        rating = None if rng.random() < 0.5 else rng.random() < p_up
        signals = [("regenerated", False)] if rng.random() < (0.2 if model == "bad" and recent else 0.05) else []
        out.append(
            StatRow(
                request_id=f"r{i}",
                model=model,
                user_id=f"u{rng.randint(1, 20)}",
                path="/v1/chat/completions",
                prompt=None,
                day=when.date().isoformat(),
                properties={},
                rating=rating,
                signals=signals,
                scores={},
                cost_usd=None,
                duration_ms=None,
                datetime_utc=when.isoformat(),
            )
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poor_groups_match_find_poor_groups(seed: int) -> None:
    data = rows(seed)
    keys: dict[str, Callable[[StatRow], str | None]] = {"model": lambda r: r.model, "user": lambda r: r.user_id}
    expected = find_poor_groups(data, keys, min_ratings=20, alpha=0.05, examples=0)
    groups: dict[str, dict[str | None, Rated]] = {name: {} for name in keys}
    total = Rated()
    for r in data:
        if r.rating is None:
            continue
        for name, key in keys.items():
            counts = groups[name].setdefault(key(r), Rated())
            counts.positive += r.rating
            counts.negative += not r.rating
        total.positive += r.rating
        total.negative += not r.rating
    assert poor_groups(groups, total, min_ratings=20, alpha=0.05) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_regressions_match_find_regressions(seed: int) -> None:
    data = rows(seed)
    recent, baseline = timedelta(days=2), timedelta(days=7)
    expected = find_regressions(data, NOW, recent, baseline, {"model": lambda r: r.model}, min_ratings=30, alpha=0.01)
    windows: dict[str, tuple[WindowCounts, WindowCounts]] = {}
    for r in data:
        when = datetime.fromisoformat(r.datetime_utc)
        if not NOW - recent - baseline <= when < NOW:
            continue
        assert r.model is not None
        pair = windows.setdefault(r.model, (WindowCounts(), WindowCounts()))
        counts = pair[1 if when >= NOW - recent else 0]
        counts.requests += 1
        if r.rating is not None:
            counts.rated += 1
            counts.positive += r.rating
        for name in {name for name, _ in r.signals}:
            counts.signal_requests[name] = counts.signal_requests.get(name, 0) + 1
    found = regressions({"model": windows}, min_ratings=30, alpha=0.01)
    assert found == expected
    assert {(r.key, r.metric) for r in found} == {("bad", "positive_rate"), ("bad", "signal:regenerated")}
