"""``/console/login`` and ``/console/logout``: a feedgate key in, a session cookie out, and back.

The key is checked like the API checks it (every key compared, in constant time), and only the session's
hashed token is stored. An address with too many failed logins waits (``sessions.LoginThrottle``) and is
told how long; while it waits its tries are not even checked.
"""

from __future__ import annotations

import math

from aiohttp import web

from feedgate.api.results import commit
from feedgate.appkeys import CONSOLE_STATE, VIEWER
from feedgate.console.pages import render, see_other
from feedgate.console.sessions import SESSION_COOKIE, clear_cookie, expires_at, new_token, set_cookie, token_hash
from feedgate.errors import RateLimited
from feedgate.store.ops import CloseConsoleSession, OpenConsoleSession

HOME = "/console/"
ENDED = {
    "expired": "Your session reached its time limit. Log in again.",
    "idle": "Your session ended after a while unused. Log in again.",
    "key removed": "The key you logged in with is no longer accepted. Log in with a current key.",
    "ended": "Your session has ended. Log in again.",
}


def _next(value: str | None) -> str:
    """Where to go after logging in: a console page, never another site."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def login_form(request: web.Request) -> web.Response:
    state = request.app[CONSOLE_STATE]
    if state.open:
        return see_other(HOME)
    ended = ENDED.get(request.query.get("ended", ""))
    context = {"title": "Log in", "problem": None, "notice": ended, "next": _next(request.query.get("next"))}
    return render(request, "login.html", context)


async def login(request: web.Request) -> web.Response:
    state = request.app[CONSOLE_STATE]
    if state.open:
        return see_other(HOME)
    form = await request.post()
    wanted = form.get("next")
    target = _next(wanted if isinstance(wanted, str) else None)
    address = _client(request)
    wait = state.throttle.wait_left(address)
    if wait > 0:
        seconds = math.ceil(wait)
        raise RateLimited(
            f"Too many failed logins from your address: try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )
    given = form.get("key")
    key_id = state.match_key(given.strip()) if isinstance(given, str) and given.strip() else None
    if key_id is None:
        state.throttle.failed(address)
        context = {"title": "Log in", "problem": "That key is not accepted.", "notice": None, "next": target}
        return render(request, "login.html", context, status=401)
    state.throttle.succeeded(address)
    token = new_token()
    await commit(request, OpenConsoleSession(token_hash(token), key_id, expires_at(state)))
    response = see_other(target)
    set_cookie(response, request, state, SESSION_COOKIE, token)
    return response


async def logout(request: web.Request) -> web.Response:
    state = request.app[CONSOLE_STATE]
    viewer = request[VIEWER]
    if viewer.session_hash is not None:
        await commit(request, CloseConsoleSession(viewer.session_hash))
    response = see_other("/console/login" if not state.open else HOME)
    clear_cookie(response, request, state, SESSION_COOKIE)
    return response
