"""Helicone's request query API: ``POST /v1/request/query`` and ``POST /v1/request/count/query``."""

from __future__ import annotations

from aiohttp import web

from feedgate.analysis.reports import count_requests, query_body, query_requests
from feedgate.api.results import json_body, ok
from feedgate.appkeys import STORE

routes = web.RouteTableDef()


@routes.post("/v1/request/query")
async def post_query(request: web.Request) -> web.Response:
    body = query_body(await json_body(request))
    return ok(await query_requests(request.app[STORE], body))


@routes.post("/v1/request/count/query")
async def post_count(request: web.Request) -> web.Response:
    body = query_body(await json_body(request))
    return ok(await count_requests(request.app[STORE], body))
