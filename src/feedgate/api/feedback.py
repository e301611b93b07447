"""Helicone's feedback API, and feedgate's additions: read, clear, signals, sessions, batches, removing scores.

Every write goes through the single writer and is awaited, so a 2xx means it is committed. Feedback never
needs its request row to exist yet: it is stored by request ID and linked whenever that row lands. The
status says which it was: 201 for a request feedgate has seen (logged, queued or still streaming), 202
``pending`` for an ID it has not seen yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from pydantic import ValidationError

from feedgate.api.feedback_models import (
    BatchIn,
    BatchItem,
    FeedbackIn,
    LegacyFeedbackIn,
    PropertyIn,
    ScoreNamesIn,
    ScoresIn,
    SessionFeedbackIn,
    describe,
    parse,
    score_types,
)
from feedgate.api.feedback_notes import notes_for
from feedgate.api.results import commit, json_body, ok
from feedgate.appkeys import FEEDBACK_GRANT, FEEDBACK_OBSERVER, INFLIGHT, STORE, WRITER
from feedgate.errors import BadRequest
from feedgate.request_ids import check_id
from feedgate.store.ops import DeleteScores, PutFeedback, PutProperty, PutScores, WriteOp
from feedgate.store.reads.feedback import feedback_state, session_request_count

# IDs in paths match any one segment ([^/]+; aiohttp's default also stops at { and }), so a malformed ID
# reaches the handler and its 400, instead of falling through to the proxy's catch-all and the provider.
routes = web.RouteTableDef()

PENDING = {"status": "pending"}


async def commit_feedback(request: web.Request, ops: WriteOp | list[WriteOp]) -> None:
    """Commit, then tell the observers (metrics, traces): only what is stored is counted.

    The console's ratings come through here too, so they are counted like any other.
    """
    await commit(request, ops)
    observer = request.config_dict.get(FEEDBACK_OBSERVER)
    if observer is not None:
        await observer(request, notes_for(ops if isinstance(ops, list) else [ops]))


async def known_ids(request: web.Request, request_ids: Sequence[str]) -> set[str]:
    """The IDs feedgate has seen: in flight, waiting in the writer's queue, or stored."""
    inflight, queued = request.app[INFLIGHT], request.app[WRITER].queued_ids
    known = {rid for rid in request_ids if rid in inflight or rid in queued}
    unknown = [rid for rid in request_ids if rid not in known]
    if unknown:
        known |= await request.app[STORE].requests_exist(unknown)
    return known


async def _answer_for(request: web.Request, request_id: str) -> web.Response:
    if await known_ids(request, [request_id]):
        return ok(None, status=201)
    return ok(PENDING, status=202)


def _feedback_op(target_type: str, target_id: str, body: FeedbackIn, source: str = "api") -> PutFeedback:
    return PutFeedback(
        target_type=target_type,
        target_id=target_id,
        kind=body.kind or "explicit",
        rating=body.rating,
        signal=body.signal,
        comment=body.comment,
        user_id=body.user_id,
        metadata_json=body.metadata_json,
        source=source,
    )


@routes.post("/v1/request/{request_id:[^/]+}/feedback")
async def post_request_feedback(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    body = parse(FeedbackIn, await json_body(request))
    grant = request.get(FEEDBACK_GRANT)
    if grant is not None:  # made with a feedback token: the middleware checked its ID; the body names the purpose
        grant.require("signal" if body.kind == "implicit" else "feedback")
    await commit_feedback(request, _feedback_op("request", request_id, body))
    return await _answer_for(request, request_id)


@routes.delete("/v1/request/{request_id:[^/]+}/feedback")
async def delete_request_feedback(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    await commit_feedback(request, PutFeedback("request", request_id, "explicit", None, source="api"))
    return ok(None)


@routes.get("/v1/request/{request_id:[^/]+}/feedback")
async def get_request_feedback(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    state = await feedback_state(request.app[STORE], "request", request_id)
    state["request_known"] = bool(await known_ids(request, [request_id]))
    return ok(state)


@routes.post("/v1/request/{request_id:[^/]+}/score")
async def post_scores(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    body = parse(ScoresIn, await json_body(request))
    await commit_feedback(request, PutScores(request_id, score_types(body.scores)))
    return await _answer_for(request, request_id)


@routes.delete("/v1/request/{request_id:[^/]+}/score")
async def delete_scores(request: web.Request) -> web.Response:
    """Remove the named scores (body ``{"names": [...]}`` and/or ``?name=``), or all without names.

    Helicone has no such route. A name the request has no score for is not an error: afterwards it has
    none either way, so a retried call answers the same.
    """
    request_id = check_id(request.match_info["request_id"])
    unknown = sorted(set(request.query) - {"name"})
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0][:64]!r}; allowed: name")
    names = list(request.query.getall("name", []))
    if (await request.read()).strip():
        names += parse(ScoreNamesIn, await json_body(request)).names
    if names:
        names = parse(ScoreNamesIn, {"names": names}).names
    await commit(request, DeleteScores(request_id, tuple(dict.fromkeys(names)) or None))
    return ok(None)


@routes.put("/v1/request/{request_id:[^/]+}/property")
async def put_property(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    body = parse(PropertyIn, await json_body(request))
    # Helicone lower-cases property names from headers; do the same so filters find both alike.
    await commit_feedback(request, PutProperty(request_id, body.key.lower(), body.value))
    return await _answer_for(request, request_id)


@routes.post("/v1/session/{session_id:[^/]+}/feedback")
async def post_session_feedback(request: web.Request) -> web.Response:
    session_id = check_id(request.match_info["session_id"], "session ID")
    body = parse(SessionFeedbackIn, await json_body(request))
    op = PutFeedback("session", session_id, "explicit", body.rating, comment=body.comment, user_id=body.user_id)
    await commit_feedback(request, op)
    return ok(None, status=201)


@routes.get("/v1/session/{session_id:[^/]+}/feedback")
async def get_session_feedback(request: web.Request) -> web.Response:
    session_id = check_id(request.match_info["session_id"], "session ID")
    state = await feedback_state(request.app[STORE], "session", session_id)
    state["requests"] = await session_request_count(request.app[STORE], session_id)
    return ok(state)


@routes.post("/v1/feedback")
async def post_legacy_feedback(request: web.Request) -> web.Response:
    body = parse(LegacyFeedbackIn, await json_body(request))
    request_id = check_id(body.helicone_id)
    await commit_feedback(request, PutFeedback("request", request_id, "explicit", body.rating, source="legacy"))
    return web.json_response({"message": "Feedback added successfully.", "helicone_id": request_id})


@routes.post("/v1/feedback/batch")
async def post_batch(request: web.Request) -> web.Response:
    body = parse(BatchIn, await json_body(request))
    results: list[dict[str, str]] = []
    ops: list[WriteOp] = []
    valid: list[tuple[int, str]] = []
    for raw in body.items:
        request_id = raw.get("requestId") if isinstance(raw, dict) else None
        try:
            item = BatchItem.model_validate(raw)
            check_id(item.request_id)
            # Checked here too, as a single rating would be: an invalid item is that item's result alone.
            feedback = item.feedback()
        except ValidationError as exc:
            results.append(_invalid(request_id, describe(exc)))
            continue
        except BadRequest as exc:
            results.append(_invalid(request_id, str(exc)))
            continue
        if feedback is not None:
            ops.append(_feedback_op("request", item.request_id, feedback))
        if item.scores:
            ops.append(PutScores(item.request_id, score_types(item.scores)))
        valid.append((len(results), item.request_id))
        results.append({"requestId": item.request_id, "status": "stored"})
    if ops:
        await commit_feedback(request, ops)
        known = await known_ids(request, [rid for _, rid in valid])
        for index, request_id in valid:
            if request_id not in known:
                results[index]["status"] = "pending"
    return ok({"results": results})


def _invalid(request_id: object, error: str) -> dict[str, str]:
    return {"requestId": request_id if isinstance(request_id, str) else "", "status": "invalid", "error": error}
