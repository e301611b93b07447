"""``GET /console/``: the headline numbers for a time range, with an optional model or property filter.

Every figure is the API's: ``GET /v1/feedback/stats`` (requests, share rated, positive rate with its 95%
Wilson interval, cost, p50/p95 latency, implicit signals) and ``GET /v1/feedback/regressions`` (the open
regressions, recent window against baseline, without notifying anyone), from ``analysis/reports.py``.
Query string: ``since`` (``24h``, ``7d`` (the default), ``30d`` or an ISO 8601 time), ``until``, ``model``
and ``property=KEY:VALUE``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from feedgate.analysis.reports import regressions_report, stats_report
from feedgate.appkeys import SETTINGS, STORE
from feedgate.config import AnalysisSettings
from feedgate.console.pages import render
from feedgate.errors import FilterError
from feedgate.store.filters import check_property_name
from feedgate.store.protocol import Store

RANGES = (("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"))
DEFAULT_SINCE = "7d"
PARAMETERS = ("since", "until", "model", "property")
CHART_MODELS = 6  # the busiest models get a line each; the table below the chart has them all


def overview_pairs(
    query: Any, extra: tuple[str, ...] = (), page: str = "the overview", since: str = DEFAULT_SINCE
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The selection pairs ``analysis/selection.py`` reads, and the values the form shows (``extra`` too)."""
    shown: dict[str, str] = {"since": since}
    allowed = (*PARAMETERS, *extra)
    for name in query:
        if name not in allowed:
            raise FilterError(f"unknown parameter {name[:64]!r}; {page} takes {', '.join(allowed)}")
        if len(query.getall(name)) > 1:
            raise FilterError(f"{name} may be given once")
    for name in allowed:
        value = query.get(name, "").strip()
        if value:
            shown[name] = value
    pairs: list[tuple[str, str]] = [(name, shown[name]) for name in ("since", "until", "model") if name in shown]
    if "property" in shown:
        key, colon, value = shown["property"].partition(":")
        if not colon:
            raise FilterError(f"property: expected KEY:VALUE, such as feature:search, got {shown['property'][:64]!r}")
        check_property_name(key)
        pairs.append((f"property.{key}", value))
    return pairs, shown


def regression_filter(dimension: str, key: str | None) -> str | None:
    """The request list's query string for the group a regression is about (None: no filter names it)."""
    if key is None:
        return None
    if dimension.startswith("property:"):
        return urlencode([("property", f"{dimension[len('property:') :]}:{key}")])
    if dimension in ("model", "user", "prompt"):
        return urlencode([(dimension, key)])
    return None


async def chart_data(
    store: Store, analysis: AnalysisSettings, pairs: list[tuple[str, str]], groups: list[dict[str, Any]]
) -> dict[str, Any]:
    """Requests per day, and each busy model's positive rate per day with its interval, as the chart draws them."""
    models = [group["key"] for group in groups if group["key"] is not None][:CHART_MODELS]
    common = [(name, value) for name, value in pairs if name != "model"]
    reports = await asyncio.gather(
        stats_report(store, [*pairs, ("group_by", "day")], analysis),
        *(stats_report(store, [*common, ("model", model), ("group_by", "day")], analysis) for model in models),
    )
    days = [group["key"] for group in reports[0]["groups"] if group["key"] is not None]
    series = []
    for model, report in zip(models, reports[1:], strict=True):
        by_day = {group["key"]: group for group in report["groups"]}
        picked = [by_day.get(day, {}) for day in days]
        series.append(
            {
                "model": model,
                "rate": [group.get("positive_rate") for group in picked],
                "low": [group.get("positive_rate_low") for group in picked],
                "high": [group.get("positive_rate_high") for group in picked],
            }
        )
    volume = {group["key"]: group["requests"] for group in reports[0]["groups"]}
    return {"days": days, "volume": [volume[day] for day in days], "series": series}


async def overview_page(request: web.Request) -> web.Response:
    store, settings = request.config_dict[STORE], request.config_dict[SETTINGS]
    problem = None
    stats: dict[str, Any] | None = None
    regressions: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    shown: dict[str, str] = {"since": DEFAULT_SINCE}
    try:
        pairs, shown = overview_pairs(request.query)
        lasting = [(name, value) for name, value in pairs if name not in ("since", "until")]

        async def figures() -> tuple[dict[str, Any], dict[str, Any]]:
            by_model = await stats_report(store, [*pairs, ("group_by", "model")], settings.analysis)
            return by_model, await chart_data(store, settings.analysis, pairs, by_model["groups"])

        # The regressions do not depend on the range: they run beside the figures, on their own connections.
        (stats, chart), regressions = await asyncio.gather(
            figures(), regressions_report(store, settings.analysis, lasting)
        )
        for found in regressions["regressions"]:
            found["list_query"] = regression_filter(found["dimension"], found["key"])
    except FilterError as error:
        problem = error.message
    list_filter = [(k, v) for k, v in shown.items() if k in ("since", "until", "model", "property")]
    context = {
        "title": "Overview",
        "problem": problem,
        "shown": shown,
        "ranges": RANGES,
        "stats": stats,
        "regressions": regressions,
        "chart": chart,
        "list_query": urlencode(list_filter),
    }
    return render(request, "overview.html", context, status=400 if problem else 200)
