"""The rollup path and the row path give the same stats, insights and regressions on the same data.

Randomized requests over many hours, with retries, ratings set, changed and cleared, signals, scores set and
deleted and properties set afterwards, written through the writer (which keeps the rollups in the
transactions of the rows and the feedback). Every answer is asked twice: with ``analysis.rollups`` on
(``"source": "rollup"``) and off (``"rows"``). Counts must be equal, costs and mean scores equal to 1e-9
(sums in another order), latency percentiles within the histograms' bound (4.4 %) of the exact ones.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedgate.analysis.reports import insights_report, regressions_report, stats_report
from feedgate.analysis.rollup_plan import ERROR_BOUND
from feedgate.config import AnalysisSettings, load_settings
from feedgate.console.overview import chart_data
from feedgate.store import make_store
from feedgate.store.protocol import Store
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer
from pgschema import Schemas
from rollup_data import MODELS, random_ops

PROPERTIES = ["feature", "tier"]
# Not on an hour: every range below has partial hours at its edges unless it says otherwise.
START = datetime(2026, 11, 5, 5, 17, 13, 500_000, tzinfo=UTC)
HOURS = 9 * 24
NOW = START + timedelta(hours=HOURS, minutes=7, seconds=3)
ON = AnalysisSettings.model_validate({"properties": PROPERTIES, "min_ratings": 2, "alpha": 0.5})
OFF = ON.model_copy(update={"rollups": False})


def at(hours: float) -> str:
    return utc_text(START + timedelta(hours=hours))


@pytest.fixture(params=["sqlite", "postgres"])
async def filled(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'rollups.db'}"
    if request.param == "postgres":
        schemas: Schemas = request.getfixturevalue("pg_schemas")
        url = schemas.new_url()
    settings = load_settings(environ={}, overrides={"database": {"url": url}, "analysis": {"properties": PROPERTIES}})
    store = make_store(settings)
    await store.open()
    writer: Writer[Any] = Writer(store, lambda record: record)
    writer.start()
    try:
        # Some batches queued without waiting (the writer gathers them into larger transactions, a request's
        # row and its feedback often in one), some submitted whole and waited for.
        for number, batch in enumerate(random_ops(seed=15, start=START, hours=HOURS, requests=450)):
            if number % 3:
                for op in batch:
                    assert writer.put(op)
            else:
                await writer.submit(batch)
        await writer.flush()
        yield store
    finally:
        await writer.stop()
        await store.close()


def _close(a: float | None, b: float | None, relative: float, absolute: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=relative, abs_tol=absolute)


def assert_same_group(fast: dict[str, Any], slow: dict[str, Any], where: str) -> None:
    exact = ("key", "requests", "rated", "positive", "negative", "positive_rate", "positive_rate_low")
    for name in (*exact, "positive_rate_high", "signals"):
        assert fast[name] == slow[name], f"{where}: {name}"
    assert _close(fast["cost_usd"], slow["cost_usd"], 1e-9), f"{where}: cost"
    assert fast["scores"].keys() == slow["scores"].keys(), f"{where}: scores"
    for name, value in slow["scores"].items():
        assert _close(fast["scores"][name], value, 1e-9), f"{where}: score {name}"
    for name in ("duration_ms_p50", "duration_ms_p95"):
        assert _close(fast[name], slow[name], ERROR_BOUND), f"{where}: {name} {fast[name]} vs {slow[name]}"


async def assert_same_stats(store: Store, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    fast = await stats_report(store, pairs, ON)
    slow = await stats_report(store, pairs, OFF)
    # Users have no latency histograms (a histogram per user and hour would be as big as the log): stats
    # by user, or for one user, come from rows.
    by_user = ("group_by", "user") in pairs or any(name == "user" for name, _ in pairs)
    assert (fast.pop("source"), slow.pop("source")) == ("rows" if by_user else "rollup", "rows"), pairs
    assert [g["key"] for g in fast["groups"]] == [g["key"] for g in slow["groups"]], pairs
    for a, b in zip(fast["groups"], slow["groups"], strict=True):
        assert_same_group(a, b, f"{pairs} {b['key']}")
    assert_same_group(fast["overall"], slow["overall"], f"{pairs} overall")
    return slow


RANGES: list[list[tuple[str, str]]] = [
    [],
    [("since", at(30.4))],
    [("since", at(7.9)), ("until", at(150.25))],
    [("since", "2026-11-06T00:00:00Z"), ("until", "2026-11-10T13:00:00Z")],  # on the hour: no edges
    [("since", at(40.1)), ("until", at(40.6))],  # within one hour
    [("until", at(100.01))],
]
GROUPS = ("model", "user", "path", "prompt", "day", "week", "property:feature", "property:tier")


@pytest.mark.parametrize("span", range(len(RANGES)))
async def test_stats_same_on_both_paths(filled: Store, span: int) -> None:
    for group in GROUPS:
        slow = await assert_same_stats(filled, [*RANGES[span], ("group_by", group)])
        if span in (0, 2):
            assert slow["overall"]["requests"] > 50 and len(slow["groups"]) > 1, group


FILTERED = [
    [("model", "gpt-4o"), ("group_by", "model")],
    [("model", "gpt-4o"), ("group_by", "day")],
    [("model", "o3"), ("group_by", "week")],
    [("property.feature", "chat"), ("group_by", "property:feature")],
    [("property.tier", "pro"), ("group_by", "day")],
    [("user", "u1"), ("group_by", "user")],
    [("path", "/v1/responses"), ("group_by", "week")],
    [("prompt", "support"), ("group_by", "prompt")],
]


@pytest.mark.parametrize("case", range(len(FILTERED)))
async def test_filtered_stats_same_on_both_paths(filled: Store, case: int) -> None:
    for span in (RANGES[0], RANGES[2]):
        slow = await assert_same_stats(filled, [*span, *FILTERED[case]])
        assert slow["overall"]["requests"] > 5


async def test_insights_same_on_both_paths(filled: Store) -> None:
    cases: list[list[tuple[str, str]]] = [
        [],
        [("since", at(20.3)), ("until", at(170.7))],
        [("model", "gpt-4o"), ("by", "model"), ("by", "day")],
        [("property.feature", "code"), ("by", "week"), ("since", at(3.3))],
        [("by", "path"), ("by", "property:tier"), ("min_ratings", "1")],
    ]
    found = 0
    for pairs in cases:
        fast = await insights_report(filled, ON, pairs)
        slow = await insights_report(filled, OFF, pairs)
        assert (fast.pop("source"), slow.pop("source")) == ("rollup", "rows"), pairs
        assert fast == slow, pairs
        found += len(slow["insights"])
    assert found


async def test_regressions_same_on_both_paths(filled: Store) -> None:
    cases: list[list[tuple[str, str]]] = [
        [("recent_days", "2.5"), ("baseline_days", "5")],
        [("recent_days", "1.01"), ("baseline_days", "3.3"), ("by", "model"), ("by", "user"), ("by", "path")],
        [("property.feature", "chat"), ("by", "property:feature"), ("by", "day"), ("recent_days", "2")],
        [("since", at(100.5)), ("recent_days", "3"), ("by", "property:tier"), ("by", "prompt")],
        [("signal", "edited"), ("signal", "abandoned"), ("recent_days", "4"), ("by", "model")],
    ]
    found = 0
    for pairs in cases:
        fast = await regressions_report(filled, ON, pairs, now=NOW)
        slow = await regressions_report(filled, OFF, pairs, now=NOW)
        assert (fast.pop("source"), slow.pop("source")) == ("rollup", "rows"), pairs
        assert fast == slow, pairs
        found += len(slow["regressions"])
    assert found


async def test_regressions_in_one_hour_compare_the_same_whole_hours(filled: Store) -> None:
    """Two runs in the same hour agree: the windows end with the current hour and are cut on the hour."""
    pairs = [("recent_days", "2"), ("baseline_days", "5"), ("by", "model"), ("by", "user")]
    early = await regressions_report(filled, ON, pairs, now=NOW.replace(minute=1))
    late = await regressions_report(filled, ON, pairs, now=NOW.replace(minute=59))
    assert early == late
    end = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert early["recent"] == {"from": utc_text(end - timedelta(days=2)), "to": utc_text(end)}
    assert early["baseline"]["from"] == utc_text(end - timedelta(days=7))
    assert early["source"] == "rollup"


async def test_the_overview_chart_is_the_same_from_rollups(filled: Store) -> None:
    """The console overview's per-day trend per model: each model's daily stats come from rollups."""
    for pairs, models in (([("since", at(11.5))], len(MODELS)), ([("since", at(2.2)), ("model", "o3")], 1)):
        by_model = await stats_report(filled, [*pairs, ("group_by", "model")], ON)
        assert by_model["source"] == "rollup"
        fast = await chart_data(filled, ON, pairs, by_model["groups"])
        slow = await chart_data(filled, OFF, pairs, by_model["groups"])
        assert fast == slow and len(fast["series"]) == models and len(fast["days"]) >= 8
    # With a property filter, the figures per model need the rows: two dimensions at once.
    by_model = await stats_report(filled, [("property.feature", "code"), ("group_by", "model")], ON)
    assert by_model["source"] == "rows"


UNANSWERABLE = [
    [("session", "s1")],
    [("rating", "positive")],
    [("min_score.helpfulness", "1")],
    [("model", "gpt-4o"), ("user", "u1")],
    [("model", "gpt-4o"), ("group_by", "user")],
    [("property.feature", "chat"), ("group_by", "model")],
]


async def test_what_rollups_cannot_answer_comes_from_rows(filled: Store) -> None:
    for pairs in UNANSWERABLE:
        assert (await stats_report(filled, pairs, ON))["source"] == "rows", pairs
    only_feature = ON.model_copy(update={"properties": ["feature"]})
    report = await stats_report(filled, [("group_by", "property:tier")], only_feature)
    assert report["source"] == "rows"  # tier is not a rolled-up property under these settings
    assert (await insights_report(filled, ON, [("rating", "negative")]))["source"] == "rows"
    assert (await insights_report(filled, ON, [("model", "o3"), ("by", "user")]))["source"] == "rows"
    assert (await regressions_report(filled, ON, [("session", "x")], now=NOW))["source"] == "rows"
    assert (await stats_report(filled, [("group_by", "model")], OFF))["source"] == "rows"


async def test_a_property_rolled_up_later_is_read_from_rows_until_its_sums_are_complete(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    before = load_settings(environ={}, overrides={"database": {"url": url}, "analysis": {"properties": ["feature"]}})
    store = make_store(before)
    await store.open()
    for batch in random_ops(seed=3, start=START, hours=48, requests=60):
        await store.apply(batch)
    await store.close()
    store = make_store(before.model_copy(update={"analysis": ON}))  # tier is rolled up from the next hour on
    await store.open()
    try:
        for since in ([], [("since", at(1.5))]):
            tier = await stats_report(store, [*since, ("group_by", "property:tier")], ON)
            feature = await stats_report(store, [*since, ("group_by", "property:feature")], ON)
            assert (tier["source"], feature["source"]) == ("rows", "rollup")
            assert tier == {**await stats_report(store, [*since, ("group_by", "property:tier")], OFF), "source": "rows"}
    finally:
        await store.close()
