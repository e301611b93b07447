"""Stats, insights and regressions through a real gateway, on a dataset whose numbers are known by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from analysis_data import ago, known_dataset, rate, row, signal
from conftest import Gateway, GatewayFactory
from fakes import serve_app
from feedgate.analysis.rollup_plan import ERROR_BOUND
from feedgate.analysis.stats import percentile
from feedgate.appkeys import WRITER
from feedgate.store.ops import WriteOp

# 95% Wilson bounds worked out by hand (40-digit decimals, z = 1.959963984540054):
# center = (p + z^2/2n) / (1 + z^2/n), half = z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
WILSON_6_OF_8 = (0.4092754303101689, 0.928520787247891)
WILSON_1_OF_4 = (0.04558726080970057, 0.6993581574175981)
WILSON_7_OF_12 = (0.31951131254954973, 0.8067396863412435)


async def load(gateway: Gateway, ops: list[WriteOp]) -> None:
    await gateway.app[WRITER].submit(ops)


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with http.get(url, params=params) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("rollups", [True, False])
async def test_stats_by_model_exact(make_gateway: GatewayFactory, http: aiohttp.ClientSession, rollups: bool) -> None:
    """The same figures from the rollups as from the rows; latency percentiles exact from rows, and within
    the histograms' bound from rollups."""
    gateway = await make_gateway(analysis={"rollups": rollups})
    await load(gateway, known_dataset())
    status, body = await get(http, f"{gateway.v1}/feedback/stats", group_by="model")
    assert status == 200 and body["error"] is None
    data = body["data"]
    assert data["source"] == ("rollup" if rollups else "rows")
    bound = ERROR_BOUND if rollups else 1e-12
    groups = {g["key"]: g for g in data["groups"]}
    assert [g["key"] for g in data["groups"]] == ["gpt-4o", "claude-sonnet-4-5"]  # by requests, descending
    a, b, overall = groups["gpt-4o"], groups["claude-sonnet-4-5"], data["overall"]
    assert (a["requests"], a["rated"], a["positive"], a["negative"]) == (10, 8, 6, 2)
    assert a["positive_rate"] == 0.75
    assert (a["positive_rate_low"], a["positive_rate_high"]) == pytest.approx(WILSON_6_OF_8, rel=1e-12)
    assert a["signals"] == {"copied": {"positive": 2, "negative": 0}, "regenerated": {"positive": 0, "negative": 1}}
    assert a["scores"] == {"helpfulness": 0.75}
    assert a["cost_usd"] == 1.25  # the superseded attempts' costs are not counted
    durations = [100.0 * i for i in range(1, 11)]
    assert a["duration_ms_p50"] == pytest.approx(550.0, rel=bound) and percentile(durations, 50) == 550.0
    assert (
        a["duration_ms_p95"] == pytest.approx(percentile(durations, 95), rel=bound) == pytest.approx(955.0, rel=bound)
    )
    assert (b["requests"], b["rated"], b["positive"], b["negative"]) == (5, 4, 1, 3)
    assert (b["positive_rate_low"], b["positive_rate_high"]) == pytest.approx(WILSON_1_OF_4, rel=1e-12)
    assert b["signals"] == {} and b["scores"] == {} and b["cost_usd"] == 1.0
    assert b["duration_ms_p50"] == pytest.approx(70.0, rel=bound) and b["duration_ms_p95"] == pytest.approx(
        88.0, rel=bound
    )
    assert (overall["requests"], overall["rated"], overall["positive"], overall["negative"]) == (15, 12, 7, 5)
    assert (overall["positive_rate_low"], overall["positive_rate_high"]) == pytest.approx(WILSON_7_OF_12, rel=1e-12)
    assert overall["cost_usd"] == 2.25 and overall["key"] is None
    every = durations + [50.0, 60.0, 70.0, 80.0, 90.0]
    assert overall["duration_ms_p50"] == pytest.approx(percentile(every, 50), rel=bound)
    assert overall["duration_ms_p95"] == pytest.approx(percentile(every, 95), rel=bound)


async def test_stats_other_dimensions_and_filters(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await load(gateway, known_dataset())
    url = f"{gateway.v1}/feedback/stats"
    _, body = await get(http, url, group_by="property:feature")
    groups = {g["key"]: g for g in body["data"]["groups"]}
    assert {k: (g["requests"], g["positive"], g["negative"]) for k, g in groups.items()} == {
        "chat": (7, 6, 1),
        "code": (5, 1, 2),
        None: (3, 0, 2),
    }
    # Percentiles per property value agree with the reference.
    assert groups["chat"]["duration_ms_p50"] == percentile([100, 200, 300, 400, 500, 50, 60], 50)
    _, body = await get(http, url, group_by="user", model="gpt-4o", **{"property.feature": "chat"})
    assert [(g["key"], g["requests"], g["rated"]) for g in body["data"]["groups"]] == [("u1", 5, 5)]
    assert body["data"]["filters"] == {"model": "gpt-4o", "properties": {"feature": "chat"}}
    _, body = await get(http, url, group_by="prompt")
    keys = [g["key"] for g in body["data"]["groups"]]
    assert keys[0] == "support" and len(keys) == 2  # Helicone-Prompt-Id, else the system prompt's fingerprint
    _, body = await get(http, url, group_by="day")
    assert sum(g["requests"] for g in body["data"]["groups"]) == 15
    assert [g["key"] for g in body["data"]["groups"]] == sorted(g["key"] for g in body["data"]["groups"])
    _, body = await get(http, url, group_by="week")
    assert sum(g["requests"] for g in body["data"]["groups"]) == 15
    _, body = await get(http, url, group_by="model", since="5.5h")
    assert body["data"]["overall"]["requests"] == 1  # only b5 is that recent
    _, body = await get(http, url, group_by="model", rating="negative")
    assert body["data"]["overall"]["negative"] == 5 and body["data"]["overall"]["positive"] == 0
    _, body = await get(http, url, group_by="model", **{"min_score.helpfulness": "0.9"})
    assert body["data"]["overall"]["requests"] == 1


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"group_by": "colour"}, "unknown dimension"),
        ({"group_by": 'property:x" OR 1=1'}, "invalid property name"),
        ({"group_by": "property:nothing"}, "unknown property 'nothing'"),
        ({"property.nothing": "x"}, "unknown property 'nothing'"),
        ({"since": "yesterday-ish"}, "ISO 8601"),
        ({"until": "2024-13-45"}, "ISO 8601"),
        ({"rating": "meh"}, "rating must be one of"),
        ({"min_score.helpfulness": "lots"}, "expected a number"),
        ({"groupby": "model"}, "unknown parameter 'groupby'"),
    ],
)
async def test_stats_bad_parameters_are_400(
    gateway: Gateway, http: aiohttp.ClientSession, params: dict[str, str], fragment: str
) -> None:
    await load(gateway, known_dataset())
    status, body = await get(http, f"{gateway.v1}/feedback/stats", **params)
    assert status == 400 and body["data"] is None and fragment in body["error"]


def regression_data() -> list[WriteOp]:
    """'drop' goes from 32/40 up (baseline) to 16/40 (recent); 'stable' stays at 30/40; 'drop' is also
    regenerated far more often recently."""
    ops: list[WriteOp] = []
    for model, base_up, recent_up in (("drop", 32, 16), ("stable", 30, 30)):
        for window, ups, hours in (("b", base_up, 24 * 8), ("r", recent_up, 24)):
            for i in range(40):
                rid = f"{model}-{window}{i}"
                ops.append(row(rid, when=ago(hours=hours - i * 0.1), model=model, question=f"{model} {i}"))
                ops.append(rate(rid, i < ups, comment="worse" if window == "r" and i >= ups else None))
                if model == "drop" and window == "r" and i < 12:
                    ops.append(signal(rid, "regenerated", False))
    return ops


async def test_regressions_find_the_planted_drop_only(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await load(gateway, regression_data())
    status, body = await get(http, f"{gateway.v1}/feedback/regressions", by="model")
    assert status == 200
    found = {(r["key"], r["metric"]): r for r in body["data"]["regressions"]}
    assert set(found) == {("drop", "positive_rate"), ("drop", "signal:regenerated")}  # 'stable' is not flagged
    drop = found[("drop", "positive_rate")]
    assert (drop["baseline_rate"], drop["recent_rate"]) == (0.8, 0.4)
    assert (drop["baseline_n"], drop["recent_n"]) == (40, 40)
    # Pooled two-proportion z: p = 48/80 = 0.6, se = sqrt(0.6 * 0.4 * (1/40 + 1/40)) = 0.1095445..., z = -0.4/se.
    assert drop["z"] == pytest.approx(-3.6514837167011076, rel=1e-12)
    assert drop["p_value"] < 0.001 and "fell from 80.0%" in drop["summary"]
    regen = found[("drop", "signal:regenerated")]
    assert (regen["baseline_rate"], regen["recent_rate"]) == (0.0, 0.3)
    # A higher bar on the number of ratings silences it.
    _, body = await get(http, f"{gateway.v1}/feedback/regressions", by="model", min_ratings="41")
    assert body["data"]["regressions"] == []


async def test_regression_webhook_once_per_new_regression(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    async with serve_app(receiver) as url:
        gateway = await make_gateway(analysis={"webhook_url": f"{url}/hook"})
        await load(gateway, regression_data())
        first = (await get(http, f"{gateway.v1}/feedback/regressions", by="model"))[1]["data"]
        assert first["webhook"] == {"sent": 2, "errors": []}
        assert all(r["notified"] for r in first["regressions"])
        second = (await get(http, f"{gateway.v1}/feedback/regressions", by="model"))[1]["data"]
        assert "webhook" in second and second["webhook"]["sent"] == 0
        assert not any(r["notified"] for r in second["regressions"])
        await get(http, f"{gateway.v1}/feedback/regressions", by="model", notify="false")
    assert len(received) == 2
    assert {(m["regression"]["key"], m["regression"]["metric"]) for m in received} == {
        ("drop", "positive_rate"),
        ("drop", "signal:regenerated"),
    }
    assert all(m["event"] == "feedgate.regression" for m in received)


async def test_insights_flag_the_poor_group_with_examples(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await load(gateway, regression_data())
    # drop: 32 of 80 negative against 20 of 80 for the rest: pooled z = 0.15 / 0.0741 = 2.03, p = 0.021.
    status, body = await get(http, f"{gateway.v1}/feedback/insights", by="model", min_ratings="20", alpha="0.05")
    assert status == 200
    data = body["data"]
    assert data["overall"] == {"rated": 160, "negative": 52, "negative_rate": 0.325}
    (insight,) = data["insights"]
    assert (insight["dimension"], insight["key"], insight["rated"], insight["negative"]) == ("model", "drop", 80, 32)
    assert insight["negative_rate"] == 0.4 and insight["gap"] == pytest.approx(0.4 - 20 / 80)
    assert insight["p_value"] == pytest.approx(0.02142, abs=1e-4)
    _, body = await get(http, f"{gateway.v1}/feedback/insights", by="model", min_ratings="20")
    assert body["data"]["insights"] == []  # not significant at the default alpha of 0.01
    # Examples: thumbs-down with comments first, newest first.
    assert [e["comment"] for e in insight["examples"]] == ["worse", "worse", "worse"]
    assert insight["examples"][0]["request_id"] == "drop-r39"


async def test_cli_matches_the_api_locally_and_through_url(
    gateway: Gateway, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    import orjson

    from feedgate.cli import main

    await load(gateway, [*known_dataset(), *regression_data()])
    db = ["--database-url", gateway.settings.database.url]
    api = (await get(http, f"{gateway.v1}/feedback/stats", group_by="model", model="gpt-4o"))[1]["data"]
    for source in (db, ["--url", gateway.url]):
        code = await asyncio.to_thread(main, ["stats", "--by", "model", "--model", "gpt-4o", "--json", *source])
        assert code == 0 and orjson.loads(capsys.readouterr().out) == api
    code = await asyncio.to_thread(main, ["stats", "--by", "model", *db])
    table = capsys.readouterr().out
    assert code == 0 and "gpt-4o" in table and "75.0%" in table and "(all)" in table
    code = await asyncio.to_thread(main, ["regressions", "--by", "model", "--no-notify", *db])
    out = capsys.readouterr().out
    assert code == 1 and "drop" in out and "stable" not in out
    code = await asyncio.to_thread(main, ["regressions", "--by", "model", "--model", "stable", *db])
    assert code == 0 and "no significant regression" in capsys.readouterr().out
    code = await asyncio.to_thread(main, ["insights", "--by", "model", "--alpha", "0.05", "--url", gateway.url])
    assert code == 0 and "model = drop" in capsys.readouterr().out
    code = await asyncio.to_thread(main, ["stats", "--by", "colour", *db])
    assert code == 2 and "unknown dimension" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["requests", "show", "a3", *db])
    out = capsys.readouterr().out
    assert code == 0 and "question 3" in out and "answer 3" in out and "up" in out
