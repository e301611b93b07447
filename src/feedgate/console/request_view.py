"""``/console/requests/{id}``: one call, its feedback, and a reviewer's rating and scores.

The page reads what ``GET /v1/request/{id}`` and ``GET /v1/request/{id}/feedback`` answer, from the same
functions. The list's filters ride along in the query string, so prev/next walk the list the call was
opened from. A rating or score from here is stored like any feedback, through the same writer and
observers as the API, with ``user_id`` ``console`` and source ``console``, so the API shows it at once.
Both forms work without JavaScript: they POST, then redirect back to the page (303).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from aiohttp import web

from feedgate.analysis.request_rows import helicone_row
from feedgate.api.feedback import commit_feedback
from feedgate.api.feedback_models import FeedbackIn, ScoresIn, parse, score_types
from feedgate.appkeys import STORE
from feedgate.console.conversation import conversation
from feedgate.console.filters import ListFilter, parse_filters
from feedgate.console.pages import render, see_other
from feedgate.errors import FilterError, NotFound
from feedgate.request_ids import check_id
from feedgate.store.filters import compile_filter
from feedgate.store.ops import PutFeedback, PutScores
from feedgate.store.reads.feedback import feedback_state, request_annotations
from feedgate.store.reads.requests import adjacent_request
from feedgate.store.reads.search import adjacent_match

CONSOLE_USER = "console"
RATING_VALUES = {"up": True, "down": False}
MAX_RAW_CHARS = 200_000  # the raw view of a huge body is cut here; the API gives it whole


def _raw(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "\n… (cut; GET /v1/request/{id} has all)"


def _timeline(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Ratings (and their clearing), signals and scores, oldest first."""
    items = [{"what": "rating", **event} for event in state["history"]]
    items += [{"what": "signal", **event} for event in state["signals"]]
    return sorted(items, key=lambda item: item["datetime_utc"] or "")


async def request_page(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    store = request.config_dict[STORE]
    attempts = await store.request_attempts(request_id)
    if not attempts:
        raise NotFound(f"No request with ID {request_id} has been logged.")
    latest = attempts[-1]
    row = helicone_row(latest, attempts=len(attempts))
    notes = await request_annotations(store, request_id)
    row["properties"] = {**row["properties"], **notes["properties"]}
    state = await feedback_state(store, "request", request_id)
    problem = None
    chosen = ListFilter()
    newer = older = None
    try:
        chosen, _ = parse_filters(request.query.items(), text_search=True)
        where = compile_filter(chosen.tree, store.dialect).where
        position = (str(latest["datetime_utc"]), int(latest["id"]))
        if chosen.search is None:
            newer = await adjacent_request(store, where, position, newer=True)
            older = await adjacent_request(store, where, position, newer=False)
        else:  # as bounded as the list's search: the nearest match among SEARCH_CAP requests each way
            newer = await adjacent_match(store, where, chosen.search, position, newer=True)
            older = await adjacent_match(store, where, chosen.search, position, newer=False)
    except FilterError as error:
        problem = f"The list filter in this address cannot be used, so prev/next are off: {error.message}"
    context = {
        "title": f"Request {request_id}",
        "problem": problem,
        "row": row,
        "conversation": conversation(row),
        "raw_request": _raw(row["request_body"]),
        "raw_response": _raw(row["response_body"]),
        "feedback": state,
        "timeline": _timeline(state),
        "filters": chosen,
        "newer": newer,
        "older": older,
    }
    return render(request, "request.html", context)


def _back(request_id: str, list_query: str) -> web.Response:
    """Back to the request's page, with the list's filters it was opened with (re-encoded: only our own path)."""
    query = urlencode(parse_qsl(list_query[:4000]))
    location = f"/console/requests/{quote(request_id, safe='')}" + (f"?{query}" if query else "")
    return see_other(location)


async def post_feedback(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    form = await request.post()
    rating = form.get("rating")
    if not isinstance(rating, str) or rating not in RATING_VALUES:
        raise FilterError("Choose Rate up or Rate down.")
    comment = form.get("comment")
    comment = comment.strip() if isinstance(comment, str) and comment.strip() else None
    body = parse(FeedbackIn, {"rating": RATING_VALUES[rating], "comment": comment, "user_id": CONSOLE_USER})
    op = PutFeedback(
        "request", request_id, "explicit", body.rating, comment=body.comment, user_id=body.user_id, source=CONSOLE_USER
    )
    await commit_feedback(request, op)
    list_query = form.get("list")
    return _back(request_id, list_query if isinstance(list_query, str) else "")


def score_value(raw: str) -> bool | int | float:
    text = raw.strip()
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise FilterError(f"A score is a number, true or false, not {text[:32]!r}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FilterError(f"A score is a finite number, not {text[:32]!r}.")
    return value


async def post_score(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    form = await request.post()
    name, raw = form.get("name"), form.get("value")
    if not isinstance(name, str) or not name.strip() or not isinstance(raw, str) or not raw.strip():
        raise FilterError("A score needs a name and a value.")
    body = parse(ScoresIn, {"scores": {name.strip(): score_value(raw)}})
    await commit_feedback(request, PutScores(request_id, score_types(body.scores)))
    list_query = form.get("list")
    return _back(request_id, list_query if isinstance(list_query, str) else "")
