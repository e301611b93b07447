"""What the proxy asks of a tracer: set by ``app/`` only when tracing is on (``ops/tracing.py``).

With tracing off the proxy holds ``None`` and pays one ``is None`` test per call. With it on, each upstream
attempt (every retry and every fallback target) gets a client span. Its attributes that need the answer
parsed (response model and ID, finish reasons, tokens) are set later by the log writer, which parses the
answer anyway; the proxy only records when each attempt ended and how.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict

from feedgate.logrows.exchange import Exchange


class AttemptSpan(Protocol):
    def inject(self, headers: CIMultiDict[str]) -> None:
        """Put this span's W3C ``traceparent`` in the headers sent upstream."""

    def finish(self, status: int | None, error_type: str | None) -> None:
        """The attempt is over: note when and how. The span itself ends once the log row is built."""


class CallTracer(Protocol):
    def call_started(self, request: web.Request, exchange: Exchange) -> None:
        """Stamp the exchange with the request's trace."""

    def start_attempt(self, exchange: Exchange, provider_name: str, provider_kind: str, base_url: str) -> AttemptSpan:
        """A client span for one upstream attempt, child of the request's server span."""

    def call_ended(self, exchange: Exchange) -> None:
        """Note the end of the attempt still open (the one relayed to the client)."""
