"""feedgate's error tree, and the one place that turns it into HTTP answers.

* FeedgateError               any error feedgate answers itself
  + BadRequest          400   malformed JSON, a bad request ID, a bad header
  + Unauthorized        401   missing or wrong feedgate key
  + NotFound            404   unknown request, session, dataset or route
  + PayloadTooLarge     413   body over ``server.max_body_bytes``
  + Unprocessable       422   well-formed but invalid field values or unknown fields
  + RateLimited         429   a ``Helicone-RateLimit-Policy`` quota is used up
  + StoreUnavailable    503   the database did not take a write in time
  + UpstreamError             the provider could not be used
    - UpstreamUnreachable 502 connection refused, DNS, reset before an answer
    - UpstreamTimeout     504 the provider went silent

Proxied routes answer in the OpenAI shape so the SDKs raise the matching exception; the feedback and
query routes answer in Helicone's ``{"data": null, "error": "..."}`` shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class FeedgateError(Exception):
    status = 500
    error_type = "server_error"

    def __init__(self, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


class BadRequest(FeedgateError):
    status = 400
    error_type = "invalid_request_error"


class Unauthorized(FeedgateError):
    status = 401
    error_type = "authentication_error"


class NotFound(FeedgateError):
    status = 404
    error_type = "not_found_error"


class PayloadTooLarge(FeedgateError):
    status = 413
    error_type = "invalid_request_error"


class Unprocessable(FeedgateError):
    status = 422
    error_type = "invalid_request_error"


class RateLimited(FeedgateError):
    status = 429
    error_type = "rate_limit_error"


class StoreUnavailable(FeedgateError):
    status = 503
    error_type = "server_error"


class UpstreamError(FeedgateError):
    status = 502
    error_type = "upstream_error"


class UpstreamUnreachable(UpstreamError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout"


def openai_body(error: FeedgateError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.error_type, "param": None, "code": error.code}}


def helicone_body(error: FeedgateError) -> dict[str, Any]:
    return {"data": None, "error": error.message}


def to_response(error: FeedgateError, *, openai_shape: bool) -> web.Response:
    body = openai_body(error) if openai_shape else helicone_body(error)
    return web.Response(
        status=error.status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=error.headers,
    )
