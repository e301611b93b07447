"""The settings of what the log keeps and for how long: the ``log`` section.

Kept apart from the database settings because they change what a row holds (a stream's raw events, large
request bodies) and when it goes, not how the store is reached.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from feedgate.config.section import Section


class LogSettings(Section):
    stream_events: Literal["compressed", "raw", "none"] = Field(
        "compressed",
        description="A streamed answer's raw events: compressed (zstd), raw, or none (only the reassembled "
        "message is kept; GET /v1/request/{id} then answers response_events null, response_events_kept false). "
        "Reads return them decoded whichever is chosen.",
    )
    request_body_compress_over_bytes: int = Field(
        8192,
        ge=0,
        description="Request bodies larger than this are stored zstd-compressed (0: never); reads decode them.",
    )
    retention_days: float | None = Field(
        None,
        gt=0,
        le=36500,
        description="Delete logged requests older than this many days, in small batches (their rollups stay, so "
        "trends outlive raw logs); unset keeps everything.",
    )
