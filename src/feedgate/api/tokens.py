"""``POST /v1/feedback-tokens``: feedback tokens for IDs the app hands to a web page itself.

Proxied answers carry a token for their own request ID (``Feedgate-Feedback-Token``). An app whose backend
makes the LLM call, or rates whole sessions, asks here instead, with its feedgate key, and puts the tokens
in the page. Nothing is stored: a token is checked by its signature alone (``feedgate/feedback_tokens.py``).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from feedgate.api.feedback_models import parse
from feedgate.api.results import json_body, ok
from feedgate.appkeys import FEEDBACK_TOKENS
from feedgate.errors import BadRequest
from feedgate.feedback_tokens import PURPOSES, Purpose, utc_iso
from feedgate.request_ids import ID_PATTERN, check_id

routes = web.RouteTableDef()

MAX_TOKEN_IDS = 1000  # per list: a page's worth of answers, and an answer of about 150 KB at most
# The pattern tells the OpenAPI document; check_id checks (a 400 naming the ID, as the feedback routes answer).
Id = Annotated[str, Field(json_schema_extra={"pattern": ID_PATTERN})]


class TokensIn(BaseModel):
    """Which IDs to make tokens for, and what the tokens allow (default: all three purposes)."""

    model_config = ConfigDict(extra="forbid")

    request_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_TOKEN_IDS, description="request IDs (Helicone-Id)"
    )
    session_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_TOKEN_IDS, description="session IDs (Helicone-Session-Id)"
    )
    allow: list[Purpose] = Field(
        default_factory=lambda: list(PURPOSES),
        min_length=1,
        max_length=len(PURPOSES),
        description="what the tokens allow: feedback (a rating), score, signal (an implicit signal)",
    )

    @model_validator(mode="after")
    def _some_id(self) -> TokensIn:
        if not self.request_ids and not self.session_ids:
            raise ValueError("send at least one ID in request_ids or session_ids")
        return self


@routes.post("/v1/feedback-tokens")
async def post_feedback_tokens(request: web.Request) -> web.Response:
    tokens = request.app.get(FEEDBACK_TOKENS)
    if tokens is None:
        raise BadRequest(
            "feedback tokens are not enabled on this gateway: set feedback.token_secrets "
            "(FEEDGATE_FEEDBACK_TOKEN_SECRETS) to make them",
            code="feedback_tokens_disabled",
        )
    body = parse(TokensIn, await json_body(request))
    request_ids = [check_id(request_id) for request_id in body.request_ids]
    session_ids = [check_id(session_id, "session ID") for session_id in body.session_ids]
    allow = [purpose for purpose in PURPOSES if purpose in body.allow]
    expires_at = tokens.expiry()  # one expiry for the whole answer, whatever the clock does meanwhile
    return ok(
        {
            "request_tokens": {rid: tokens.mint("request", rid, allow, expires_at=expires_at) for rid in request_ids},
            "session_tokens": {sid: tokens.mint("session", sid, allow, expires_at=expires_at) for sid in session_ids},
            "allow": allow,
            "expires_at": utc_iso(expires_at),
        }
    )
