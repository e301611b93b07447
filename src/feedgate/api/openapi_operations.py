"""Every operation of feedgate's own routes, for the OpenAPI document (``openapi.py``), with an example each:
the feedback side here, the reports side in ``openapi_report_operations.py``.

Request bodies are the models the handlers validate with; answers and query strings are described by
``answers.py`` and ``query_params.py``. ``tests/test_openapi.py`` checks that every route of the app (but
the proxy's catch-alls) is here, that every example validates against its schema, and that every
example, sent to a gateway, gets the answer documented.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from feedgate.api import answers as a
from feedgate.api import query_params as q
from feedgate.api.feedback_models import (
    BatchItem,
    FeedbackIn,
    LegacyFeedbackIn,
    PropertyIn,
    ScoreNamesIn,
    ScoresIn,
    SessionFeedbackIn,
)
from feedgate.api.manual_log import LogBody
from feedgate.api.openapi_examples import (
    LOG_BODY,
    REQUEST_ID,
    ROW,
    SESSION_ID,
    STATE,
    TOKENS,
)
from feedgate.api.openapi_operation import Operation
from feedgate.api.openapi_report_operations import REPORT_OPERATIONS
from feedgate.api.tokens import TokensIn


class BatchBody(BaseModel):
    """``POST /v1/feedback/batch``: each item is checked on its own, so one invalid item is only its result."""

    items: list[BatchItem] = Field(min_length=1, max_length=1000)


def _log(path: str, provider: str) -> Operation:
    return Operation(
        "POST",
        path,
        "manual log",
        f"Log a call the app made itself (logged as provider {provider!r}; Helicone's async logging)",
        a.LogAccepted,
        {"request_id": REQUEST_ID},
        body=LogBody,
        body_example=LOG_BODY,
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "ops", "The process is up", a.Health, {"status": "ok"}, enveloped=False, public=True),
    Operation(
        "GET",
        "/readyz",
        "ops",
        "The store answers and its migrations are applied; the log writer's counters",
        a.Readiness,
        {"status": "ready", "queue": {"queued": 0, "capacity": 10000}, "log": {"written": 1042}, "inflight": 0},
        enveloped=False,
        public=True,
    ),
    Operation(
        "GET",
        "/metrics",
        "ops",
        "Prometheus metrics (docs/observability.md); without a key only when metrics.public is set",
        str,
        '# TYPE feedgate_requests_total counter\nfeedgate_requests_total{provider="openai",status="200"} 1042\n',
        enveloped=False,
        media="text/plain",
    ),
    Operation(
        "GET",
        "/openapi.json",
        "ops",
        "This document: feedgate's own routes (the proxied provider routes are the providers' own APIs)",
        dict[str, Any],
        {"openapi": "3.1.0", "info": {"title": "feedgate", "version": "0.1.0"}, "paths": {}},
        enveloped=False,
        public=True,
    ),
    Operation(
        "GET",
        "/widget/feedback.js",
        "widget",
        "The feedback widget's script: the <feedgate-feedback> element and feedgate.signal (docs/widget.md); "
        "cached a day, with an ETag",
        str,
        '(() => { "use strict"; const TAG = "feedgate-feedback"; /* ... */ })();\n',
        enveloped=False,
        public=True,
        media="text/javascript",
    ),
    Operation(
        "GET",
        "/widget/example",
        "widget",
        "A page that shows the widget for ?request_id=...&token=... (only with console.enabled)",
        str,
        '<!doctype html>\n<html lang="en">...</html>\n',
        enveloped=False,
        public=True,
        media="text/html",
    ),
    Operation(
        "GET",
        "/widget/example.js",
        "widget",
        "The example page's own script (only with console.enabled)",
        str,
        '(() => { "use strict"; /* ... */ })();\n',
        enveloped=False,
        public=True,
        media="text/javascript",
    ),
    Operation(
        "GET", "/v1/request/{request_id}", "requests", "One logged request (its latest attempt)", a.LoggedRequest, ROW
    ),
    Operation(
        "POST",
        "/v1/request/{request_id}/feedback",
        "feedback",
        "Rate a request (explicit), or record a signal (implicit); the latest explicit rating wins",
        None,
        None,
        status=201,
        body=FeedbackIn,
        body_example={"rating": False, "comment": "made up a tracking number", "user_id": "u42"},
        pending=True,
        token=True,
    ),
    Operation(
        "GET",
        "/v1/request/{request_id}/feedback",
        "feedback",
        "A request's rating, history, signals and scores",
        a.FeedbackState,
        STATE,
    ),
    Operation(
        "DELETE",
        "/v1/request/{request_id}/feedback",
        "feedback",
        "Clear a request's rating (the history keeps the clearing)",
        None,
        None,
    ),
    Operation(
        "POST",
        "/v1/request/{request_id}/score",
        "scores",
        "Score a request: integers, decimals and booleans within +-2**53; the latest per name wins",
        None,
        None,
        status=201,
        body=ScoresIn,
        body_example={"scores": {"stars": 4, "relevance": 0.82, "resolved": True}},
        pending=True,
        token=True,
    ),
    Operation(
        "DELETE",
        "/v1/request/{request_id}/score",
        "scores",
        "Remove scores by name (body and/or ?name=), or all of the request's without names; unknown names are no error",
        None,
        None,
        body=ScoreNamesIn,
        body_example={"names": ["relevance"]},
        body_required=False,
        query=q.ScoreNamesQuery,
    ),
    Operation(
        "PUT",
        "/v1/request/{request_id}/property",
        "feedback",
        "Set a property after the fact (the name is lower-cased, as Helicone does)",
        None,
        None,
        status=201,
        body=PropertyIn,
        body_example={"key": "outcome", "value": "resolved"},
        pending=True,
    ),
    Operation(
        "POST",
        "/v1/session/{session_id}/feedback",
        "sessions",
        "Rate a whole session (its requests need not be logged yet)",
        None,
        None,
        status=201,
        body=SessionFeedbackIn,
        body_example={"rating": True, "comment": "ticket solved"},
        token=True,
    ),
    Operation(
        "GET",
        "/v1/session/{session_id}/feedback",
        "sessions",
        "A session's rating, its history, and how many requests carry its ID",
        a.FeedbackState,
        {**{k: v for k, v in STATE.items() if k not in ("scores", "request_known")}, "signals": [], "requests": 4},
    ),
    Operation(
        "POST",
        "/v1/feedback-tokens",
        "feedback tokens",
        "Feedback tokens for request and session IDs, for a web page to rate them (docs/feedback-tokens.md); "
        "400 when feedback.token_secrets is not set",
        a.TokensMinted,
        TOKENS,
        body=TokensIn,
        body_example={"request_ids": [REQUEST_ID], "session_ids": [SESSION_ID]},
    ),
    Operation(
        "POST",
        "/v1/feedback",
        "feedback",
        "Helicone's legacy feedback route (answers without the envelope)",
        a.LegacyAnswer,
        {"message": "Feedback added successfully.", "helicone_id": REQUEST_ID},
        body=LegacyFeedbackIn,
        body_example={"helicone-id": REQUEST_ID, "rating": True},
        enveloped=False,
    ),
    Operation(
        "POST",
        "/v1/feedback/batch",
        "feedback",
        "Up to 1,000 ratings and scores in one transaction; each item gets its own result",
        a.BatchResults,
        {
            "results": [
                {"requestId": REQUEST_ID, "status": "stored"},
                {"requestId": "msg-9", "status": "pending"},
                {"requestId": "msg-10", "status": "invalid", "error": "rating: Input should be a valid boolean"},
            ]
        },
        body=BatchBody,
        body_example={
            "items": [
                {"requestId": REQUEST_ID, "rating": True},
                {"requestId": "msg-9", "scores": {"stars": 2}, "rating": False, "comment": "too long"},
                {"requestId": "msg-10", "rating": True, "signal": "copied"},
            ]
        },
    ),
    _log("/custom/v1/log", "custom"),
    _log("/oai/v1/log", "openai"),
    _log("/anthropic/v1/log", "anthropic"),
    *REPORT_OPERATIONS,
)
