"""``log_format: json``: one JSON object per line, for log shippers (Loki, Elasticsearch, CloudWatch, ...).

Every record becomes ``{"time", "level", "logger", "message", ...}``. Access-log lines stay batched (a
fifth of a second per write, as in text mode: ``access_log.AccessLines``) but each request is its own JSON
object with its request ID, trace ID, status, duration, and for a proxied call its provider and model.

The model is known only once the log writer has built the call's row; a line is rendered when its batch
is written, by which time the writer has almost always done so. If it has not (the writer is far behind),
the line goes without the model rather than wait for it: "where known".
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from feedgate.appkeys import EXCHANGE, TRACE_ID
from feedgate.ops.access_log import AccessLines

_RESERVED = frozenset(vars(logging.makeLogRecord({})))


def utc_stamp(seconds: float) -> str:
    """``2026-12-03T14:56:01.123Z``: UTC, milliseconds, what log shippers parse without configuration."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line; fields given with ``extra=`` (request_id, trace_id, ...) are kept."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "raw_lines", False):  # the access log's batches, JSON already
            return record.getMessage()
        out: dict[str, Any] = {
            "time": utc_stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class JsonAccessLines(AccessLines):
    """The access log's lines as JSON objects, one per request, still written a batch at a time."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self._pending: list[tuple[float, str, str, str, int, float, web.BaseRequest | None]] = []

    def add(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        seconds: float,
        request: web.BaseRequest | None = None,
    ) -> None:
        self._pending.append((time.time(), request_id, method, path, status, seconds, request))
        self._schedule_flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if pending:
            lines = [_line(*item) for item in pending]
            self.logger.info("%s", "\n".join(lines), extra={"raw_lines": True})


def _line(
    at: float, request_id: str, method: str, path: str, status: int, seconds: float, request: web.BaseRequest | None
) -> str:
    duration_ms = round(seconds * 1000.0, 1)
    out: dict[str, Any] = {
        "time": utc_stamp(at),
        "level": "INFO",
        "logger": "feedgate.access",
        "message": f"{method} {path} {status} {duration_ms}ms",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
    }
    if isinstance(request, web.Request):
        exchange = request.get(EXCHANGE)
        trace_id = request.get(TRACE_ID)
        if exchange is not None:
            out["provider"] = exchange.provider
            if exchange.model is not None:
                out["model"] = exchange.model
            trace_id = exchange.trace_id or trace_id
        if trace_id is not None:
            out["trace_id"] = trace_id
    return orjson.dumps(out).decode()
