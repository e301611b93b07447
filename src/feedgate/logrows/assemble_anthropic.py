"""Anthropic Messages API: facts from a JSON message and reassembly of its SSE stream."""

from __future__ import annotations

from typing import Any

from feedgate.logrows.assemble_common import (
    EMPTY,
    Assembled,
    Usage,
    as_dict,
    as_int,
    as_list,
    as_str,
    loads,
    sse_events,
)

# Delta type -> (key in the delta, key in the block it extends; "_json" collects tool input).
_DELTAS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "signature_delta": ("signature", "signature"),
    "input_json_delta": ("partial_json", "_json"),
}
# The block to rebuild when a delta arrives for an index whose content_block_start was lost.
_ORPHAN_BLOCK = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "tool_use"}


def anthropic_usage(u: Any) -> Usage:
    u = as_dict(u)
    if not u:
        return Usage()
    inp, out = as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))
    read, write = as_int(u.get("cache_read_input_tokens")), as_int(u.get("cache_creation_input_tokens"))
    # Anthropic's input_tokens counts only the uncached part of the prompt: cache reads and cache
    # writes are reported (and billed) apart, so all four add up to the tokens actually processed.
    total = inp + out + (read or 0) + (write or 0) if inp is not None and out is not None else None
    return Usage(inp, out, total, read, write)


def _blocks_text(content: Any) -> str | None:
    texts = [
        b["text"]
        for b in as_list(content)
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]
    return "".join(texts) if texts else None  # citations split one text into several blocks


def anthropic_message(msg: dict[str, Any]) -> Assembled:
    """Facts of a complete ``{"type": "message", ...}`` object."""
    return Assembled(
        message=msg,
        text=_blocks_text(msg.get("content")),
        finish_reason=as_str(msg.get("stop_reason")),
        model=as_str(msg.get("model")),
        usage=anthropic_usage(msg.get("usage")),
        response_id=as_str(msg.get("id")),
    )


def _finish_block(block: dict[str, Any], frags: dict[str, list[str]]) -> dict[str, Any]:
    for key, parts in frags.items():
        if key != "_json":
            prev = block.get(key)
            block[key] = (prev if isinstance(prev, str) else "") + "".join(parts)
            continue
        raw = "".join(parts)
        if not raw.strip():  # a tool called without arguments streams "" and keeps input {}
            continue
        parsed = loads(raw)
        if isinstance(parsed, dict):
            block["input"] = parsed
        else:  # cut-off or invalid JSON: keep what was streamed, never guess at its content
            block["input"] = {}
            block["_raw_input"] = raw
    return block


def anthropic_sse(raw: bytes) -> Assembled:
    """Rebuild the final message from message_start / content_block_* / message_delta events."""
    start: dict[str, Any] | None = None
    usage: dict[str, Any] = {}
    stop: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    frags: dict[int, dict[str, list[str]]] = {}
    for event, data in sse_events(raw):
        kind = as_str(data.get("type")) or event
        if kind == "message_start":
            start = dict(as_dict(data.get("message")))
            usage.update(as_dict(start.get("usage")))
        elif kind == "content_block_start":
            idx, block = as_int(data.get("index")), data.get("content_block")
            if idx is not None and isinstance(block, dict):
                blocks[idx] = dict(block)
        elif kind == "content_block_delta":
            idx, delta = as_int(data.get("index")), as_dict(data.get("delta"))
            dtype = as_str(delta.get("type")) or ""
            src_key, dst_key = _DELTAS.get(dtype, ("", ""))
            value = delta.get(src_key)
            if idx is not None and isinstance(value, str):
                if idx not in blocks:
                    btype = _ORPHAN_BLOCK.get(dtype, "text")
                    blocks[idx] = {"type": btype, "input": {}} if btype == "tool_use" else {"type": btype}
                frags.setdefault(idx, {}).setdefault(dst_key, []).append(value)
            elif idx in blocks and dtype == "citations_delta" and isinstance(delta.get("citation"), dict):
                blocks[idx].setdefault("citations", []).append(delta["citation"])
        elif kind == "message_delta":
            delta = as_dict(data.get("delta"))
            stop.update((k, delta[k]) for k in ("stop_reason", "stop_sequence") if k in delta)
            # message_delta usage is cumulative (output_tokens, newer APIs also the input side).
            usage.update((k, v) for k, v in as_dict(data.get("usage")).items() if v is not None)
        # content_block_stop, message_stop, ping and error carry nothing the message needs.
    if start is None and not blocks and not usage and not stop:
        return EMPTY
    message: dict[str, Any] = {"id": None, "type": "message", "role": "assistant", "model": None}
    message.update(start or {})
    message["content"] = [_finish_block(b, frags.get(i, {})) for i, b in sorted(blocks.items())]
    message.setdefault("stop_reason", None)
    message.setdefault("stop_sequence", None)
    message.update(stop)
    message["usage"] = usage
    return anthropic_message(message)
