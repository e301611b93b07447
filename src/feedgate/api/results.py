"""Helicone's result shape for every feedgate API answer, and JSON body parsing with clear errors."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from feedgate.errors import BadRequest


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"data": data, "error": None}),
        content_type="application/json",
        headers=headers,
    )


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("request body is empty; expected JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
