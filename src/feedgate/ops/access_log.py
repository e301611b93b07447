"""The access log: one line per request (ID, method, path, status, duration), written in batches so that
logging a line per request costs almost nothing. Never bodies or headers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from feedgate.appkeys import ACCESS_LINES, REQUEST_ID


class AccessLines:
    """The app's access-log lines waiting to be written: handed to logging a fifth of a second at a time.

    A ``LogRecord`` and a write per request cost as much CPU as the gateway's own work; one record per
    batch costs almost nothing. The app flushes what is left when it shuts down.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._lines: list[str] = []
        self._flush_scheduled = False
        self._second = -1
        self._stamp = ""

    def add(
        self,
        request_id: str,
        method: str,
        path: str,
        status: int,
        seconds: float,
        request: web.BaseRequest | None = None,  # read by the JSON lines (ops/json_logs.py)
    ) -> None:
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        self._lines.append(
            f"{self._stamp} INFO feedgate.access: {request_id} {method} {path} {status} {seconds * 1000.0:.1f}ms"
        )
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(0.2, self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        lines, self._lines = self._lines, []
        if lines:
            self.logger.info("%s", "\n".join(lines), extra={"raw_lines": True})


class AccessLogger(AbstractAccessLogger):
    """One line per request: ID, method, path, status, duration. Never bodies or headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        lines = None
        # A request aiohttp could not parse was never routed: it has no app to find the batched lines on.
        with contextlib.suppress(AssertionError, AttributeError):
            # config_dict: a console request's app is the console's sub-application.
            lines = request.config_dict.get(ACCESS_LINES) if isinstance(request, web.Request) else None
        if lines is None:
            self.logger.info(
                "%s %s %s %d %.1fms",
                request.get(REQUEST_ID, "-"),
                request.method,
                request.path,
                response.status,
                time * 1000.0,
            )
            return
        lines.add(request.get(REQUEST_ID, "-"), request.method, request.path, response.status, time, request)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class LineFormatter(logging.Formatter):
    """Passes through lines that arrive already formatted (the access log's batches)."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "raw_lines", False):
            return record.getMessage()
        return super().format(record)


class MalformedRequests(logging.Filter):
    """aiohttp logs a full traceback for every request it cannot parse (a bad request line, a header over
    its limit): anyone who can reach the port could fill the log with them. This filter keeps one short line
    every ``every_s`` seconds saying how many there were, and drops the rest."""

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last = -every_s
        self._unlogged = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._unlogged += 1
            return False
        record.msg = "malformed request from %s: %s (%d more since the last such line)"
        record.args = (*(record.args if isinstance(record.args, tuple) else ()), exc.message, self._unlogged)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        self._last, self._unlogged = now, 0
        return True
