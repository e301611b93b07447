"""Which selections the rollups answer, how a range splits into whole and partial hours, and how close a
percentile read from the latency histogram is to the exact one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from feedgate.analysis.rollup_plan import ERROR_BOUND, cells_for, histogram_percentile, readable, split
from feedgate.analysis.selection import Selection, parse_selection
from feedgate.analysis.stats import percentile
from feedgate.store.reads.rollup_reads import Cells, Hours
from feedgate.store.rollups.cells import bucket_of

ALL = {"all", "model", "user", "path", "prompt", "property:feature"}


def selection(*pairs: tuple[str, str]) -> Selection:
    return parse_selection(pairs)[0]


def test_one_equality_and_its_own_grouping_or_time() -> None:
    assert cells_for(selection(), "model", ALL) == Cells("model", None, "key")
    assert cells_for(selection(), "week", ALL) == Cells("all", None, "day")
    assert cells_for(selection(), None, ALL) == Cells("all", None, None)
    assert cells_for(selection(("model", "o3")), "model", ALL) == Cells("model", "o3", "key")
    assert cells_for(selection(("model", "o3")), "day", ALL) == Cells("model", "o3", "day")
    assert cells_for(selection(("property.feature", "chat")), None, ALL) == Cells("property:feature", "chat", None)
    assert cells_for(selection(("since", "2026-01-01")), "property:feature", ALL) is not None


def test_what_needs_rows() -> None:
    for pairs in (
        [("session", "s")],
        [("rating", "negative")],
        [("min_score.x", "1")],
        [("model", "a"), ("user", "b")],
        [("property.feature", "a"), ("property.tier", "b")],
    ):
        assert cells_for(selection(*pairs), "day", ALL) is None, pairs
    assert cells_for(selection(("model", "a")), "user", ALL) is None
    assert cells_for(selection(), "property:tier", ALL) is None  # not rolled up
    assert cells_for(selection(("property.tier", "pro")), "day", ALL) is None
    assert cells_for(selection(), "model", ALL - {"model"}) is None


def test_a_dimension_is_read_only_where_complete_and_while_its_property_is_kept() -> None:
    coverage = {"all": "", "model": "2026-03-01T10:00:00.000000Z", "property:feature": "", "property:old": ""}
    assert readable(coverage, ["feature"], None) == {"all", "property:feature"}
    assert readable(coverage, ["feature"], "2026-03-01T10:59:00.000000Z") == {"all", "model", "property:feature"}
    assert readable(coverage, [], "2026-03-01T09:59:59.000000Z") == {"all"}


def test_split_into_whole_hours_and_edges() -> None:
    got = split("2026-01-01T10:20:00.000000Z", "2026-01-01T15:05:00.000000Z", ["2026-01-01T12:30:00.000000Z"])
    assert got.hours == Hours(
        "2026-01-01T11:00:00.000000Z", "2026-01-01T15:00:00.000000Z", ("2026-01-01T12:00:00.000000Z",)
    )
    assert got.edges == (
        ("2026-01-01T10:20:00.000000Z", "2026-01-01T11:00:00.000000Z"),
        ("2026-01-01T12:00:00.000000Z", "2026-01-01T13:00:00.000000Z"),
        ("2026-01-01T15:00:00.000000Z", "2026-01-01T15:05:00.000000Z"),
    )
    aligned = split("2026-01-01T10:00:00.000000Z", "2026-01-02T00:00:00.000000Z", ["2026-01-01T12:00:00.000000Z"])
    assert aligned.hours == Hours("2026-01-01T10:00:00.000000Z", "2026-01-02T00:00:00.000000Z") and not aligned.edges
    inside = split("2026-01-01T10:20:00.000000Z", "2026-01-01T10:40:00.000000Z")
    assert inside.hours.empty() and inside.edges == (("2026-01-01T10:20:00.000000Z", "2026-01-01T10:40:00.000000Z"),)
    open_ended = split(None, "2026-01-01T10:40:00.000000Z")
    assert open_ended.hours == Hours(None, "2026-01-01T10:00:00.000000Z")
    assert split("2026-01-02T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z").hours.empty()


def test_histogram_percentiles_are_within_the_bound() -> None:
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 101, 1000):
        values = [rng.lognormvariate(5, 2) for _ in range(size)] + [0.0] * (size // 10)
        histogram: dict[int, int] = {}
        for value in values:
            histogram[bucket_of(value)] = histogram.get(bucket_of(value), 0) + 1
        for q in (0.0, 50.0, 95.0, 99.0, 100.0):
            exact, read = percentile(values, q), histogram_percentile(histogram, q)
            assert exact is not None and read is not None
            assert abs(read - exact) <= ERROR_BOUND * exact + 1e-12, (size, q)
    assert histogram_percentile({}, 50.0) is None
    assert round(ERROR_BOUND, 4) == 0.0443


def test_spans_in_days_and_weeks_start_on_the_hour() -> None:
    """``30d`` reaches back to the top of an hour, so the rollups answer it whole; minutes and hours are exact."""
    now = datetime(2026, 12, 4, 14, 28, 59, 250_000, tzinfo=UTC)

    def since(value: str) -> str | None:
        return parse_selection([("since", value)], now=now)[0].since

    assert since("30d") == "2026-11-04T14:00:00.000000Z"
    assert since("1.5d") == "2026-12-03T02:00:00.000000Z"
    assert since("2w") == "2026-11-20T14:00:00.000000Z"
    assert since("12h") == "2026-12-04T02:28:59.250000Z"
    assert since("90m") == "2026-12-04T12:58:59.250000Z"
    # A caller's clock in another zone snaps to the UTC hour, not its own half hour.
    india = now.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert parse_selection([("until", "1d")], now=india)[0].until == "2026-12-03T14:00:00.000000Z"
    assert split(since("30d"), None).edges == ()
