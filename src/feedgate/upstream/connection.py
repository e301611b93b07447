"""One keep-alive HTTP/1.1 connection to an upstream, its answers parsed by llhttp (through httptools).

Why not aiohttp's ``ResponseHandler``: it turns every HTTP chunk of a stream into three Python calls on a
``StreamReader`` (begin, feed, end of chunk), and every read into per-chunk bookkeeping and flow-control
calls. An SSE answer arrives as one HTTP chunk per event, so that was most of what relaying a stream cost.
Here llhttp hands each body piece straight to ``list.append``, a C call, and the relay takes whatever has
arrived as one piece.

What keeps a reused connection safe: an answer is only complete when llhttp says so (or, for an answer
with neither a length nor chunked framing, when the upstream closes), and a connection goes back to the
pool only after a complete answer that allows keep-alive, with no stray byte behind it. Anything else
closes it.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools
from multidict import CIMultiDict

from feedgate.errors import UpstreamBrokeOff, UpstreamTimeout, UpstreamUnreachable

# Flow control: stop reading from the upstream while this much body waits for a slow client.
_HIGH_WATER = 1 << 20
# An answer's status line and headers beyond this size are refused (aiohttp's limit is similar).
_MAX_HEAD = 64 * 1024


class _OutOfStep(Exception):
    """The upstream sent more than the one answer it was asked for."""


class _Callbacks:
    """What llhttp calls while parsing one answer. ``on_body`` is the body list's own ``append``."""

    __slots__ = ("conn", "on_body")

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.on_body = conn.parts.append

    def on_message_begin(self) -> None:
        if self.conn.complete:
            # Bytes after a finished answer: stop llhttp before any of them can reach this answer's state.
            raise _OutOfStep()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.conn.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.conn.headers_done()

    def on_message_complete(self) -> None:
        self.conn.message_done()


class UpstreamConnection(asyncio.Protocol):
    """The transport's protocol, and the state of the answer being read on it (one at a time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.should_close = False
        self.parts: list[bytes] = []  # body bytes received and not yet taken
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.complete = True  # no answer is expected until ``expect`` is called
        self._parser: httptools.HttpResponseParser | None = None
        self._skip_body = False
        self._eof_framed = False
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._buffered = 0
        self._paused = False
        self._head_bytes = 0
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete:
            self.close()  # an upstream talking out of turn
            return
        self._last_read = self.loop.time()
        if self._head is not None:
            self._head_bytes += len(data)
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self.complete:  # the answer is whole; only the connection is out of step: never reuse it
                self.close()
                return
            why = "a protocol switch is not supported" if isinstance(exc, httptools.HttpParserUpgrade) else exc
            self._fail(UpstreamBrokeOff(f"malformed answer: {why}"))
            self.close()
            return
        if self._head is not None and self._head_bytes > _MAX_HEAD:
            self._fail(UpstreamBrokeOff("malformed answer: status line and headers too large"))
            self.close()
            return
        if self.parts:
            self._buffered += len(data)
            if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        if self.parts or self.complete:
            self._wake()

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost settles the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.should_close = True
        self._cancel_timer()
        if self.complete:
            return
        if self._head is None and self._eof_framed and exc is None:
            self.complete = True  # an answer without length or chunks ends with its connection
            self._wake()
            return
        if self._head is not None:
            self._fail(UpstreamUnreachable("Server disconnected"))
        else:
            self._fail(UpstreamBrokeOff("the upstream closed the connection in the middle of its answer"))

    # -- llhttp callbacks (through _Callbacks)

    def headers_done(self) -> None:
        status = self._parser.get_status_code() if self._parser is not None else 0
        if 100 <= status < 200 and status != 101:
            self.raw_headers.clear()  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            return
        self.status = status
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self.raw_headers:
            headers.add(name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
        self.raw_headers.clear()
        self.headers = headers
        encoding = headers.get("Transfer-Encoding")
        self._eof_framed = (
            not self._skip_body
            and status not in (204, 304)
            and "Content-Length" not in headers
            and (encoding is None or "chunked" not in encoding.lower())
        )
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(None)
        if self._skip_body:
            self.message_done()

    def message_done(self) -> None:
        if self.complete or self._head is not None:  # done already, or the end of an interim answer
            return
        self.complete = True
        self._cancel_timer()
        parser = self._parser
        if self._skip_body or parser is None or not parser.should_keep_alive():
            self.should_close = True
        self._wake()

    # -- the client's side

    def expect(self, skip_body: bool, read_timeout: float | None) -> asyncio.Future[None]:
        """Get ready for the answer to a request about to be written; the future resolves with its head."""
        self._parser = httptools.HttpResponseParser(_Callbacks(self))
        self.complete = False
        self._skip_body = skip_body
        self._eof_framed = False
        self._error = None
        self._head_bytes = 0
        self.raw_headers.clear()
        self.parts.clear()
        self._buffered = 0
        head = self._head = self.loop.create_future()
        self._read_timeout = read_timeout
        self._last_read = self.loop.time()
        if read_timeout is not None:
            self._timer = self.loop.call_at(self._last_read + read_timeout, self._check_timeout)
        return head

    async def read_chunk(self) -> bytes:
        """The body bytes that arrived since the last call, waiting for some; b"" at the end of the body.

        Raises ``UpstreamBrokeOff`` when the upstream breaks off, ``UpstreamTimeout`` when it goes quiet.
        """
        while True:
            parts = self.parts
            if parts:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                parts.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            waiter = self._waiter = self.loop.create_future()
            await waiter

    def is_connected(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.should_close = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.should_close = True
        if self.transport is not None:
            self.transport.abort()

    # -- internals

    def _fail(self, exc: BaseException) -> None:
        self.should_close = True
        self._cancel_timer()
        if self._error is None:
            self._error = exc
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_exception(exc)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_timeout(self) -> None:
        """One timer per answer, moved only when it fires: cheaper than rescheduling on every read."""
        self._timer = None
        timeout = self._read_timeout
        if self.complete or timeout is None:
            return
        now = self.loop.time()
        if self._paused:  # waiting on our own client, not on the upstream
            self._last_read = now
        due = self._last_read + timeout
        if now >= due:
            self._fail(UpstreamTimeout(f"the upstream sent nothing for {timeout:g}s"))
            self.close()
        else:
            self._timer = self.loop.call_at(due, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
