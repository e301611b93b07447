"""``GET /console/quality``: the quality statistics broken down by one dimension, a row per group.

The figures are ``GET /v1/feedback/stats?group_by=...`` (``analysis/reports.stats_report``): requests,
ratings, the positive rate with its 95% Wilson interval (drawn as a whisker), implicit signals, mean scores,
cost and latency. Query string: ``by`` (``model`` (default), ``prompt``, ``user``, ``path``, ``day``, ``week``
or ``property:KEY``) and the overview's ``since``, ``until``, ``model``, ``property=KEY:VALUE``. Each row
opens the request list filtered to its group, where the list has a filter for it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from feedgate.analysis.reports import stats_report
from feedgate.appkeys import SETTINGS, STORE
from feedgate.console.overview import RANGES, overview_pairs
from feedgate.console.pages import render
from feedgate.errors import FilterError
from feedgate.store.reads.windows import recent_property_names

DIMENSIONS = ("model", "prompt", "user", "path", "day", "week")


def group_filter(dimension: str, key: str | None, shown: dict[str, str]) -> str | None:
    """The request list's query string for one group, within the page's own filters (None: no filter for it)."""
    if key is None:
        return None
    base = [(name, value) for name, value in shown.items() if name in ("since", "until", "model", "property")]
    if dimension.startswith("property:"):
        return urlencode([*base, ("property", f"{dimension[len('property:') :]}:{key}")])
    if dimension in ("model", "user", "prompt"):
        return urlencode([*[(k, v) for k, v in base if k != dimension], (dimension, key)])
    if dimension in ("day", "week"):
        start = date.fromisoformat(key)
        end = start + timedelta(days=1 if dimension == "day" else 7)
        kept = [(k, v) for k, v in base if k not in ("since", "until")]
        return urlencode([*kept, ("since", start.isoformat()), ("until", end.isoformat())])
    return None  # path: the request list has no path filter


async def quality_page(request: web.Request) -> web.Response:
    store, settings = request.config_dict[STORE], request.config_dict[SETTINGS]
    problem = None
    stats: dict[str, Any] | None = None
    shown: dict[str, str] = {"since": "7d", "by": "model"}
    try:
        pairs, shown = overview_pairs(request.query, extra=("by",), page="the quality page")
        shown.setdefault("by", "model")
        stats = await stats_report(store, [*pairs, ("group_by", shown["by"])], settings.analysis)
        for group in stats["groups"]:
            group["list_query"] = group_filter(stats["group_by"], group["key"], shown)
    except FilterError as error:
        problem = error.message
    context = {
        "title": "Quality",
        "problem": problem,
        "shown": shown,
        "ranges": RANGES,
        "dimensions": [*DIMENSIONS, *(f"property:{name}" for name in await recent_property_names(store))],
        "stats": stats,
    }
    return render(request, "quality.html", context, status=400 if problem else 200)
