"""``GET /console/insights``: where poor ratings concentrate, and what got worse lately.

Poor-rating patterns are ``GET /v1/feedback/insights`` (groups whose thumbs-down rate is significantly above
everyone else's, with example comments); regressions are ``GET /v1/feedback/regressions`` without notifying
anyone (the recent window against its baseline, with the points on each side and the p-value), each drawn
as a before/after pair of bars. Both from ``analysis/reports.py``. Query string: the overview's ``since``
(default 30 days here: patterns need ratings), ``until``, ``model`` and ``property=KEY:VALUE``; regressions
keep their own windows (``analysis.recent_days``, ``analysis.baseline_days``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from feedgate.analysis.reports import insights_report, regressions_report
from feedgate.appkeys import SETTINGS, STORE
from feedgate.console.overview import RANGES, overview_pairs, regression_filter
from feedgate.console.pages import render
from feedgate.errors import FilterError

DEFAULT_SINCE = "30d"


def insight_filter(dimension: str, key: str, shown: dict[str, str]) -> str | None:
    """The request list's query for an insight's thumbs-down requests (None: the list cannot select the group)."""
    group = regression_filter(dimension, key)
    if group is None:
        return None
    base = [(name, value) for name, value in shown.items() if name in ("since", "until", "model", "property")]
    return urlencode([*base, ("rating", "down")]) + "&" + group if base else f"rating=down&{group}"


async def insights_page(request: web.Request) -> web.Response:
    store, settings = request.config_dict[STORE], request.config_dict[SETTINGS]
    problem = None
    insights: dict[str, Any] | None = None
    regressions: dict[str, Any] | None = None
    shown: dict[str, str] = {"since": DEFAULT_SINCE}
    try:
        pairs, shown = overview_pairs(request.query, page="the insights page", since=DEFAULT_SINCE)
        insights = await insights_report(store, settings.analysis, pairs)
        for found in insights["insights"]:
            found["list_query"] = insight_filter(found["dimension"], found["key"], shown)
        lasting = [(name, value) for name, value in pairs if name not in ("since", "until")]
        regressions = await regressions_report(store, settings.analysis, lasting)
        for found in regressions["regressions"]:
            found["list_query"] = regression_filter(found["dimension"], found["key"])
    except FilterError as error:
        problem = error.message
    context = {
        "title": "Insights",
        "problem": problem,
        "shown": shown,
        "ranges": RANGES,
        "insights": insights,
        "regressions": regressions,
    }
    return render(request, "insights.html", context, status=400 if problem else 200)
