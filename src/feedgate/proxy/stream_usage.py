"""Always know a stream's token usage, without the client seeing any difference.

OpenAI only reports usage in a stream when asked (``stream_options.include_usage``). When a client did
not ask, feedgate asks on its behalf and then hides the traces of that from the client: the final
usage-only chunk (``"choices": []``) and the ``"usage": null`` field the upstream adds to every chunk.
Clients that asked themselves get the upstream's bytes untouched, so this costs them nothing.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_USAGE_NULL = re.compile(rb',\s*"usage"\s*:\s*null')
_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_EVENT_END = re.compile(rb"\r?\n\r?\n")
_STREAMING_PATHS = ("/chat/completions", "/completions")
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')


def ensure_stream_usage(path: str, body: bytes) -> bytes | None:
    """The body to send instead, with usage requested; None when nothing needs to change."""
    # Most bodies are not streams: a byte search settles that without parsing the JSON.
    if not path.endswith(_STREAMING_PATHS) or _STREAM_TRUE.search(body) is None:
        return None
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or payload.get("stream") is not True:
        return None
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return None
    payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    try:
        return orjson.dumps(payload)
    except TypeError:  # nested deeper than orjson writes (254 levels): forward the body as sent
        return None


class UsageChunkFilter:
    """Feeds upstream SSE bytes, emits them minus what the injected usage request added."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._partial + chunk if self._partial else chunk
        ends = list(_EVENT_END.finditer(data))
        if not ends:
            self._partial = data
            return b""
        cut = ends[-1].end()
        self._partial = data[cut:]
        out: list[bytes] = []
        start = 0
        for end in ends:
            event = data[start : end.end()]
            start = end.end()
            if _EMPTY_CHOICES.search(event) and b'"usage"' in event:
                continue
            out.append(_USAGE_NULL.sub(b"", event))
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._partial = self._partial, b""
        return rest
