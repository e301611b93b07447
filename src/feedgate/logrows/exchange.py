"""One proxied exchange as captured on the hot path: references and bytes, nothing parsed.

Everything derived from it (model, tokens, the reassembled stream, cost) is computed later by
``build.py`` in the log writer, so capturing costs the request almost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
