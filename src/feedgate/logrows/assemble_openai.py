"""OpenAI (and Azure / OpenAI-compatible): facts from JSON bodies and reassembly of SSE streams."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from feedgate.logrows.assemble_common import (
    EMPTY,
    Assembled,
    Usage,
    as_dict,
    as_int,
    as_list,
    as_str,
    first_int,
    loads,
    sse_events,
)

# Streamed text fields concatenated per choice: content, refusal, and the reasoning text of some
# OpenAI-compatible servers (DeepSeek/vLLM "reasoning_content", OpenRouter "reasoning").
_TEXT_KEYS = ("content", "refusal", "reasoning_content", "reasoning")
_HEAD_KEYS = ("id", "created", "model", "system_fingerprint", "service_tier")


def openai_usage(u: Any) -> Usage:
    u = as_dict(u)
    if not u:
        return Usage()
    inp = first_int(u, "prompt_tokens", "input_tokens")  # input_/output_tokens: the Responses API
    out = first_int(u, "completion_tokens", "output_tokens")
    total = as_int(u.get("total_tokens"))
    if total is None and inp is not None and out is not None:
        total = inp + out
    details = as_dict(u.get("prompt_tokens_details")) or as_dict(u.get("input_tokens_details"))
    cached = as_int(details.get("cached_tokens"))
    if cached is None:
        cached = as_int(u.get("prompt_cache_hit_tokens"))  # DeepSeek
    output_details = as_dict(u.get("completion_tokens_details")) or as_dict(u.get("output_tokens_details"))
    return Usage(inp, out, total, cached, None, as_int(output_details.get("reasoning_tokens")))


def openai_choices(data: dict[str, Any], choices: list[Any]) -> Assembled:
    """Facts of a complete chat.completion or text_completion body."""
    first = next((c for c in choices if isinstance(c, dict)), {})
    msg = first.get("message")
    if isinstance(msg, dict):  # chat.completion
        text = as_str(msg.get("content"))
        if text is None:  # a refused request's answer is the refusal text
            text = as_str(msg.get("refusal"))
    else:  # text_completion
        text = as_str(first.get("text"))
    return Assembled(
        message=data,
        text=text,
        finish_reason=as_str(first.get("finish_reason")),
        model=as_str(data.get("model")),
        usage=openai_usage(data.get("usage")),
        response_id=as_str(data.get("id")),
    )


@dataclass(slots=True)
class _ToolAcc:
    id: str | None = None
    type: str | None = None
    name: str | None = None
    args: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceAcc:
    role: str | None = None
    finish_reason: str | None = None
    parts: dict[str, list[str]] = field(default_factory=dict)  # _TEXT_KEYS, and "text" for legacy
    tools: dict[int, _ToolAcc] = field(default_factory=dict)
    function_call: _ToolAcc | None = None  # the deprecated "functions" API

    def joined(self, key: str) -> str | None:
        parts = self.parts.get(key)
        return None if parts is None else "".join(parts)


def _merge_function(acc: _ToolAcc, fn: dict[str, Any]) -> None:
    name = as_str(fn.get("name"))
    if name and not acc.name:  # sent once; some compatible servers repeat it in every delta
        acc.name = name
    args = fn.get("arguments")
    if isinstance(args, str):
        acc.args.append(args)
    elif isinstance(args, dict):  # a few compatible servers send the arguments already parsed
        acc.args.append(orjson.dumps(args).decode())


def _merge_tool_call(c: _ChoiceAcc, tc: dict[str, Any]) -> None:
    tid, idx = as_str(tc.get("id")), as_int(tc.get("index"))
    if idx is None:  # index omitted by some compatible servers: a new id starts a new call
        last = max(c.tools, default=-1)
        known = c.tools[last].id if last >= 0 else None
        idx = last + 1 if last < 0 or (tid is not None and known not in (None, tid)) else last
    t = c.tools.setdefault(idx, _ToolAcc())
    if tid and not t.id:
        t.id = tid
    t.type = as_str(tc.get("type")) or t.type
    _merge_function(t, as_dict(tc.get("function")))


def _merge_choice(acc: dict[int, _ChoiceAcc], pos: int, ch: dict[str, Any]) -> None:
    idx = as_int(ch.get("index"))
    if idx is None:
        idx = pos
    c = acc.setdefault(idx, _ChoiceAcc())
    finish = as_str(ch.get("finish_reason"))
    if finish:
        c.finish_reason = finish
    text = ch.get("text")
    if isinstance(text, str):
        c.parts.setdefault("text", []).append(text)
    delta = as_dict(ch.get("delta"))
    if not delta:
        return
    role = as_str(delta.get("role"))
    if role:
        c.role = role
    for key in _TEXT_KEYS:
        v = delta.get(key)
        if isinstance(v, str):
            c.parts.setdefault(key, []).append(v)
    for tc in as_list(delta.get("tool_calls")):
        if isinstance(tc, dict):
            _merge_tool_call(c, tc)
    fc = delta.get("function_call")
    if isinstance(fc, dict):
        c.function_call = c.function_call or _ToolAcc()
        _merge_function(c.function_call, fc)


def _chat_choice(idx: int, c: _ChoiceAcc) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": c.role or "assistant", "content": c.joined("content")}
    for key in _TEXT_KEYS[1:]:
        if key in c.parts:
            msg[key] = c.joined(key)
    if c.tools:
        msg["tool_calls"] = [
            {
                "id": t.id,
                "type": t.type or "function",
                "function": {"name": t.name, "arguments": "".join(t.args)},
            }
            for _, t in sorted(c.tools.items())
        ]
    if c.function_call:
        msg["function_call"] = {"name": c.function_call.name, "arguments": "".join(c.function_call.args)}
    return {"index": idx, "message": msg, "finish_reason": c.finish_reason}


def _plain_content(chunk: dict[str, Any], choices: dict[int, _ChoiceAcc], head: dict[str, Any]) -> bool:
    """Merge the commonest chunk (one choice, a content delta and nothing else) fast; False otherwise.

    Most chunks of a stream look like this, and the general merge costs several times more per chunk.
    It only applies once the first chunk (role, id, model) has gone through the general path.
    """
    if not head:
        return False
    listed = chunk.get("choices")
    if type(listed) is not list or len(listed) != 1:
        return False
    choice = listed[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None or choice.get("index", 0) != 0:
        return False
    delta = choice.get("delta")
    if type(delta) is not dict or len(delta) != 1 or "usage" in chunk and chunk["usage"] is not None:
        return False
    content = delta.get("content")
    acc = choices.get(0)
    if type(content) is not str or acc is None or "logprobs" in choice and choice["logprobs"] is not None:
        return False
    acc.parts.setdefault("content", []).append(content)
    return True


# A content-only delta, what most chunks of a chat stream carry. Inside a JSON string every quote is
# escaped, so this matches the delta object itself, never text that merely looks like one.
_CONTENT_DELTA = re.compile(rb'"delta":\{"content":("[^"\\]*(?:\\.[^"\\]*)*")\}')


@dataclass(slots=True)
class _ContentRun:
    before: bytes  # the events ahead of the run
    sample: dict[str, Any]  # one chunk of the run with its content emptied: they all share its shape
    contents: list[str]
    after: bytes  # the events behind it


def _content_run(raw: bytes) -> _ContentRun | None:
    """The middle of a chat stream when it is a run of chunks identical but for their content.

    Every chunk of an answer repeats the same id, model and fingerprint around its delta, so when the
    bytes between consecutive content deltas are the same each time, the chunks differ only in their
    content: one of them, parsed, stands for all, and the contents decode in one call. That replaces a
    JSON parse and a Python-level merge per chunk, most of the cost of logging a stream.
    """
    parts = _CONTENT_DELTA.split(raw)  # [before + head, content, tail + head, content, ..., tail + after]
    count = len(parts) // 2
    if count < 3:
        return None
    between = parts[2]
    if between.count(b"\n\n") != 1 or parts[2:-1:2].count(between) != count - 1:
        return None
    tail, head = between.split(b"\n\n")
    if not head.startswith(b"data: ") or b"\n" in head or b"\n" in tail:
        return None
    before, after = parts[0], parts[-1]
    if not before.endswith(head) or not after.startswith(tail):
        return None
    before, after = before[: len(before) - len(head)], after[len(tail) :]
    if (before and not before.endswith(b"\n\n")) or (after and not after.startswith(b"\n\n")):
        return None
    sample = loads(head[6:] + b'"delta":{"content":""}' + tail)
    contents = loads(b"[" + b",".join(parts[1::2]) + b"]")
    if not isinstance(sample, dict) or not isinstance(contents, list):
        return None
    return _ContentRun(before, sample, contents, after)


class _Stream:
    """The state of one stream being reassembled, fed chunk by chunk in order."""

    __slots__ = ("legacy", "head", "usage", "choices")

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self.head: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.choices: dict[int, _ChoiceAcc] = {}

    def feed(self, raw: bytes) -> None:
        for _, chunk in sse_events(raw):
            self.merge(chunk)

    def merge(self, chunk: dict[str, Any]) -> None:
        head = self.head
        if _plain_content(chunk, self.choices, head):
            return
        obj = chunk.get("object")
        if obj == "text_completion":
            self.legacy = True
        elif obj == "chat.completion.chunk":
            self.legacy = False
        src = as_dict(chunk.get("response")) or chunk  # Responses API events nest the response
        for key in _HEAD_KEYS:
            # Azure's first chunk (prompt_filter_results only) has id "", model "" and created 0.
            if key not in head and src.get(key) not in (None, "", 0):
                head[key] = src[key]
        u = src.get("usage") or as_dict(chunk.get("x_groq")).get("usage")  # last one wins
        if isinstance(u, dict):
            self.usage = u
        for pos, ch in enumerate(as_list(chunk.get("choices"))):
            if isinstance(ch, dict):
                _merge_choice(self.choices, pos, ch)

    def feed_run(self, run: _ContentRun) -> bool:
        """Feed a stream split around its run of content chunks, merging the run at once; False (and this
        state spoiled) when the run's chunks would not take ``_plain_content``'s path one by one."""
        self.feed(run.before)
        if not _plain_content(run.sample, self.choices, self.head):
            return False
        parts = self.choices[0].parts["content"]
        parts.pop()  # the sample's empty content
        parts.extend(run.contents)
        self.feed(run.after)
        return True


def openai_sse(legacy: bool, raw: bytes) -> Assembled:
    """Rebuild a chat.completion (or, if ``legacy``, a text_completion) from its chunk stream.

    A chunk's own ``object`` field overrides ``legacy``; the path is only the first guess.
    """
    stream = _Stream(legacy)
    run = _content_run(raw)
    if run is None or not stream.feed_run(run):
        stream = _Stream(legacy)
        stream.feed(raw)
    legacy, head, usage, choices = stream.legacy, stream.head, stream.usage, stream.choices
    if not head and not choices and usage is None:
        return EMPTY
    model, rid = as_str(head.get("model")), as_str(head.get("id"))
    if not choices:  # usage-only stream, or a shape without choices (e.g. the Responses API)
        return Assembled(None, None, None, model, openai_usage(usage), rid)
    message: dict[str, Any] = {
        "id": head.get("id"),
        "object": "text_completion" if legacy else "chat.completion",
        "created": head.get("created"),
        "model": head.get("model"),
    }
    message.update((k, head[k]) for k in _HEAD_KEYS[3:] if k in head)
    first = choices[min(choices)]
    if legacy:
        message["choices"] = [
            {"index": i, "text": c.joined("text") or "", "finish_reason": c.finish_reason}
            for i, c in sorted(choices.items())
        ]
        text = first.joined("text")
    else:
        message["choices"] = [_chat_choice(i, c) for i, c in sorted(choices.items())]
        text = first.joined("content")
        if text is None:
            text = first.joined("refusal")
    if usage is not None:
        message["usage"] = usage
    return Assembled(message, text, first.finish_reason, model, openai_usage(usage), rid)
