"""Helicone's manual (async) logging, for apps that call a provider themselves and only report to feedgate.

``POST /custom/v1/log``, ``/oai/v1/log`` and ``/anthropic/v1/log`` take Helicone's body::

    {"providerRequest": {"url": str, "json": {...}, "meta": {str: str}},
     "providerResponse": {"json": {...}, "textBody"?: str, "status": int, "headers": {str: str}},
     "timing"?: {"startTime": {"seconds", "milliseconds"}, "endTime": {...}, "timeToFirstToken"?: ms}}

A streamed call's ``textBody`` may hold its chunks as newline-separated JSON objects (helicone-helpers'
``log_builder`` with ``add_chunk``) or as SSE ``data:`` lines, in the OpenAI, Responses or Anthropic shapes;
it is reassembled like a proxied stream.

Helicone headers (``Helicone-Request-Id``, ``-User-Id``, ``-Property-*``, ...) may be HTTP headers of the log
call or sit in ``meta``; the HTTP headers win. The report becomes an ``Exchange`` like a proxied call and goes
through the same writer and ``build_row``, so feedback, stats and exports treat both alike. The answer is 200
with a ``Helicone-Id`` header; an invalid body gets 400 naming the field at fault.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from feedgate.api.log_checks import log_body_problem
from feedgate.api.results import json_body, ok
from feedgate.appkeys import REQUEST_ID, REQUEST_IDS, WRITER
from feedgate.config import origin_of
from feedgate.errors import BadRequest, StoreUnavailable, validation_message
from feedgate.logrows.exchange import Exchange
from feedgate.request_ids import choose_request_id
from feedgate.store.bounds import LATEST_EPOCH_S

# route -> (provider name logged, wire format of the bodies)
LOG_ROUTES = {
    "/custom/v1/log": ("custom", "openai"),
    "/oai/v1/log": ("openai", "openai"),
    "/anthropic/v1/log": ("anthropic", "anthropic"),
}


class _Model(BaseModel):
    # Unknown fields are ignored, as Helicone does: its own helpers send extras (_type, toolName, note).
    model_config = ConfigDict(extra="ignore")


class _Moment(_Model):
    seconds: float = Field(..., ge=0, strict=True)
    milliseconds: float = Field(0, ge=0, strict=True)

    @property
    def epoch(self) -> float:
        return self.seconds + self.milliseconds / 1000.0

    @field_validator("seconds")
    @classmethod
    def _seconds_before_10000(cls, value: float) -> float:
        # Times are kept as text with a four-digit year: a later moment could not be written as a row.
        if value > LATEST_EPOCH_S:
            raise ValueError(f"must be at most {LATEST_EPOCH_S} (9999-12-31T23:59:59Z)")
        return value

    @model_validator(mode="after")
    def _before_10000(self) -> _Moment:
        if self.epoch >= LATEST_EPOCH_S + 1:
            raise ValueError("seconds plus milliseconds is after the year 9999")
        return self


class _Timing(_Model):
    startTime: _Moment  # noqa: N815 - Helicone's field names
    endTime: _Moment  # noqa: N815
    timeToFirstToken: float | None = Field(None, ge=0)  # noqa: N815

    @model_validator(mode="after")
    def _ordered(self) -> _Timing:
        if self.startTime.epoch > self.endTime.epoch:
            raise ValueError("startTime must not be after endTime")
        return self


class _ProviderRequest(_Model):
    url: str = Field(..., strict=True)
    body: Any = Field(..., alias="json")
    meta: dict[str, str | int | float | bool | None]


class _ProviderResponse(_Model):
    body: Any = Field(..., alias="json")
    textBody: str | None = Field(None, strict=True)  # noqa: N815
    status: int = Field(..., strict=True, ge=-1000, le=999)
    headers: dict[str, str | int | float | bool | None]


class LogBody(_Model):
    providerRequest: _ProviderRequest  # noqa: N815
    providerResponse: _ProviderResponse  # noqa: N815
    timing: _Timing | None = None


def parse_log_body(data: Any) -> LogBody:
    try:
        body = LogBody.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(f"invalid log body: {validation_message(exc)}", code="invalid_log_body") from None
    problem = log_body_problem(data)
    if problem is not None:
        raise BadRequest(f"invalid log body: {problem}", code="invalid_log_body")
    return body


def _text(value: str | int | float | bool | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def stream_text_as_sse(text: str) -> bytes:
    """A reported stream's text as SSE events, whichever form the reporter wrote it in.

    helicone-helpers' ``log_builder`` joins the chunks it was given with single newlines: each a JSON object
    (``add_chunk(chunk.model_dump())``) or a line of the SSE the app read (``data: {...}``, ``event: ...``).
    Each object or ``data:`` line becomes one event, so the stream reassembles exactly as a proxied one.
    """
    out: list[bytes] = []
    for line in text.encode().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(b"{"):
            out.append(b"data: " + line + b"\n\n")
        elif line.startswith(b"data:"):
            out.append(line + b"\n\n")
        elif line.startswith(b"event:"):
            out.append(line + b"\n")
        # anything else (an error's traceback the builder put ahead of the chunks) is not an event
    return b"".join(out)


def _response_bytes(body: LogBody, is_stream: bool) -> bytes:
    response = body.providerResponse
    if response.textBody is not None:
        if is_stream:
            return stream_text_as_sse(response.textBody)
        return response.textBody.encode()
    data = response.body
    if is_stream and isinstance(data, dict) and isinstance(data.get("streamed_data"), list):
        # Helicone's stream form: the events as a list; keep them as the SSE they were.
        return b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in data["streamed_data"])
    return orjson.dumps(data)


def build_exchange(request: web.Request, body: LogBody, provider: str, kind: str) -> Exchange:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in body.providerRequest.meta.items():
        headers[name] = _text(value)
    for name, value in request.headers.items():
        if name.lower().startswith("helicone-"):
            headers[name] = value  # the HTTP header wins over meta, as in Helicone
    request_id = choose_request_id(headers.get("Helicone-Request-Id"), request.app[REQUEST_IDS])
    url = body.providerRequest.url
    origin = origin_of(url)
    parts = urlsplit(url) if origin is not None else None
    request_json = body.providerRequest.body
    is_stream = isinstance(request_json, dict) and request_json.get("stream") is True
    timing = body.timing
    exchange = Exchange(
        request_id=request_id,
        started_at=timing.startTime.epoch if timing is not None else time.time(),
        provider=provider,
        provider_kind=kind,
        method="POST",
        path=(parts.path or "/") if parts is not None else (url or "/"),
        query=parts.query if parts is not None else "",
        target_url=origin if origin is not None else url,
        request_headers=headers,
        request_body=orjson.dumps(request_json),
        status=body.providerResponse.status,
        response_headers={name: _text(value) for name, value in body.providerResponse.headers.items()},
        is_stream=is_stream,
    )
    exchange.response_chunks.append(_response_bytes(body, is_stream))
    if timing is not None:
        exchange.duration_ms = (timing.endTime.epoch - timing.startTime.epoch) * 1000.0
        exchange.ttft_ms = timing.timeToFirstToken
    return exchange


async def log_handler(request: web.Request) -> web.Response:
    provider, kind = LOG_ROUTES[request.path]
    body = parse_log_body(await json_body(request))
    exchange = build_exchange(request, body, provider, kind)
    request[REQUEST_ID] = exchange.request_id  # the Helicone-Id header of this answer
    if not request.app[WRITER].log(exchange):
        raise StoreUnavailable("the log queue is full; send the report again later", code="log_queue_full")
    return ok({"request_id": exchange.request_id})


routes = [web.post(path, log_handler) for path in LOG_ROUTES]
