"""Result types and tolerant parsing helpers shared by the response assemblers.

See ``feedgate.logrows.assemble`` for why this work happens after the client got its answer.
Every helper here is total: wrong types give ``None``/empty values instead of exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson


class Usage(NamedTuple):
    """Token counts as the upstream reported them.

    OpenAI's ``input_tokens`` (prompt_tokens) *includes* the cached part (``cache_read_tokens``).
    Anthropic's ``input_tokens`` *excludes* cache reads and writes, so its total adds them back.
    ``reasoning_tokens`` are part of ``output_tokens`` (and billed as output), reported apart by OpenAI.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None


class Assembled(NamedTuple):
    """The final answer of one exchange, rebuilt from the logged response bytes.

    Named tuples rather than frozen dataclasses: one is built for every logged request, and a frozen
    dataclass's ``__init__`` costs several times more.
    """

    message: dict[str, Any] | None = None  # provider-shaped: chat.completion, text_completion or message
    text: str | None = None  # plain assistant text, for search and export
    finish_reason: str | None = None
    model: str | None = None  # the model the upstream reported
    usage: Usage = Usage()
    response_id: str | None = None


EMPTY = Assembled()


def loads(raw: bytes | str) -> Any:
    """orjson.loads, or None when the input is not JSON."""
    try:
        return orjson.loads(raw)
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return None


def as_int(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def first_int(d: dict[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` whose value is an integer."""
    for key in keys:
        v = as_int(d.get(key))
        if v is not None:
            return v
    return None


def as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _sse(raw: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Split an SSE body into (event name, data lines); tolerates CRLF, comments, a truncated tail."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    event = ""
    data: list[bytes] = []
    for line in raw.split(b"\n"):
        if not line:
            if data:
                yield event, data
            event, data = "", []
        elif line[0] != 0x3A:  # lines starting with ':' are comments (keep-alives)
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace").strip()
    if data:
        yield event, data


def _plain_data_events(raw: bytes) -> list[Any] | None:
    """The common case in one C call: every event a single ``data: {json}`` line and nothing cut off.

    Parsing each event separately and splitting lines in Python costs several times more; anything
    unusual (event names, comments, CRLF, a truncated tail) returns None for the careful parser.
    """
    if b"\r" in raw:
        return None
    payloads = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        if not block.startswith(b"data: ") or b"\n" in block:
            return None
        if block != b"data: [DONE]":
            payloads.append(block[6:])
    try:
        parsed = orjson.loads(b"[" + b",".join(payloads) + b"]")
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


def sse_events(raw: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON object) per SSE event. Undecodable payloads ([DONE], a cut-off tail) are skipped."""
    plain = _plain_data_events(raw)
    if plain is not None:
        for obj in plain:
            if isinstance(obj, dict):
                yield "", obj
        return
    for event, lines in _sse(raw):
        obj = loads(b"\n".join(lines)) if len(lines) > 1 else None
        if isinstance(obj, dict):
            yield event, obj
            continue
        # One data line per event, or several events run together without the blank line between.
        for line in lines:
            if line != b"[DONE]":
                obj = loads(line)
                if isinstance(obj, dict):
                    yield event, obj
