"""Exact-number tests for the pure analysis layer (stats, insights, regressions).

Expected values are computed by hand from the textbook formulas (noted inline), so the
store's SQL implementation can be checked against the same numbers.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from feedgate.analysis.insights import find_poor_groups
from feedgate.analysis.regressions import Regression, find_regressions, parse_utc
from feedgate.analysis.stats import (
    DIMENSIONS,
    GroupStats,
    StatRow,
    aggregate,
    by_property,
    normal_sf,
    one_sided_p,
    percentile,
    two_proportion_z,
    two_proportion_z_one_sided,
    wilson_interval,
)


def row(
    rid: str,
    *,
    model: str | None = "m",
    user_id: str | None = None,
    rating: bool | None = None,
    signals: list[tuple[str, bool]] | None = None,
    scores: dict[str, float] | None = None,
    cost: float | None = None,
    duration: float | None = None,
    when: str = "2024-06-01T12:00:00Z",
    comment: str | None = None,
    properties: dict[str, str] | None = None,
) -> StatRow:
    return StatRow(
        request_id=rid,
        model=model,
        user_id=user_id,
        path="/v1/chat/completions",
        prompt=None,
        day=when[:10],
        properties=properties or {},
        rating=rating,
        signals=signals or [],
        scores=scores or {},
        cost_usd=cost,
        duration_ms=duration,
        datetime_utc=when,
        comment=comment,
    )


# --- stats ----------------------------------------------------------------------------


def test_wilson_known_values() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # type: ignore[arg-type]
    assert wilson_interval(0, 0) == (None, None)
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    # lower bound at p=1 is n / (n + z^2) = 10 / (10 + 3.841459) = 0.722467
    assert low == pytest.approx(0.722467, abs=1e-6)
    assert wilson_interval(0, 10)[0] == 0.0
    low, high = wilson_interval(1, 2)
    assert (round(low, 4), round(high, 4)) == (0.0945, 0.9055)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_two_proportion_z_known_values() -> None:
    # pooled p = 105/200 = 0.525; se = sqrt(.525 * .475 * (1/100 + 1/100)) = 0.0706222
    # z = (0.45 - 0.60) / 0.0706222 = -2.12398; two-sided p = erfc(2.12398 / sqrt 2) = 0.033672
    z, p = two_proportion_z(45, 100, 60, 100)
    assert z == pytest.approx(-2.12398, abs=1e-5)
    assert p == pytest.approx(0.033672, abs=1e-6)
    z1, p_less = two_proportion_z_one_sided(45, 100, 60, 100, "less")
    assert z1 == z and p_less == pytest.approx(p / 2)
    assert two_proportion_z_one_sided(45, 100, 60, 100, "greater")[1] == pytest.approx(1 - p / 2)
    # degenerate: no data or no variance -> never significant
    assert two_proportion_z(0, 0, 5, 10) == (0.0, 1.0)
    assert two_proportion_z(10, 10, 20, 20) == (0.0, 1.0)
    assert two_proportion_z_one_sided(0, 10, 0, 10) == (0.0, 1.0)
    # equal non-degenerate rates: z = 0, one-sided p = 0.5
    assert two_proportion_z_one_sided(40, 50, 80, 100, "less") == (0.0, 0.5)


def test_normal_tails() -> None:
    assert normal_sf(0.0) == 0.5
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, abs=1e-12)
    assert one_sided_p(-1.6448536269514722, "less") == pytest.approx(0.05, abs=1e-12)
    with pytest.raises(ValueError):
        one_sided_p(1.0, "both")  # type: ignore[arg-type]


def test_percentile_matches_numpy_linear() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([4, 1, 3, 2], 50) == 2.5  # pos 1.5 -> 2 + 0.5
    assert percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)  # pos 3.8
    assert percentile([100, 200, 300], 95) == pytest.approx(290.0)  # pos 1.9
    assert percentile([1, 2, 3], 0) == 1 and percentile([1, 2, 3], 100) == 3
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _aggregate_fixture() -> list[StatRow]:
    return [
        row(
            "r1",
            model="a",
            rating=True,
            signals=[("code_accepted", True)],
            scores={"accuracy": 1.0},
            cost=0.01,
            duration=100,
        ),
        row(
            "r2",
            model="a",
            rating=False,
            signals=[("regenerated", False), ("regenerated", False)],
            scores={"accuracy": 0.5},
            cost=None,
            duration=200,
        ),
        row("r3", model="a", rating=None, signals=[("code_accepted", True)], cost=0.02, duration=300),
        row("r4", model="b", rating=True, scores={"accuracy": 0.0, "helpful": 4.0}, cost=0.005),
        row("r5", model=None, duration=50),
    ]


def test_aggregate_exact_counts() -> None:
    groups, overall = aggregate(_aggregate_fixture(), DIMENSIONS["model"])
    assert [g.key for g in groups] == ["a", "b", None]  # requests desc, then key, None last
    a = groups[0]
    assert (a.requests, a.rated, a.positive, a.negative) == (3, 2, 1, 1)
    assert a.positive_rate == 0.5
    assert (round(a.positive_rate_low, 4), round(a.positive_rate_high, 4)) == (0.0945, 0.9055)  # type: ignore[arg-type]
    # signals are counted apart from explicit ratings: r3 is unrated but signalled
    assert a.signals == {
        "code_accepted": {"positive": 2, "negative": 0},
        "regenerated": {"positive": 0, "negative": 2},
    }
    assert a.scores == {"accuracy": 0.75}
    assert a.cost_usd == pytest.approx(0.03)
    assert a.duration_ms_p50 == 200.0 and a.duration_ms_p95 == pytest.approx(290.0)

    b, none = groups[1], groups[2]
    assert (b.requests, b.rated, b.positive, b.positive_rate) == (1, 1, 1, 1.0)
    assert b.duration_ms_p50 is None and b.duration_ms_p95 is None
    assert (none.requests, none.rated, none.positive_rate, none.positive_rate_low) == (1, 0, None, None)
    assert none.cost_usd == 0.0 and none.signals == {} and none.scores == {}

    assert overall.key is None
    assert (overall.requests, overall.rated, overall.positive, overall.negative) == (5, 3, 2, 1)
    assert overall.positive_rate == pytest.approx(2 / 3)
    assert overall.scores == {"accuracy": pytest.approx(0.5), "helpful": 4.0}
    assert overall.cost_usd == pytest.approx(0.035)
    assert overall.duration_ms_p50 == 150.0  # [50, 100, 200, 300] pos 1.5
    assert overall.duration_ms_p95 == pytest.approx(285.0)  # pos 2.85
    json.dumps([g.as_dict() for g in groups] + [overall.as_dict()])


def test_aggregate_empty_and_property_dimension() -> None:
    groups, overall = aggregate([], DIMENSIONS["model"])
    assert groups == [] and overall == GroupStats(key=None)
    rows = [
        row("1", properties={"team": "x"}),
        row("2", properties={"team": "y"}),
        row("3", properties={"team": "x"}),
    ]
    groups, _ = aggregate(rows, by_property("team"))
    assert [(g.key, g.requests) for g in groups] == [("x", 2), ("y", 1)]
    assert aggregate(rows, DIMENSIONS["day"])[0][0].key == "2024-06-01"


def test_aggregate_cost_sum_is_order_independent() -> None:
    costs = [0.1, 1e16, 0.2, -1e16, 0.3]
    rows = [row(str(i), cost=c) for i, c in enumerate(costs)]
    forward = aggregate(rows, DIMENSIONS["model"])[1].cost_usd
    backward = aggregate(list(reversed(rows)), DIMENSIONS["model"])[1].cost_usd
    assert forward == backward == math.fsum(costs)


# --- insights -------------------------------------------------------------------------


def _rated(model: str, n: int, negatives: int, prefix: str) -> list[StatRow]:
    return [
        row(f"{prefix}{i}", model=model, rating=i >= negatives, when=f"2024-06-01T10:{i % 60:02d}:00Z")
        for i in range(n)
    ]


def test_insights_finds_planted_bad_model() -> None:
    rows = (
        _rated("bad", 40, 24, "bad")
        + _rated("good1", 60, 6, "g1_")
        + _rated("good2", 60, 7, "g2_")
        + _rated("tiny", 5, 5, "t")  # all negative but too few ratings to judge
        + [row("unrated", model="bad"), row("nokey", model=None, rating=False)]
    )
    rows[0].comment = "wrong answer"
    rows[1].comment = "   "  # blank comments do not count as comments
    found = find_poor_groups(rows, {"model": DIMENSIONS["model"]}, min_ratings=10)
    assert [(i.dimension, i.key) for i in found] == [("model", "bad")]
    bad = found[0]
    assert (bad.rated, bad.negative, bad.negative_rate) == (40, 24, 0.6)
    # everything rated: 40 + 60 + 60 + 5 + 1 = 166 ratings, 24 + 6 + 7 + 5 + 1 = 43 negative
    assert bad.overall_negative_rate == pytest.approx(43 / 166)
    # rest: 126 ratings, 19 negative
    assert bad.gap == pytest.approx(0.6 - 19 / 126)
    # pooled p = 43/166; se = sqrt(p (1 - p) (1/40 + 1/126)); z = gap / se
    p = 43 / 166
    z = (0.6 - 19 / 126) / math.sqrt(p * (1 - p) * (1 / 40 + 1 / 126))
    assert bad.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert bad.p_value < 1e-7
    low, high = wilson_interval(24, 40)
    assert (bad.negative_rate_low, bad.negative_rate_high) == (low, high)
    assert len(bad.examples) == 3
    assert bad.examples[0] == {"request_id": "bad0", "comment": "wrong answer"}
    # then most recent first: bad23 (10:23) > bad22 (10:22); bad1's blank comment ranks as none
    assert [e["request_id"] for e in bad.examples[1:]] == ["bad23", "bad22"]
    json.dumps(bad.as_dict())


def test_insights_stable_groups_not_flagged_and_sorting() -> None:
    rows = _rated("a", 100, 10, "a") + _rated("b", 100, 12, "b") + _rated("c", 100, 9, "c")
    assert find_poor_groups(rows, {"model": DIMENSIONS["model"]}) == []
    # two planted groups on two dimensions: sorted by p-value (strongest first)
    rows += _rated("worse", 50, 40, "w") + _rated("bad", 50, 25, "x")
    for r in rows[:20]:
        r.user_id = "u-angry"
        r.rating = False
    found = find_poor_groups(rows, {"model": DIMENSIONS["model"], "user": DIMENSIONS["user_id"]})
    assert [(i.dimension, i.key) for i in found] == [
        ("model", "worse"),
        ("user", "u-angry"),
        ("model", "bad"),
    ]
    assert [i.p_value for i in found] == sorted(i.p_value for i in found)
    assert find_poor_groups(rows, {"model": DIMENSIONS["model"]}, examples=0)[0].examples == []


def test_insights_no_ratings() -> None:
    assert find_poor_groups([row("1"), row("2")], {"model": DIMENSIONS["model"]}) == []


# --- regressions ----------------------------------------------------------------------

NOW = datetime(2024, 6, 10, tzinfo=UTC)


def _window_rows(
    model: str, n: int, positives: int | None, start: datetime, span: timedelta, signal: int = 0
) -> list[StatRow]:
    """``n`` rows evenly inside [start, start + span); the first ``positives`` rated up, the
    rest down (unrated if ``positives`` is None); the first ``signal`` rows regenerated."""
    out = []
    for i in range(n):
        when = (start + span * i / n).isoformat().replace("+00:00", "Z")
        rating = None if positives is None else i < positives
        signals = [("regenerated", False)] if i < signal else [("code_accepted", True)]
        out.append(row(f"{model}-{start:%d}-{i}", model=model, rating=rating, signals=signals, when=when))
    return out


def _regression_fixture() -> list[StatRow]:
    recent, base = timedelta(days=1), timedelta(days=7)
    rs, bs = NOW - recent, NOW - recent - base
    rows: list[StatRow] = []
    rows += _window_rows("drop", 100, 80, bs, base) + _window_rows("drop", 50, 25, rs, recent)
    rows += _window_rows("stable", 100, 80, bs, base) + _window_rows("stable", 50, 40, rs, recent)
    rows += _window_rows("few", 10, 10, bs, base) + _window_rows("few", 10, 0, rs, recent)
    rows += _window_rows("regen", 100, None, bs, base, signal=5)
    rows += _window_rows("regen", 50, None, rs, recent, signal=20)
    # outside both windows: at/after now, and before the baseline start
    rows += _window_rows("stable", 30, 0, NOW, timedelta(hours=1))
    rows += _window_rows("stable", 30, 0, bs - timedelta(days=1), timedelta(hours=1))
    return rows


def test_regressions_planted_drop_and_signal_rise() -> None:
    found = find_regressions(
        _regression_fixture(), NOW, timedelta(days=1), timedelta(days=7), {"model": DIMENSIONS["model"]}
    )
    by = {(r.key, r.metric): r for r in found}
    assert set(by) == {("drop", "positive_rate"), ("regen", "signal:regenerated")}

    drop = by["drop", "positive_rate"]
    assert (drop.baseline_n, drop.recent_n, drop.baseline_rate, drop.recent_rate) == (100, 50, 0.8, 0.5)
    assert drop.delta == pytest.approx(-0.3)
    # pooled p = 105/150 = 0.7; se = sqrt(.7 * .3 * (1/50 + 1/100)) = sqrt(.0063); z = -.3 / se
    assert drop.z == pytest.approx(-0.3 / math.sqrt(0.0063))
    assert drop.z == pytest.approx(-3.779645, abs=1e-6)
    assert drop.p_value == pytest.approx(7.8526e-05, rel=1e-4)

    regen = by["regen", "signal:regenerated"]
    assert (regen.baseline_n, regen.recent_n, regen.baseline_rate, regen.recent_rate) == (100, 50, 0.05, 0.4)
    # pooled p = 25/150; se = sqrt(1/6 * 5/6 * 3/100); z = .35 / se = 5.422177
    assert regen.z == pytest.approx(5.422177, abs=1e-6)
    assert regen.delta == pytest.approx(0.35)
    assert [r.p_value for r in found] == sorted(r.p_value for r in found)


def test_regressions_window_boundaries_and_naive_timestamps() -> None:
    recent, base = timedelta(hours=1), timedelta(hours=1)
    rows = [
        row("at-recent-start", rating=True, when="2024-06-09T23:00:00Z"),  # recent (inclusive)
        row("at-now", rating=False, when="2024-06-10T00:00:00Z"),  # excluded
        row("at-base-start", rating=True, when="2024-06-09 22:00:00"),  # naive = UTC, baseline
        row("before", rating=True, when="2024-06-09T21:59:59+00:00"),  # excluded
        row("other-zone", rating=False, when="2024-06-10T01:30:00+02:00"),  # 23:30Z -> recent
        row("garbage", rating=False, when="not a date"),  # skipped
    ]
    # min_ratings=1 and alpha=1 so every worsening is reported and the counts are visible
    found = find_regressions(rows, NOW, recent, base, {"all": lambda r: "all"}, min_ratings=1, alpha=1.0)
    assert len(found) == 1
    r = found[0]
    assert (r.metric, r.baseline_n, r.recent_n, r.baseline_rate, r.recent_rate) == (
        "positive_rate",
        1,
        2,
        1.0,
        0.5,
    )
    assert parse_utc("2024-06-10T02:00:00+02:00") == NOW
    with pytest.raises(ValueError):
        find_regressions(rows, NOW, timedelta(0), base, {})


def test_regression_fingerprint_is_stable() -> None:
    args = (NOW, timedelta(days=1), timedelta(days=7), {"model": DIMENSIONS["model"]})
    first = find_regressions(_regression_fixture(), *args)
    again = find_regressions(_regression_fixture()[::-1], *args)
    assert [r.fingerprint for r in first] == [r.fingerprint for r in again]
    a = Regression("model", "x", "positive_rate", 0.8, 0.5, 100, 50, -0.3, 0.001, -3.0)
    b = Regression("model", "x", "positive_rate", 0.9, 0.1, 10, 5, -0.8, 0.0001, -4.0)
    c = Regression("model", "x", "signal:regenerated", 0.8, 0.5, 100, 50, -0.3, 0.001, -3.0)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len({r.fingerprint for r in first}) == len(first)
    d = first[0].as_dict()
    assert d["fingerprint"] == first[0].fingerprint
    json.dumps([r.as_dict() for r in first])
