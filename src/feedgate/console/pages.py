"""Rendering console pages: the Jinja2 environment (autoescaping everything) and what every page is given.

Every value a page shows goes through Jinja2's autoescaping; nothing is marked safe but the JSON a chart
reads, which ``tojson`` escapes for a ``<script type="application/json">`` element.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from feedgate.appkeys import CONSOLE_STATE, VIEWER
from feedgate.request_ids import ID_PATTERN

TEMPLATES_PACKAGE = "feedgate.console"


def setup_templates(app: web.Application, static_url: Callable[[str], str]) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader(TEMPLATES_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.globals["openable"] = openable
    env.filters.update(FILTERS)


def _base(request: web.Request) -> dict[str, Any]:
    state = request.app.get(CONSOLE_STATE)
    viewer = request.get(VIEWER)
    return {
        "console_open": state is not None and state.open,
        "logged_in": viewer is not None and viewer.session_hash is not None,
        "csrf": viewer.csrf if viewer is not None else None,
        "path": request.path,
        "problem": None,
    }


def render(request: web.Request, template: str, context: Mapping[str, Any], status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {**_base(request), **context}, status=status)


def see_other(location: str) -> web.Response:
    """303 to ``location``: after a POST, or to the login page. Always a path of the console itself."""
    return web.Response(status=303, headers={"Location": location})


def error_page(
    request: web.Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    titles = {400: "Bad request", 403: "Refused", 404: "Not found", 405: "Method not allowed", 429: "Too many tries"}
    title = titles.get(status, "Unavailable" if status == 503 else "Error")
    try:
        response = render(request, "error.html", {"title": title, "message": message, "status": status}, status)
    except Exception:  # the page of last resort must not fail in turn
        response = web.Response(status=status, text=f"{title}: {message}", content_type="text/plain")
    response.headers.update(headers or {})
    return response


def openable(value: str) -> bool:
    """Whether an ID can be a console path (``/console/sessions/{id}``): logged IDs may hold anything."""
    return re.fullmatch(ID_PATTERN, value) is not None


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def usd(value: float | None) -> str:
    if value is None:
        return "–"
    if value and abs(value) < 0.01:
        return f"${value:.6f}"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def millis(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def moment(value: str | None) -> str:
    """A stored UTC time shown to the second: ``2025-07-01 12:00:03``."""
    return "–" if not value else value[:19].replace("T", " ")


FILTERS: dict[str, Callable[..., str]] = {
    "number": number,
    "percent": percent,
    "usd": usd,
    "millis": millis,
    "moment": moment,
}
