"""Provider-shaped answers for ``feedgate demo``: OpenAI and Anthropic JSON bodies and SSE streams.

They follow the providers' wire formats closely enough that the real assemblers (``logrows/assemble*``)
rebuild, price and export them exactly as they do proxied traffic.
"""

from __future__ import annotations

import orjson


def openai_json(model: str, answer: str, tokens_in: int, tokens_out: int) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-demo",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    )


def openai_sse(model: str, answer: str, tokens_in: int, tokens_out: int) -> list[bytes]:
    head = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    words = answer.split(" ")
    pieces = [" ".join(words[k : k + 6]) + (" " if k + 6 < len(words) else "") for k in range(0, len(words), 6)]
    events = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{**head, "choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }
    )
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def anthropic_json(model: str, answer: str, tokens_in: int, tokens_out: int) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_demo",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    )


def anthropic_sse(model: str, answer: str, tokens_in: int, tokens_out: int) -> list[bytes]:
    def event(name: str, data: dict[str, object]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"

    start: dict[str, object] = {
        "id": "msg_demo",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": 1},
    }
    words = answer.split(" ")
    out = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for k in range(0, len(words), 6):
        piece = " ".join(words[k : k + 6]) + (" " if k + 6 < len(words) else "")
        out.append(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}))
    out.append(event("content_block_stop", {"index": 0}))
    out.append(event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": tokens_out}}))
    out.append(event("message_stop", {}))
    return out
