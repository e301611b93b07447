"""How a row's bodies are kept, and the one way to read them back (``request_body``, ``response_body``).

A row's bodies are the bytes as sent, unless its ``request_body_encoding`` / ``response_body_encoding`` says
otherwise (migration m012): ``zstd`` (compressed, decoded on every read) or, for a stream's answer only,
``dropped`` (``log.stream_events: none``: the raw events were not kept; the reassembled message in
``response_json`` is the record). NULL means as sent, which is every row written before m012. The encoding is
always read from its column, never guessed from the bytes: a body may itself start with zstd's magic number.

``BodyPacker`` encodes as the writer builds a row; ``decoded_row`` / ``decoded_rows`` decode whatever a store
read returns, so nothing a user reads (the API, exports, the console, the CLI) sees an encoded body.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import zstandard

ZSTD = "zstd"
DROPPED = "dropped"
StreamEvents = Literal["compressed", "raw", "none"]
# Below this a body is kept as sent: zstd's frame header and the row's extra bytes eat most of what a small
# body would save, and every compression costs the writer a call.
MIN_COMPRESS_BYTES = 256
# zstd level 1: measured in docs/benchmarks.md ("Leaner rows"); higher levels cost the writer more CPU per
# stream row for a few percent fewer bytes on 2-10 KB bodies.
LEVEL = 1
ENCODING_COLUMNS = ("request_body_encoding", "response_body_encoding")


class BodyPacker:
    """The writer's encoder of bodies, with one reusable compressor (building one per body costs more than
    compressing a small body). Not thread-safe: one per writer, used on the writer's own thread."""

    def __init__(
        self, stream_events: StreamEvents = "compressed", request_over_bytes: int = 8192, level: int = LEVEL
    ) -> None:
        self.stream_events = stream_events
        self.request_over_bytes = request_over_bytes
        self._compressor = zstandard.ZstdCompressor(level=level)

    def _compressed(self, body: bytes) -> tuple[bytes, str | None]:
        if len(body) < MIN_COMPRESS_BYTES:
            return body, None
        packed = self._compressor.compress(body)
        if len(packed) >= len(body):  # incompressible (already compressed media, random bytes): keep as sent
            return body, None
        return packed, ZSTD

    def request(self, body: bytes | None) -> tuple[bytes | None, str | None]:
        """A request body and its encoding: compressed when larger than ``request_over_bytes`` (0: never)."""
        if body is None or not self.request_over_bytes or len(body) <= self.request_over_bytes:
            return body, None
        return self._compressed(body)

    def events(self, body: bytes | None, reassembled: bool) -> tuple[bytes | None, str | None]:
        """A stream's raw events and their encoding. ``none`` drops them only when the stream was reassembled
        into a message, so a stream feedgate could not read (or an error sent as a stream) keeps its bytes."""
        if not body or self.stream_events == "raw":
            return body, None
        if self.stream_events == "none" and reassembled:
            return None, DROPPED
        return self._compressed(body)


def decoded_body(body: Any, encoding: str | None, decompressor: zstandard.ZstdDecompressor | None = None) -> Any:
    """``body`` as sent. A dropped body stays None; an encoding this version does not know is an error, not
    bytes passed off as the body."""
    if body is None or encoding is None:
        return body
    if encoding == ZSTD:
        return (decompressor or zstandard.ZstdDecompressor()).decompress(bytes(body))
    raise ValueError(f"unknown body encoding {encoding!r}")


def decoded_row(row: dict[str, Any], decompressor: zstandard.ZstdDecompressor | None = None) -> dict[str, Any]:
    """``row`` (a dict from a store read) with its bodies decoded, in place; its encoding columns stay, so a
    reader can tell a dropped stream (``response_body_encoding == "dropped"``) from one never sent."""
    request_encoding = row.get("request_body_encoding")
    response_encoding = row.get("response_body_encoding")
    if request_encoding is None and response_encoding is None:
        return row
    decompressor = decompressor or zstandard.ZstdDecompressor()
    if "request_body" in row:
        row["request_body"] = decoded_body(row["request_body"], request_encoding, decompressor)
    if "response_body" in row:
        row["response_body"] = decoded_body(row["response_body"], response_encoding, decompressor)
    return row


def decoded_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    decompressor = zstandard.ZstdDecompressor()
    return [decoded_row(row, decompressor) for row in rows]


def events_dropped(row: dict[str, Any]) -> bool:
    """The row's stream events were not kept (``log.stream_events: none``)."""
    return row.get("response_body_encoding") == DROPPED
