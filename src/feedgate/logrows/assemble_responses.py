"""OpenAI's Responses API (``/v1/responses``): facts from a ``response`` object, and reassembly of its stream.

A stream is rebuilt into the ``response`` object the JSON answer would have held. The terminal event
(``response.completed``, ``response.incomplete`` or ``response.failed``) carries that object whole, so it
is taken as it is; only a stream cut off before its end is rebuilt from what did arrive: the items
``response.output_item.done`` finished, and, for an item still open, its ``output_item.added`` head and the
deltas since (output text, refusal, function-call arguments, reasoning summary). An ``error`` event makes a
cut-off response ``failed`` with that error, as the API itself reports it.

The finish reason of a Responses call is why it ended: the ``incomplete_details.reason`` of an incomplete
response (``max_output_tokens``, ``content_filter``), else its ``status`` (``completed``, ``failed``,
``queued``, ``in_progress``, ``cancelled``).
"""

from __future__ import annotations

import re
from typing import Any

from feedgate.logrows.assemble_common import (
    EMPTY,
    Assembled,
    Usage,
    as_dict,
    as_int,
    as_list,
    as_str,
    sse_events,
)

TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_LIVE_EVENTS = ("response.created", "response.in_progress", "response.queued")
# The last terminal event's data, found by a byte search from the end so a long stream is not parsed whole.
_TERMINAL = re.compile(rb'"type":"response\.(?:completed|incomplete|failed)"')


def responses_usage(u: Any) -> Usage:
    """A Responses ``usage``: input tokens include the cached ones, output tokens the reasoning ones."""
    u = as_dict(u)
    if not u:
        return Usage()
    inp, out = as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))
    total = as_int(u.get("total_tokens"))
    if total is None and inp is not None and out is not None:
        total = inp + out
    cached = as_int(as_dict(u.get("input_tokens_details")).get("cached_tokens"))
    reasoning = as_int(as_dict(u.get("output_tokens_details")).get("reasoning_tokens"))
    return Usage(inp, out, total, cached, None, reasoning)


def output_text(output: Any) -> str | None:
    """The answer's text, as the SDK's ``response.output_text`` joins it; a refusal when there is no text."""
    texts: list[str] = []
    refusals: list[str] = []
    for item in as_list(output):
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part in as_list(item.get("content")):
            part = as_dict(part)
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                refusals.append(part["refusal"])
    if texts:
        return "".join(texts)
    return "".join(refusals) if refusals else None


def finish_reason(response: dict[str, Any]) -> str | None:
    status = as_str(response.get("status"))
    if status == "incomplete":
        return as_str(as_dict(response.get("incomplete_details")).get("reason")) or status
    return status


def response_object(response: dict[str, Any]) -> Assembled:
    """Facts of a complete ``{"object": "response", ...}``."""
    return Assembled(
        message=response,
        text=output_text(response.get("output")),
        finish_reason=finish_reason(response),
        model=as_str(response.get("model")),
        usage=responses_usage(response.get("usage")),
        response_id=as_str(response.get("id")),
    )


def _terminal(raw: bytes) -> dict[str, Any] | None:
    """The response of the stream's last terminal event, parsing only that event when it can be found."""
    matches = list(_TERMINAL.finditer(raw, max(0, len(raw) - (1 << 22))))
    if matches:
        last = matches[-1]
        cut = raw.rfind(b"\n\n", 0, last.start())
        start = cut + 2 if cut >= 0 else 0
        for _, data in sse_events(raw[start:]):
            if data.get("type") in TERMINAL_EVENTS and isinstance(data.get("response"), dict):
                found: dict[str, Any] = data["response"]
                return found
    return None


class _Rebuild:
    """A response put together from the events of a stream that never reached its terminal event."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.error: dict[str, Any] | None = None
        self.added: dict[int, dict[str, Any]] = {}
        self.done: dict[int, dict[str, Any]] = {}
        self.texts: dict[tuple[int, int, str], list[str]] = {}  # (output, content, kind) -> deltas
        self.args: dict[int, list[str]] = {}
        self.summaries: dict[tuple[int, int], list[str]] = {}

    def feed(self, raw: bytes) -> dict[str, Any] | None:
        """Merge every event; returns a terminal event's response when the stream has one after all."""
        for event, data in sse_events(raw):
            kind = as_str(data.get("type")) or event
            index = as_int(data.get("output_index"))
            if kind in TERMINAL_EVENTS and isinstance(data.get("response"), dict):
                found: dict[str, Any] = data["response"]
                return found
            if kind in _LIVE_EVENTS:
                self.head = dict(as_dict(data.get("response")))
            elif kind == "error":
                self.error = {k: data.get(k) for k in ("code", "message") if data.get(k) is not None}
            elif index is None:
                continue
            elif kind == "response.output_item.added" and isinstance(data.get("item"), dict):
                self.added[index] = dict(data["item"])
            elif kind == "response.output_item.done" and isinstance(data.get("item"), dict):
                self.done[index] = data["item"]
            elif kind in ("response.output_text.delta", "response.refusal.delta"):
                part = "output_text" if kind == "response.output_text.delta" else "refusal"
                key = (index, as_int(data.get("content_index")) or 0, part)
                self._append(self.texts.setdefault(key, []), data.get("delta"))
            elif kind == "response.function_call_arguments.delta":
                self._append(self.args.setdefault(index, []), data.get("delta"))
            elif kind == "response.reasoning_summary_text.delta":
                key2 = (index, as_int(data.get("summary_index")) or 0)
                self._append(self.summaries.setdefault(key2, []), data.get("delta"))
        return None

    @staticmethod
    def _append(parts: list[str], delta: Any) -> None:
        if isinstance(delta, str):
            parts.append(delta)

    def _open_item(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        """An item the stream began and never finished, with what its deltas said."""
        kind = item.get("type")
        if kind == "message":
            content = []
            for (i, _, part), deltas in sorted(self.texts.items()):
                if i == index:
                    key = "text" if part == "output_text" else "refusal"
                    content.append(
                        {"type": part, key: "".join(deltas), **({"annotations": []} if key == "text" else {})}
                    )
            item["content"] = content
        elif kind == "function_call" and index in self.args:
            item["arguments"] = "".join(self.args[index])
        elif kind == "reasoning":
            item["summary"] = [
                {"type": "summary_text", "text": "".join(deltas)}
                for (i, _), deltas in sorted(self.summaries.items())
                if i == index
            ]
        return item

    def response(self) -> dict[str, Any] | None:
        if not self.head and not self.added and not self.done and self.error is None:
            return None
        response = {"object": "response", **self.head}
        indexes = sorted(set(self.added) | set(self.done))
        response["output"] = [self.done[i] if i in self.done else self._open_item(i, self.added[i]) for i in indexes]
        if self.error is not None:
            response["status"], response["error"] = "failed", self.error
        return response


def responses_sse(raw: bytes) -> Assembled:
    """Rebuild the final ``response`` object from a Responses API event stream."""
    response = _terminal(raw)
    if response is None:
        rebuild = _Rebuild()
        response = rebuild.feed(raw) or rebuild.response()
    if response is None:
        return EMPTY
    return response_object(response)
