"""One proxied exchange as captured on the hot path: references and bytes, nothing parsed.

Everything derived from it (model, tokens, the reassembled stream, cost) is computed later by
``build.py`` in the log writer, so capturing costs the request almost nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from multidict import CIMultiDict


@dataclass(slots=True)
class Exchange:
    request_id: str
    started_at: float  # time.time() when the request arrived
    provider: str
    provider_kind: str  # wire format: "openai" or "anthropic"
    method: str
    path: str
    query: str
    target_url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int | None = None
    response_headers: Mapping[str, str] | None = None
    response_chunks: list[bytes] = field(default_factory=list)
    # A stream's chunks' arrival times (time.perf_counter(), one per chunk) and the request's start on that
    # clock: the writer finds the chunk holding the first output and takes its time as the time to first token.
    chunk_times: list[float] = field(default_factory=list)
    perf_started: float | None = None
    is_stream: bool = False
    duration_ms: float | None = None
    ttft_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    cache_reference_id: str | None = None
    extra_properties: dict[str, str] = field(default_factory=dict)
    # True when feedgate made the ID up: then it cannot have been logged before, and is attempt 1.
    fresh_id: bool = False
    # For metrics and traces (ops/): plain values set on the hot path, read once the exchange has ended.
    proxied: bool = False  # False for a call an app logged itself: no proxy metric counts it
    upstream_started: float | None = None  # perf_counter() when the first attempt was sent
    upstream_ms: float | None = None  # from then until the last byte of the relayed answer arrived
    cache_result: str | None = None  # "hit" or "miss" when the call read the response cache
    trace_id: str | None = None  # 32 hex digits, when the call was traced
    span_id: str | None = None  # 16 hex digits: the span feedback on this call is recorded under
    attempt_spans: list[Any] | None = None  # tracing: one per upstream attempt, finished by the log writer
    model: str | None = None  # set by the log writer once the row is built (the JSON access line shows it)

    def held_bytes(self) -> int:
        """About how much memory this exchange holds while it waits to be logged: its bodies."""
        return len(self.request_body) + sum(map(len, self.response_chunks))

    def to_bytes(self) -> bytes:
        """The exchange as bytes for the spool (``store/spool.py``); ``from_bytes`` reads it back.

        What only means something inside this process (the trace spans still open, perf_counter times of the
        upstream's start) is not kept.
        """
        meta = {
            "request_id": self.request_id,
            "started_at": self.started_at,
            "provider": self.provider,
            "provider_kind": self.provider_kind,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "target_url": self.target_url,
            "request_headers": list(self.request_headers.items()),
            "status": self.status,
            "response_headers": None if self.response_headers is None else list(self.response_headers.items()),
            "is_stream": self.is_stream,
            "duration_ms": self.duration_ms,
            "ttft_ms": self.ttft_ms,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "cache_reference_id": self.cache_reference_id,
            "extra_properties": self.extra_properties,
            "fresh_id": self.fresh_id,
            "proxied": self.proxied,
            "upstream_ms": self.upstream_ms,
            "cache_result": self.cache_result,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "chunk_times": self.chunk_times,
            "perf_started": self.perf_started,
            "request_bytes": len(self.request_body),
            "chunk_sizes": [len(chunk) for chunk in self.response_chunks],
        }
        try:
            head = orjson.dumps(meta)
        except TypeError:  # a header or message holding bytes that are not UTF-8 (kept as lone surrogates)
            head = orjson.dumps(_utf8(meta))
        return b"".join((_HEAD.pack(len(head)), head, self.request_body, *self.response_chunks))

    @classmethod
    def from_bytes(cls, data: bytes) -> Exchange:
        (head_length,) = _HEAD.unpack_from(data)
        start = _HEAD.size + head_length
        meta = orjson.loads(data[_HEAD.size : start])
        at = start + meta.pop("request_bytes")
        request_body = data[start:at]
        chunks = []
        for size in meta.pop("chunk_sizes"):
            chunks.append(data[at : at + size])
            at += size
        request_headers = CIMultiDict(meta.pop("request_headers"))
        response_headers = meta.pop("response_headers")
        return cls(
            **meta,
            request_headers=request_headers,
            request_body=request_body,
            response_headers=None if response_headers is None else CIMultiDict(response_headers),
            response_chunks=chunks,
        )


_HEAD = struct.Struct(">I")


def _utf8(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (undecodable bytes become U+FFFD)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_utf8(item) for item in value]
    if isinstance(value, dict):
        return {_utf8(key): _utf8(item) for key, item in value.items()}
    return value
