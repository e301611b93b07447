"""Quality answers from feedback: ``GET /v1/feedback/stats``, ``/insights`` and ``/regressions``.

Parameters are the query string of ``selection.py`` plus each report's own (``group_by``; ``by``,
``min_ratings``, ``alpha``, ...). ``/regressions`` also POSTs new regressions to
``analysis.webhook_url`` when one is set (``notify=false`` skips that), so a cron job can poll it.
"""

from __future__ import annotations

from aiohttp import web

from feedgate.analysis.reports import (
    insights_report,
    notify_regressions,
    regressions_report,
    stats_report,
)
from feedgate.api.results import ok
from feedgate.appkeys import HTTP, SETTINGS, STORE, WRITER
from feedgate.errors import FilterError

routes = web.RouteTableDef()


@routes.get("/v1/feedback/stats")
async def get_stats(request: web.Request) -> web.Response:
    return ok(await stats_report(request.app[STORE], request.query.items(), request.app[SETTINGS].analysis))


@routes.get("/v1/feedback/insights")
async def get_insights(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS].analysis
    return ok(await insights_report(request.app[STORE], settings, request.query.items()))


@routes.get("/v1/feedback/regressions")
async def get_regressions(request: web.Request) -> web.Response:
    notify = request.query.get("notify", "true")
    if notify not in ("true", "false"):
        raise FilterError(f"notify must be true or false, not {notify[:16]!r}")
    store = request.app[STORE]
    settings = request.app[SETTINGS].analysis
    pairs = [(name, value) for name, value in request.query.items() if name != "notify"]
    report = await regressions_report(store, settings, pairs)
    if settings.webhook_url and notify == "true" and report["regressions"]:
        writer, session = request.app[WRITER], request.app[HTTP]
        report["webhook"] = await notify_regressions(store, writer.submit, report, settings.webhook_url, session)
    return ok(report)
