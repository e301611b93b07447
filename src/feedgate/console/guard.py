"""The console's middleware: who is looking, whether a POST may act, the security headers, errors as pages.

Every console answer carries the headers below (static files too, with long caching instead of
``no-store``). The feedgate key is never read from an ``Authorization`` header here: the console knows only
its own session cookie, which the browser sends only to same-site requests (``SameSite=Strict``), and every
POST must also carry the CSRF token of the page it came from and not come from another origin. So a key
pasted into a script cannot drive the console, and another site cannot make a logged-in browser do so.

Errors are pages with their status (400, 403, 404, 429, 503...), never JSON, and never a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from feedgate.appkeys import CONSOLE_STATE, STORE, VIEWER, WRITER
from feedgate.console.pages import error_page, see_other
from feedgate.console.sessions import (
    BROWSER_COOKIE,
    SESSION_COOKIE,
    ConsoleState,
    Viewer,
    clear_cookie,
    needs_touch,
    new_token,
    session_csrf,
    session_state,
    set_cookie,
    token_hash,
)
from feedgate.errors import FeedgateError, Forbidden
from feedgate.store.console_sessions import console_session
from feedgate.store.ops import TouchConsoleSession

log = logging.getLogger("feedgate.console")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_PREFIX = "/console/static/"
LOGIN_PATH = "/console/login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class LoginNeeded(Exception):
    """No valid session: the browser goes to the login page (and forgets a session cookie that ended)."""

    def __init__(self, why: str | None = None) -> None:
        super().__init__(why or "log in")
        self.why = why


def _plausible(token: str | None) -> bool:
    return token is not None and 20 <= len(token) <= 128 and set(token) <= _TOKEN_CHARS


async def _viewer(request: web.Request, state: ConsoleState, public: bool) -> Viewer:
    if state.open or public:
        token = request.cookies.get(BROWSER_COOKIE)
        fresh = None
        if not _plausible(token):
            token = fresh = new_token()
        assert token is not None
        return Viewer(csrf=state.browser_csrf(token), new_browser_token=fresh)
    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        raise LoginNeeded()
    if not _plausible(token):
        raise LoginNeeded("ended")
    hashed = token_hash(token)
    row = await console_session(request.config_dict[STORE], hashed)
    why = "ended" if row is None else session_state(row, state)
    if why is not None:
        raise LoginNeeded(why)
    assert row is not None
    if needs_touch(row):
        # Only the idle expiry depends on it: a store too slow to take it now must not cost the page.
        with contextlib.suppress(Exception):
            await request.config_dict[WRITER].submit(TouchConsoleSession(hashed), timeout=2.0)
    return Viewer(csrf=session_csrf(token), session_hash=hashed)


def origin_problem(request: web.Request) -> str | None:
    """Why a POST is not from the console's own pages, judged by what the browser says about where it came from.

    ``Origin: null`` is allowed: with ``Referrer-Policy: no-referrer`` browsers send it for the console's own
    forms. The CSRF token, required as well, is what such a request cannot have.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"it came from another site ({fetch_site})"
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null":
        # Host and port only: behind a proxy that ends TLS the console sees http while the browser says https.
        if urlsplit(origin).netloc.lower() != request.host.lower():
            return "it came from another origin"
    return None


async def _check_post(request: web.Request, viewer: Viewer) -> None:
    problem = origin_problem(request)
    if problem is None:
        form = await request.post()
        given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), viewer.csrf.encode()):
            problem = "it did not carry this page's security token (the page may be older than your login)"
    if problem is not None:
        raise Forbidden(f"This form was refused: {problem}. Reload the page and try again.")


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare of the console app: every answer, a page, a redirect, an error or a download."""
    static = request.path.startswith(STATIC_PREFIX)
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if not static or response.status >= 400:
        headers["Cache-Control"] = "no-store"


def _login_redirect(request: web.Request, state: ConsoleState, why: str | None) -> web.Response:
    query: dict[str, str] = {}
    if request.method == "GET" and request.path != "/console/":
        query["next"] = request.path_qs
    if why is not None:
        query["ended"] = why
    response = see_other(LOGIN_PATH + (f"?{urlencode(query)}" if query else ""))
    if request.cookies.get(SESSION_COOKIE) is not None:
        clear_cookie(response, request, state, SESSION_COOKIE)
    return response


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[CONSOLE_STATE]
    static = request.path.startswith(STATIC_PREFIX)
    response: web.StreamResponse
    try:
        if request.path == "/console":
            response = see_other("/console/")
        elif static:
            response = await handler(request)
        else:
            viewer = await _viewer(request, state, public=request.path == LOGIN_PATH)
            request[VIEWER] = viewer
            if request.method == "POST":
                await _check_post(request, viewer)
            response = await handler(request)
            if viewer.new_browser_token is not None and not response.prepared:
                set_cookie(response, request, state, BROWSER_COOKIE, viewer.new_browser_token)
    except LoginNeeded as needed:
        response = _login_redirect(request, state, needed.why)
    except FeedgateError as error:
        response = error_page(request, error.status, error.message, error.headers)
    except web.HTTPRedirection as redirect:  # raised by aiohttp itself (a missing trailing slash)
        response = web.Response(status=redirect.status, headers=redirect.headers)
    except web.HTTPException as exc:
        message = "There is no such page." if exc.status == 404 else exc.reason
        response = error_page(request, exc.status, message)
    except ConnectionError:
        response = web.Response(status=499)
    except Exception:
        log.exception("console error on %s %s", request.method, request.path)
        response = error_page(request, 500, "Something went wrong in the console; the gateway log says what.")
    return response
