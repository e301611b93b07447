"""Turn a logged exchange's raw bytes into the facts the log needs.

Why this runs *after* the response: the proxy's hot path relays upstream bytes to the client
untouched and only tees a copy into a buffer. It never parses JSON, so a huge body or a long
stream never delays the client's first byte. Later the log writer calls these pure functions, in
batches, on the buffered bytes, when nobody is waiting on them.

So everything here is fast (orjson, one pass, no I/O) and never raises: malformed, truncated or
unexpected input gives whatever could be found, and garbage gives empty fields.

The shape is picked from the request path ("/chat/completions", "/completions", "/embeddings",
"/messages"); ``provider_kind`` ("openai" or "anthropic") decides only for paths not recognised,
e.g. Vertex's ``...:streamRawPredict`` for Anthropic. The work is split over
``assemble_openai``, ``assemble_anthropic`` and ``assemble_common``; this module is the API.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import orjson

from feedgate.logrows.assemble_anthropic import anthropic_message, anthropic_sse, anthropic_usage
from feedgate.logrows.assemble_common import EMPTY, Assembled, Usage, as_dict, as_list, as_str, loads
from feedgate.logrows.assemble_openai import openai_choices, openai_sse, openai_usage

__all__ = ["Assembled", "RequestFacts", "Usage", "assemble_json", "assemble_sse", "request_facts"]


class RequestFacts(NamedTuple):
    """What the log needs from a request body. A body that is not a JSON object gives the defaults."""

    model: str | None = None
    is_stream: bool = False
    user: str | None = None  # "user", or Anthropic's metadata.user_id
    include_usage: bool = False  # stream_options.include_usage
    system_prompt: str | None = None
    messages_fingerprint: str | None = None  # sha256 hex[:16] of canonical {"messages", "system"}


def _route(provider_kind: str, path: str) -> str:
    """'chat' | 'completions' | 'embeddings' | 'anthropic' | '' (another OpenAI-style path)."""
    p = path.split("?", 1)[0].rstrip("/")
    if p.endswith("/chat/completions"):
        return "chat"
    if p.endswith("/completions"):
        return "completions"
    if p.endswith("/embeddings"):
        return "embeddings"
    if p.endswith("/messages") or provider_kind == "anthropic":
        return "anthropic"
    return ""


def _assemble_json(provider_kind: str, path: str, body: bytes) -> Assembled:
    data = loads(body)
    if not isinstance(data, dict):
        return EMPTY
    route = _route(provider_kind, path)
    if data.get("type") == "message" or (route == "anthropic" and isinstance(data.get("content"), list)):
        return anthropic_message(data)
    choices = data.get("choices")
    if isinstance(choices, list) and route != "embeddings":
        return openai_choices(data, choices)
    # Embeddings, errors and other shapes: no answer, only what identifies and meters the call.
    usage = anthropic_usage if route == "anthropic" else openai_usage
    model, rid = as_str(data.get("model")), as_str(data.get("id"))
    return Assembled(None, None, None, model, usage(data.get("usage")), rid)


def assemble_json(provider_kind: str, path: str, body: bytes) -> Assembled:
    """Facts of a non-streamed response body. Never raises."""
    try:
        return _assemble_json(provider_kind, path, body)
    except Exception:  # a shape nobody foresaw must not take the log writer down
        return EMPTY


def assemble_sse(provider_kind: str, path: str, raw: bytes) -> Assembled:
    """Reassemble a streamed (text/event-stream) response into its final answer. Never raises."""
    try:
        if raw[:256].lstrip()[:1] == b"{":  # a stream request answered with a plain JSON (error) body
            return _assemble_json(provider_kind, path, raw)
        route = _route(provider_kind, path)
        return anthropic_sse(raw) if route == "anthropic" else openai_sse(route == "completions", raw)
    except Exception:
        return EMPTY


def _text_of(content: Any) -> str | None:
    """A message content (a string, or a list of text parts/blocks joined by newlines) as plain text."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in as_list(content):
        text = part if isinstance(part, str) else as_str(as_dict(part).get("text"))
        if text is not None:
            texts.append(text)
    return "\n".join(texts) if texts else None


def _system_prompt(data: dict[str, Any]) -> str | None:
    if data.get("system") is not None:  # Anthropic: a string or a list of text blocks
        return _text_of(data["system"])
    for m in as_list(data.get("messages")):
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            return _text_of(m.get("content"))
    return as_str(data.get("instructions"))  # the Responses API


def _fingerprint(data: dict[str, Any]) -> str | None:
    """Same conversation sent again -> same hash, whatever the key order or whitespace of the body."""
    if "messages" not in data and "system" not in data:
        return None
    canonical = {"messages": data.get("messages"), "system": data.get("system")}
    try:
        encoded = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
    return hashlib.sha256(encoded).hexdigest()[:16]


def request_facts(body: bytes) -> RequestFacts:
    """Facts of a request body (OpenAI or Anthropic). Never raises; non-JSON gives the defaults."""
    try:
        data = loads(body)
        if not isinstance(data, dict):
            return RequestFacts()
        return RequestFacts(
            model=as_str(data.get("model")),
            is_stream=data.get("stream") is True,
            user=as_str(data.get("user")) or as_str(as_dict(data.get("metadata")).get("user_id")),
            include_usage=as_dict(data.get("stream_options")).get("include_usage") is True,
            system_prompt=_system_prompt(data),
            messages_fingerprint=_fingerprint(data),
        )
    except Exception:
        return RequestFacts()
