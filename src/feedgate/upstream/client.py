"""The upstream client: a keep-alive connection pool per origin.

Why not ``aiohttp.ClientSession.request``: the proxy makes one kind of call, bytes in and bytes out, with
no cookies, redirects, auth helpers, tracing or middlewares. The session's general machinery (URL and
header merging, a ``ClientRequest`` with a dozen ``update_*`` steps, connection keys, timer contexts) was
about a quarter of feedgate's CPU per proxied call at saturation (py-spy, referee benchmark bodies).
Answers are read by ``connection.UpstreamConnection``; this module writes requests and keeps idle
connections for reuse.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from feedgate.errors import UpstreamTimeout, UpstreamUnreachable
from feedgate.upstream.connection import UpstreamConnection

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Origin(NamedTuple):
    """Where a base URL points: what to connect to and what to put before the request's own path."""

    host: str
    port: int
    tls: bool
    host_header: str
    path_prefix: str


def _origin(base_url: str) -> _Origin:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    tls = parts.scheme == "https"
    default_port = 443 if tls else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    return _Origin(host, port, tls, host_header, parts.path.rstrip("/"))


class UpstreamResponse:
    """An upstream's answer: status and headers at once, the body read piece by piece as it arrives.
    ``release()`` returns the connection to the pool when the body was read to its end, and closes it
    otherwise."""

    __slots__ = ("status", "headers", "content_type", "content_length", "read_chunk", "_pool", "_protocol", "_released")

    def __init__(self, pool: _Pool, protocol: UpstreamConnection) -> None:
        self.status = protocol.status
        self.headers = headers = protocol.headers
        # The body bytes that arrived since the last call, waiting for some; b"" once the body has ended.
        # Raises UpstreamBrokeOff when the upstream breaks off, UpstreamTimeout when it goes quiet.
        self.read_chunk = protocol.read_chunk
        content_type = headers.get("Content-Type")
        self.content_type = (
            content_type.partition(";")[0].strip().lower() if content_type else "application/octet-stream"
        )
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._pool = pool
        self._protocol = protocol
        self._released = False

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool.put_back(self._protocol, self._protocol.complete)


class _Pool:
    """Idle connections to one origin, newest last: the most recently used is the least likely to be stale.

    Connections idle longer than ``keepalive_s`` gather at the left end. A timer, armed while any connection
    is idle, closes them there, so a burst's connections do not stay open after the traffic is gone.
    """

    __slots__ = ("origin", "idle", "keepalive_s", "busy", "_sweep")

    def __init__(self, origin: _Origin, keepalive_s: float) -> None:
        self.origin = origin
        self.idle: deque[tuple[UpstreamConnection, float]] = deque()
        self.keepalive_s = keepalive_s
        self.busy: set[UpstreamConnection] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        expired = time.monotonic() - self.keepalive_s
        while idle:
            protocol, since = idle.pop()
            if since > expired and protocol.is_connected() and not protocol.should_close:
                return protocol
            protocol.close()
        return None

    def put_back(self, protocol: UpstreamConnection, body_done: bool) -> None:
        self.busy.discard(protocol)
        if body_done and protocol.is_connected() and not protocol.should_close:
            self.idle.append((protocol, time.monotonic()))
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(self.keepalive_s, self._close_expired)
        else:
            protocol.close()

    def _close_expired(self) -> None:
        self._sweep = None
        idle = self.idle
        expired = time.monotonic() - self.keepalive_s
        while idle and idle[0][1] <= expired:
            idle.popleft()[0].close()
        if idle:
            wait = idle[0][1] - expired
            self._sweep = asyncio.get_running_loop().call_later(wait, self._close_expired)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for protocol, _ in self.idle:
            protocol.close()
        self.idle.clear()
        for protocol in self.busy:
            protocol.abort()
        self.busy.clear()


class UpstreamClient:
    """Sends a request's bytes to a provider and returns its answer as soon as the status and headers are in.

    Failures raise feedgate's own ``UpstreamError``s, never an exception the server side also raises:
    ``UpstreamUnreachable`` (cannot connect, or the connection dropped before an answer),
    ``UpstreamBrokeOff`` (a malformed answer, or one cut off) and ``UpstreamTimeout`` (connecting took
    longer than ``connect_timeout_s``, or no bytes came for ``read_timeout_s``).
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float | None,
        keepalive_s: float = 60.0,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.keepalive_s = keepalive_s
        self._ssl_context: ssl.SSLContext | None = None  # made at the first HTTPS connection
        self._pools: dict[str, _Pool] = {}

    async def request(
        self, method: str, base_url: str, path_qs: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamResponse:
        pool = self._pools.get(base_url)
        if pool is None:
            pool = self._pools[base_url] = _Pool(_origin(base_url), self.keepalive_s)
        origin = pool.origin
        lines = [f"{method} {origin.path_prefix}{path_qs} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
        for name, value in headers.items():
            lines.append(f"{name}: {value}\r\n")
        if body or method in _BODY_METHODS:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        if head.count("\n") != len(lines) + 1:  # the first item holds two lines
            # Configured and Helicone-given headers are checked where they come in; this is the last guard
            # against a header that would smuggle in lines of its own.
            raise UpstreamUnreachable("refused to send a header name or value containing a line break")
        protocol = pool.take() or await self._connect(origin)
        pool.busy.add(protocol)
        try:
            transport = protocol.transport
            if transport is None:
                raise UpstreamUnreachable("Server disconnected")
            head_received = protocol.expect(method == "HEAD", self.read_timeout_s)
            transport.writelines((head.encode("utf-8", "surrogateescape"), body))
            await head_received
        except BaseException:
            pool.busy.discard(protocol)
            protocol.close()
            raise
        return UpstreamResponse(pool, protocol)

    async def _connect(self, origin: _Origin) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.tls:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamConnection(loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"connecting to {origin.host}:{origin.port} timed out") from None
        except OSError as exc:
            raise UpstreamUnreachable(f"cannot connect to {origin.host}:{origin.port}: {exc.strerror or exc}") from None
        return protocol

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
