"""Helicone's result shape for every feedgate API answer, and JSON body parsing with clear errors."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from feedgate.appkeys import WRITER
from feedgate.errors import BadRequest, StoreUnavailable
from feedgate.store.ops import WriteOp


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


async def commit(request: web.Request, ops: WriteOp | list[WriteOp], timeout: float = 10.0) -> None:
    """Hand writes to the single writer and wait until they are committed; 503 if the store does not confirm."""
    try:
        await request.app[WRITER].submit(ops, timeout=timeout)
    except TimeoutError:
        # The write may still be waiting in the queue and land when the store recovers: say so, no more.
        raise StoreUnavailable(
            "the store did not confirm the write in time; retry later (it may still be stored)"
        ) from None
