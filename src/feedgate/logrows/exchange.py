"""One proxied exchange as captured on the hot path: references and bytes, nothing parsed.

Everything derived from it (model, tokens, the reassembled stream, cost) is computed later by
``build.py`` in the log writer, so capturing costs the request almost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
