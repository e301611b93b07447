"""The analysis reports and exports give the same answers on SQLite and on PostgreSQL.

PostgreSQL runs when FEEDGATE_TEST_POSTGRES_URL is set; each run gets a fresh schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from analysis_data import ago, known_dataset, rate, row
from feedgate.analysis.export_run import FORMATS, Export
from feedgate.analysis.reports import (
    count_requests,
    insights_report,
    query_body,
    query_requests,
    regressions_report,
    stats_report,
)
from feedgate.config import AnalysisSettings, load_settings
from feedgate.store import make_store
from feedgate.store.datasets import dataset_items, list_datasets
from feedgate.store.filters import compile_filter
from feedgate.store.ops import CreateDataset, MutateDataset
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import dataset_scope
from pgschema import Schemas


@pytest.fixture
async def store(store: Store) -> Store:
    """The shared two-store fixture (tests/pgschema.py), filled with the known dataset."""
    extra = [row(f"d{i}", when=ago(days=6, hours=i), model="gpt-4o", question=f"old {i}") for i in range(3)]
    await store.apply([*known_dataset(), *extra, rate("d0", False)])
    return store


async def test_stats_same_numbers(store: Store) -> None:
    report = await stats_report(store, [("group_by", "model")])
    a = next(g for g in report["groups"] if g["key"] == "gpt-4o")
    assert (a["requests"], a["rated"], a["positive"], a["negative"]) == (13, 9, 6, 3)
    assert a["scores"] == {"helpfulness": 0.75} and a["cost_usd"] == 1.25
    assert report["overall"]["requests"] == 18
    for dim in ("user", "prompt", "path", "day", "week", "property:feature"):
        report = await stats_report(store, [("group_by", dim)])
        assert sum(g["requests"] for g in report["groups"]) == 18, dim
        assert all(g["duration_ms_p50"] is not None for g in report["groups"]), dim
    week = await stats_report(store, [("group_by", "week")])
    assert all(len(g["key"]) == 10 for g in week["groups"])  # the Monday, YYYY-MM-DD, in both stores


async def test_query_and_count(store: Store) -> None:
    tree = {
        "left": {"properties": {"feature": {"equals": "chat"}}},
        "operator": "and",
        "right": {"feedback": {"rating": {"equals": True}}},
    }
    rows = await query_requests(store, query_body({"filter": tree, "sort": {"latency": "desc"}, "limit": 50}))
    assert [r["request_id"] for r in rows] == ["a5", "a4", "a3", "a2", "a1", "b1"]
    assert await count_requests(store, query_body({"filter": tree})) == 6
    sorted_rows = await query_requests(store, query_body({"sort": {"properties": {"feature": "asc"}}, "limit": 3}))
    assert all(r["properties"].get("feature") == "chat" for r in sorted_rows)


async def test_insights_and_regressions(store: Store) -> None:
    settings = AnalysisSettings.model_validate({"min_ratings": 3, "alpha": 0.2})
    report = await insights_report(store, settings, [("by", "model")])
    assert [(i["key"], i["rated"], i["negative"]) for i in report["insights"]] == [("claude-sonnet-4-5", 4, 3)]
    assert report["insights"][0]["examples"][0] == {"request_id": "b2", "comment": "too long"}
    report = await regressions_report(store, settings, [("by", "model"), ("recent_days", "3")])
    assert report["regressions"] == []


async def test_exports_and_datasets(store: Store) -> None:
    await store.apply(
        [
            CreateDataset("ds1", "picked", "helicone", ["a1", "b2"]),
            CreateDataset("ds2", "up", "filter", filter_tree={"feedback": {"rating": {"equals": True}}}),
            MutateDataset("ds1", add=["a3"], remove=["b2"]),
        ]
    )
    listed = {d["id"]: d["requests_count"] for d in await list_datasets(store)}
    assert listed == {"ds1": 2, "ds2": 7}
    assert [i["request_id"] for i in await dataset_items(store, "ds1", 0, 10)] == ["a1", "a3"]
    where = compile_filter("all", store.dialect).where
    planned = {}
    for fmt in FORMATS:
        export = Export(store, where, fmt)
        planned[fmt] = await export.plan()
        lines = [orjson.loads(line) async for line in export.lines()]
        assert lines or fmt == "openai-preference", fmt  # every question here is asked once: no pairs
    # preference pairs need rated requests with a known conversation; the others read every request
    assert planned == {"openai-chat": 18, "openai-preference": 13, "few-shot": 18, "jsonl": 18}
    export = Export(store, dataset_scope("ds2"), "openai-chat")
    assert await export.plan() == 7
    answers = sorted([orjson.loads(line)["messages"][-1]["content"] async for line in export.lines()])
    assert answers == sorted(["answer 1", "answer 2", "answer 3", "answer 4", "answer 5", "answer 6", "Hello"])


async def test_same_results_on_both(tmp_path: Path, pg_schemas: Schemas) -> None:
    """Every report, computed on each store from the same rows, is identical."""
    results: list[Any] = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", pg_schemas.new_url()):
        opened = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
        await opened.open()
        try:
            await opened.apply(known_dataset())
            settings = AnalysisSettings.model_validate({"min_ratings": 3, "alpha": 0.2})
            results.append(
                [
                    await stats_report(opened, [("group_by", dim)])
                    for dim in ("model", "user", "prompt", "property:feature", "day")
                ]
                + [await insights_report(opened, settings, [("by", "model"), ("by", "property:feature")])]
            )
        finally:
            await opened.close()
    assert results[0] == results[1]
