"""``/console/sessions`` and ``/console/sessions/{id}``: conversations spread over several calls.

A session is every request logged with one ``Helicone-Session-Id``. The list shows each session's size, time
span and session rating (``POST /v1/session/{id}/feedback``), newest activity first, a page at a time; it
takes the request list's filters (a session is listed when at least one of its requests matches, and its
figures count those requests). One session's page shows its turns in order, each with its feedback.
"""

from __future__ import annotations

import re

from aiohttp import web

from feedgate.appkeys import STORE
from feedgate.console.conversation import last_user_text
from feedgate.console.filters import RATINGS, STATUS_CLASSES, ListFilter, parse_filters
from feedgate.console.listing import TIME_RANGES, list_page, without_empty
from feedgate.console.pages import render
from feedgate.errors import FilterError, NotFound
from feedgate.request_ids import check_id
from feedgate.store.filters import check_text, compile_filter
from feedgate.store.reads.feedback import feedback_state
from feedgate.store.reads.sessions import SessionPosition, sessions_before

PAGE_SIZE = 50
MAX_TURNS = 500  # a longer session shows its latest turns; the request list has them all
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def session_cursor(row: dict[str, str]) -> str:
    return f"{row['last_utc']}_{row['session_id']}"


def parse_session_cursor(value: str | None) -> SessionPosition | None:
    if not value:
        return None
    moment, sep, session_id = value[:27], value[27:28], value[28:]
    if not _MOMENT.fullmatch(moment) or sep != "_" or not session_id:
        raise FilterError(f"before: {value[:64]!r} is not a page position this list made; start from the first page")
    return moment, check_text(session_id, "before")


async def sessions_page(request: web.Request) -> web.Response:
    cleaned = without_empty(request)
    if cleaned is not None:
        return cleaned
    store = request.config_dict[STORE]
    problem = None
    chosen = ListFilter()
    rows: list[dict[str, object]] = []
    next_cursor = None
    try:
        chosen, rest = parse_filters(request.query.items(), extra=("before",))
        where = compile_filter(chosen.tree, store.dialect).where
        found = await sessions_before(store, where, parse_session_cursor(rest.get("before")), PAGE_SIZE + 1)
        rows = found[:PAGE_SIZE]
        if len(found) > PAGE_SIZE:
            next_cursor = session_cursor(found[PAGE_SIZE - 1])
    except FilterError as error:
        problem = error.message
    context = {
        "title": "Sessions",
        "problem": problem,
        "filters": chosen,
        "sessions": rows,
        "next_cursor": next_cursor,
        "first_page": "before" not in request.query,
        "time_ranges": TIME_RANGES,
        "ratings": list(RATINGS),
        "status_classes": STATUS_CLASSES,
    }
    return render(request, "sessions.html", context, status=400 if problem else 200)


async def session_page(request: web.Request) -> web.Response:
    session_id = check_id(request.match_info["session_id"], "session ID")
    store = request.config_dict[STORE]
    chosen, _ = parse_filters([("session", session_id)])
    page = await list_page(store, chosen, None, size=MAX_TURNS)
    if not page.rows:
        raise NotFound(f"No logged request carries session ID {session_id}.")
    turns = list(reversed(page.rows))
    for turn in turns:
        turn["prompt_text"] = last_user_text(turn["request_body"]) or ""
    context = {
        "title": f"Session {session_id}",
        "session_id": session_id,
        "turns": turns,
        "cut": page.next_cursor is not None,
        "feedback": await feedback_state(store, "session", session_id),
        "filters": chosen,
    }
    return render(request, "session.html", context)
