"""``GET /console/requests``: logged calls, newest first, a page at a time, filtered by the query string.

Rows come from the same reads as the API's request query (``store/reads/requests.py``: each request ID's
latest attempt, with its rating, scores and later properties), paged by a cursor: ``before`` names the last
row shown (its time and row number), so the next page starts right after it. With a text search (``q``),
each page looks at most at the ``SEARCH_CAP`` newest requests the other filters select from where it
starts (``store/reads/search.py``); when that bound ends a page early, the page says so and links on from
the last request it looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from feedgate.analysis.request_rows import annotated
from feedgate.appkeys import STORE
from feedgate.console.conversation import last_user_text, preview
from feedgate.console.filters import RATINGS, STATUS_CLASSES, ListFilter, parse_filters
from feedgate.console.pages import render, see_other
from feedgate.errors import FilterError
from feedgate.store.filters import compile_filter
from feedgate.store.protocol import Store
from feedgate.store.reads.feedback import signals_for
from feedgate.store.reads.requests import Position, page_annotations, requests_before
from feedgate.store.reads.search import SEARCH_CAP, search_before

PAGE_SIZE = 50
_CURSOR = re.compile(r"(?P<moment>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)_(?P<row>\d{1,19})")
TIME_RANGES = (("", "all time"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days"))


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    search_stopped_at: str | None = None  # the search reached its bound here: a cursor to search on from
    search_cap: int = SEARCH_CAP


def cursor_of(row: dict[str, Any]) -> str:
    return f"{row['datetime_utc']}_{row['id']}"


def parse_cursor(value: str | None) -> Position | None:
    if not value:
        return None
    match = _CURSOR.fullmatch(value)
    if match is None:
        raise FilterError(f"before: {value[:64]!r} is not a page position this list made; start from the first page")
    return match["moment"], int(match["row"])


async def list_page(store: Store, chosen: ListFilter, before: Position | None, size: int = PAGE_SIZE) -> Page:
    where = compile_filter(chosen.tree, store.dialect).where
    stopped_at = None
    if chosen.search is None:
        rows = await requests_before(store, where, before, size + 1)
    else:
        searched = await search_before(store, where, chosen.search, before, size + 1, cap=SEARCH_CAP)
        rows, stopped_at = searched.rows, searched.stopped_at
    more = len(rows) > size
    rows = rows[:size]
    ids = [row["request_id"] for row in rows]
    notes = await page_annotations(store, ids)
    signals = await signals_for(store, ids)
    shown = []
    for row in rows:
        item = annotated(row, notes[row["request_id"]])
        item["signals"] = signals.get(row["request_id"], {})
        item["prompt_preview"] = preview(last_user_text(item["request_body"]))
        item["answer_preview"] = preview(item["response_text"])
        shown.append(item)
    stopped = f"{stopped_at[0]}_{stopped_at[1]}" if stopped_at else None
    return Page(shown, cursor_of(rows[-1]) if more and rows else None, stopped, SEARCH_CAP)


def without_empty(request: web.Request) -> web.Response | None:
    """A redirect to the same page without the empty fields a filter form sends, so the address is the view."""
    pairs = list(request.query.items())
    kept = [(name, value) for name, value in pairs if value.strip()]
    if len(kept) == len(pairs):
        return None
    return see_other(request.path + (f"?{urlencode(kept)}" if kept else ""))


async def requests_page(request: web.Request) -> web.Response:
    cleaned = without_empty(request)
    if cleaned is not None:
        return cleaned
    problem = None
    chosen = ListFilter()
    page = Page([], None)
    try:
        chosen, rest = parse_filters(request.query.items(), extra=("before",), text_search=True)
        page = await list_page(request.config_dict[STORE], chosen, parse_cursor(rest.get("before")))
    except FilterError as error:
        problem = error.message
    context = {
        "title": "Requests",
        "problem": problem,
        "filters": chosen,
        "page": page,
        "time_ranges": TIME_RANGES,
        "ratings": list(RATINGS),
        "status_classes": STATUS_CLASSES,
        "first_page": "before" not in request.query,
    }
    return render(request, "requests.html", context, status=400 if problem else 200)
