"""feedgate's error tree, and the one place that turns it into HTTP answers.

Errors answered over HTTP, with their status::

    FeedgateError                 any error feedgate answers itself (500 when raised bare)
    + BadRequest            400   malformed JSON, a bad request ID, a bad header
      + FilterError         400   a filter, sort or query parameter that cannot be compiled
    + Unauthorized          401   missing or wrong feedgate key; a feedback token malformed, altered, expired or
                                  used on a route it cannot open
    + Forbidden             403   a valid feedback token for another ID, or for another purpose; a console form
                                  without its CSRF token, or from another origin
    + NotFound              404   unknown request, session, dataset or route
    + PayloadTooLarge       413   body over ``server.max_body_bytes``
    + Unprocessable         422   well-formed but invalid field values or unknown fields
    + RateLimited           429   a ``Helicone-RateLimit-Policy`` quota is used up
    + StoreUnavailable      503   the database did not take a write in time, or answer a read (PostgreSQL)
    + UpstreamError               the provider could not be used
      + UpstreamUnreachable 502   connection refused, DNS, TLS, reset before an answer
      + UpstreamTimeout     504   the provider went silent (connecting, or between bytes)
      + UpstreamBrokeOff    502   the answer was cut off or malformed after it began

The upstream client raises the three ``Upstream*`` errors itself, so the proxy tells an upstream failing
from its own client leaving (``ConnectionResetError`` while writing) by type alone.

Proxied routes answer in the OpenAI shape so the SDKs raise the matching exception; the feedback and
query routes answer in Helicone's ``{"data": null, "error": "..."}`` shape.

Errors that never become an HTTP answer::

    ConfigError              a setting is missing or malformed: commands print one line and exit 2
    StoreUnreachable         the database could not be opened at start: ``serve`` exits 3
    SharedStateUnreachable   Redis was configured but could not be reached at start: ``serve`` exits 3
    RowRejected              the store refused a record's content; the writer drops that record alone
    CommandError             a command cannot do what was asked: one line on stderr, exit 2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError


class FeedgateError(Exception):
    """An error feedgate answers itself; each subclass names its HTTP status and OpenAI error type."""

    status = 500
    error_type = "server_error"

    def __init_subclass__(cls, status: int | None = None, error_type: str | None = None) -> None:
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if error_type is not None:
            cls.error_type = error_type

    def __init__(self, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


class BadRequest(FeedgateError, status=400, error_type="invalid_request_error"): ...


class FilterError(BadRequest): ...


class Unauthorized(FeedgateError, status=401, error_type="authentication_error"): ...


class Forbidden(FeedgateError, status=403, error_type="permission_error"): ...


class NotFound(FeedgateError, status=404, error_type="not_found_error"): ...


class PayloadTooLarge(FeedgateError, status=413, error_type="invalid_request_error"): ...


class Unprocessable(FeedgateError, status=422, error_type="invalid_request_error"): ...


class RateLimited(FeedgateError, status=429, error_type="rate_limit_error"): ...


class StoreUnavailable(FeedgateError, status=503, error_type="server_error"): ...


class UpstreamError(FeedgateError, status=502, error_type="upstream_error"): ...


class UpstreamUnreachable(UpstreamError): ...


class UpstreamTimeout(UpstreamError, status=504, error_type="timeout"): ...


class UpstreamBrokeOff(UpstreamError): ...


def openai_body(error: FeedgateError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.error_type, "param": None, "code": error.code}}


def helicone_body(error: FeedgateError) -> dict[str, Any]:
    return {"data": None, "error": error.message}


def validation_message(exc: ValidationError) -> str:
    """Pydantic's first complaint about a body, as ``field.path: message`` (``body`` for the whole body)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"  # errors name fields by their alias
    return f"{where}: {str(first['msg']).removeprefix('Value error, ')}"


def to_response(error: FeedgateError, *, openai_shape: bool) -> web.Response:
    body = openai_body(error) if openai_shape else helicone_body(error)
    return web.Response(
        status=error.status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=error.headers,
    )


class ConfigError(Exception):
    """A setting is missing, malformed or refers to an unset environment variable."""


class StoreUnreachable(Exception):
    """The store could not be opened at start (database down, wrong address, refused login)."""


class SharedStateUnreachable(Exception):
    """Redis was configured but could not be reached at start."""


class RowRejected(Exception):
    """The store refused a record because of its content (a constraint, a value out of range).

    Retrying cannot fix it, unlike an outage: the writer applies the batch's records one by one and drops
    the one that fails, so it does not hold up the records queued behind it.
    """


class CommandError(Exception):
    """Shown to the user as ``feedgate: <message>``; the command exits with status 2."""
