"""The console as an aiohttp sub-application, mounted at ``/console`` by ``app/`` when ``console.enabled``.

Its own middleware (``guard.py``) does its auth (a session, never the feedgate key as a header), its CSRF
checks, its security headers and its error pages; the gateway's middleware leaves requests routed here to
it. Nothing here runs for a proxied call.
"""

from __future__ import annotations

from aiohttp import web

from feedgate.appkeys import CONSOLE_STATE
from feedgate.config import Settings
from feedgate.console.assets import Assets
from feedgate.console.datasets_page import create_dataset, dataset_page, datasets_page, download
from feedgate.console.guard import console_middleware, stamp_headers
from feedgate.console.insights_page import insights_page
from feedgate.console.listing import requests_page
from feedgate.console.login import login, login_form, logout
from feedgate.console.overview import overview_page
from feedgate.console.pages import setup_templates
from feedgate.console.quality import quality_page
from feedgate.console.request_view import post_feedback, post_score, request_page
from feedgate.console.session_pages import session_page, sessions_page
from feedgate.console.sessions import ConsoleState
from feedgate.errors import NotFound

PREFIX = "/console"
_ID = "{request_id:[^/]+}"


async def _no_such_page(request: web.Request) -> web.Response:
    raise NotFound("There is no such page in the console.")


def console_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[console_middleware])
    app[CONSOLE_STATE] = ConsoleState.from_settings(settings)
    app.on_response_prepare.append(stamp_headers)
    assets = Assets()
    setup_templates(app, assets.url)
    router = app.router
    router.add_get("/", overview_page)
    router.add_get("/requests", requests_page)
    router.add_get(f"/requests/{_ID}", request_page)
    router.add_post(f"/requests/{_ID}/feedback", post_feedback)
    router.add_post(f"/requests/{_ID}/score", post_score)
    router.add_get("/quality", quality_page)
    router.add_get("/insights", insights_page)
    router.add_get("/datasets", datasets_page)
    router.add_post("/datasets", create_dataset)
    router.add_get("/datasets/{dataset_id:[^/]+}", dataset_page)
    router.add_get("/datasets/{dataset_id:[^/]+}/export", download)
    router.add_get("/sessions", sessions_page)
    router.add_get("/sessions/{session_id:[^/]+}", session_page)
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/static/{name:.+}", assets.handler)
    router.add_route("*", "/{tail:.*}", _no_such_page)
    return app


def mount_console(app: web.Application, settings: Settings) -> None:
    """Add the console under ``/console/`` (before the proxy's catch-all routes, which it must precede)."""
    if settings.console.enabled:
        app.add_subapp(PREFIX, console_app(settings))
