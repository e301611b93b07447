"""Helicone's result shape for every feedgate API answer, and JSON body parsing with clear errors."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from feedgate.appkeys import SETTINGS, WRITER
from feedgate.errors import BadRequest, RowRejected, StoreUnavailable, Unprocessable
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


async def commit(request: web.Request, ops: WriteOp | list[WriteOp], timeout: float | None = None) -> None:
    """Hand writes to the single writer and wait until they are committed.

    503 when the store does not take them within ``timeout`` (default ``feedback.store_timeout_s``): the
    writer then withdraws them, so the client can simply retry. 422 when the store refuses a value.
    """
    # config_dict: the console, a sub-application, commits through here too.
    writer = request.config_dict[WRITER]
    wait_s = request.config_dict[SETTINGS].feedback.store_timeout_s if timeout is None else timeout
    try:
        await writer.submit(ops, timeout=wait_s)
    except TimeoutError:
        cause = f" ({writer.stats.last_error})" if writer.failing else ""
        raise StoreUnavailable(
            f"the store did not take the write within {wait_s:g}s{cause}; it was not stored: retry later",
            code="store_unavailable",
        ) from None
    except RowRejected as exc:
        raise Unprocessable(f"the store cannot keep this value: {exc}") from None
    except Exception as exc:  # the store failed while the gateway was stopping
        raise StoreUnavailable(f"the store failed: {type(exc).__name__}: {exc}", code="store_unavailable") from None
