"""``GET /widget/feedback.js``, and with the console enabled the example page and its script.

All are open (no feedgate key): ``middleware.OPEN_PATHS`` lists them. They hold no data of the deployment.

How the script is cached: its URL carries no version, so ``immutable`` (or a year's max-age) would keep a
browser on an old copy long after an upgrade. Instead it is fresh for a day, and for a week after that a
browser may still use its copy while it asks again in the background (``stale-while-revalidate``), which
the strong ETag answers with a bodiless 304. A page view almost never waits for the script, and an upgrade
reaches every browser within a day and one page view.
"""

from __future__ import annotations

from aiohttp import web

from feedgate.appkeys import WIDGET
from feedgate.widget.assets import Asset

SCRIPT_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
# The example page is for trying the widget out: always revalidated, so it shows what this version serves.
EXAMPLE_CACHE = "no-cache"
# Nothing inline, nothing from elsewhere: the example shows the widget working under the strictest policy.
EXAMPLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, *params = part.split(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _not_modified(if_none_match: str | None, asset: Asset) -> bool:
    """Whether the client's copy is current. Either representation's tag will do: their content is the same."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    # If-None-Match compares weakly: a W/ prefix some proxies add to our tag still matches.
    given = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return asset.etag in given or asset.gzip_etag in given


def _answer(request: web.Request, asset: Asset, headers: dict[str, str]) -> web.Response:
    # gateway_middleware sets ``Vary: Origin`` (in place of this Vary) on answers to a CORS origin it allows,
    # which would hide that the answer also depends on Accept-Encoding; so a request with an Origin (a script
    # loaded with the crossorigin attribute) always gets the plain body, which suits any client.
    gzipped = "Origin" not in request.headers and _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    headers = {
        **headers,
        "ETag": asset.gzip_etag if gzipped else asset.etag,
        "Vary": "Accept-Encoding, Origin",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request.headers.get("If-None-Match"), asset):
        return web.Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = asset.gzipped if gzipped else asset.body
    return web.Response(body=body, content_type=asset.content_type, charset="utf-8", headers=headers)


async def feedback_script(request: web.Request) -> web.Response:
    # Cross-Origin-Resource-Policy: pages on other origins load it, also those that require CORP (COEP).
    headers = {"Cache-Control": SCRIPT_CACHE, "Cross-Origin-Resource-Policy": "cross-origin"}
    return _answer(request, request.app[WIDGET].script, headers)


async def example_page(request: web.Request) -> web.Response:
    # no-referrer: the page's query string holds a feedback token, which no Referer may carry elsewhere.
    headers = {"Cache-Control": EXAMPLE_CACHE, "Content-Security-Policy": EXAMPLE_CSP, "Referrer-Policy": "no-referrer"}
    return _answer(request, request.app[WIDGET].example_page, headers)


async def example_script(request: web.Request) -> web.Response:
    return _answer(request, request.app[WIDGET].example_script, {"Cache-Control": EXAMPLE_CACHE})
