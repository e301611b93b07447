"""Turn a logged exchange's raw bytes into the facts the log needs.

Why this runs *after* the response: the proxy's hot path relays upstream bytes to the client
untouched and only tees a copy into a buffer. It never parses JSON, so a huge body or a long
stream never delays the client's first byte. Later the log writer calls these pure functions, in
batches, on the buffered bytes, when nobody is waiting on them.

So everything here is fast (orjson, one pass, no I/O) and never raises: malformed, truncated or
unexpected input gives whatever could be found, and garbage gives empty fields.

The shape is picked from the request path ("/chat/completions", "/completions", "/embeddings",
"/messages", "/responses" and "/responses/{id}"); ``provider_kind`` ("openai" or "anthropic") decides only for
paths not recognised, e.g. Vertex's ``...:streamRawPredict`` for Anthropic. A manual log names no path
(helicone-helpers reports "custom-model-nopath"), so there the body's own shape decides. The work is split over
``assemble_openai``, ``assemble_anthropic``, ``assemble_responses`` and ``assemble_common``; this module is
the API.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, NamedTuple

import orjson

from feedgate.logrows.assemble_anthropic import anthropic_message, anthropic_sse, anthropic_usage
from feedgate.logrows.assemble_common import EMPTY, Assembled, Usage, as_dict, as_list, as_str, loads
from feedgate.logrows.assemble_openai import openai_choices, openai_sse, openai_usage
from feedgate.logrows.assemble_responses import response_object, responses_sse

__all__ = [
    "Assembled",
    "RequestFacts",
    "Usage",
    "api_of",
    "assemble_json",
    "assemble_sse",
    "parsed_request_facts",
    "request_facts",
]

# /v1/responses, /v1/responses/{id} (a background response fetched) and /v1/responses/{id}/cancel: each answers
# with a response object. /v1/responses/{id}/input_items answers with a list, logged as another call.
_RESPONSES_PATH = re.compile(r"/responses(?:/[^/]+(?:/cancel)?)?$")
# The API each route belongs to, as GET /v1/request/{id} names it.
_API = {"chat": "chat", "responses": "responses", "completions": "completions", "embeddings": "embeddings"}


class RequestFacts(NamedTuple):
    """What the log needs from a request body. A body that is not a JSON object gives the defaults."""

    model: str | None = None
    is_stream: bool = False
    user: str | None = None  # "user", or Anthropic's metadata.user_id
    include_usage: bool = False  # stream_options.include_usage
    system_prompt: str | None = None
    # sha256 hex[:16] of the canonical conversation: {"messages", "system"}, or for the Responses API
    # {"input", "instructions", "previous_response_id"}
    messages_fingerprint: str | None = None
    previous_response_id: str | None = None  # the Responses API: the call this one continues


def _route(provider_kind: str, path: str) -> str:
    """'chat' | 'responses' | 'completions' | 'embeddings' | 'anthropic' | '' (another OpenAI-style path)."""
    p = path.split("?", 1)[0].rstrip("/")
    if p.endswith("/chat/completions"):
        return "chat"
    if _RESPONSES_PATH.search(p):
        return "responses"
    if p.endswith("/completions"):
        return "completions"
    if p.endswith("/embeddings"):
        return "embeddings"
    if p.endswith("/messages") or provider_kind == "anthropic":
        return "anthropic"
    return ""


def api_of(provider_kind: str, path: str, message: dict[str, Any] | None) -> str:
    """Which API a call used: "chat", "responses", "messages", "completions", "embeddings" or "other".

    The path decides; for a path feedgate does not know (a manual log's), the shape of the answer does.
    """
    route = _route(provider_kind, path)
    if route in _API and route != "anthropic":
        return _API[route]
    if path.rstrip("/").endswith("/messages"):
        return "messages"
    if isinstance(message, dict):
        if message.get("object") == "response":
            return "responses"
        if message.get("type") == "message":
            return "messages"
        if message.get("object") == "text_completion":
            return "completions"
        if isinstance(message.get("choices"), list):
            return "chat"
    return "other"


def _assemble_json(provider_kind: str, path: str, body: bytes) -> Assembled:
    data = loads(body)
    if not isinstance(data, dict):
        return EMPTY
    route = _route(provider_kind, path)
    if data.get("object") == "response" or (route == "responses" and isinstance(data.get("output"), list)):
        return response_object(data)
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
        route = _route(provider_kind, path) or _sniff(raw)
        if route == "responses":
            return responses_sse(raw)
        return anthropic_sse(raw) if route == "anthropic" else openai_sse(route == "completions", raw)
    except Exception:
        return EMPTY


_EVENT_TYPE = re.compile(rb'"type":\s*"(response\.|message_start|content_block_)')


def _sniff(raw: bytes) -> str:
    """The API a stream with no known path came from, by its first typed event: "responses", "anthropic" or ""."""
    found = _EVENT_TYPE.search(raw, 0, 4096)
    if found is None:
        return ""
    return "responses" if found.group(1) == b"response." else "anthropic"


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
    if data.get("instructions") is not None:  # the Responses API
        return as_str(data["instructions"])
    # Chat messages, or the Responses API's input items (a system or developer message among them).
    for m in as_list(data.get("messages")) or as_list(data.get("input")):
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            return _text_of(m.get("content"))
    return None


def _fingerprint(data: dict[str, Any], responses: bool) -> str | None:
    """Same conversation sent again -> same hash, whatever the key order or whitespace of the body."""
    canonical: dict[str, Any]
    if responses:
        if "input" not in data and "instructions" not in data:
            return None
        # The Responses API: the turn sent, its instructions, and the call it continues (its earlier turns).
        canonical = {key: data.get(key) for key in ("input", "instructions", "previous_response_id")}
    elif "messages" in data or "system" in data:
        canonical = {"messages": data.get("messages"), "system": data.get("system")}
    else:
        return None
    try:
        encoded = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
    return hashlib.sha256(encoded).hexdigest()[:16]


def request_facts(body: bytes, path: str = "") -> RequestFacts:
    """Facts of a request body (OpenAI or Anthropic) sent to ``path``. Never raises; non-JSON gives the defaults.

    The path tells a Responses API body (``input``, ``instructions``) from an embeddings one (``input`` too).
    """
    return parsed_request_facts(loads(body), path)


def parsed_request_facts(data: Any, path: str = "") -> RequestFacts:
    """``request_facts`` of a body already parsed (``None`` when it was not JSON), for a caller that reads it
    for more than its facts."""
    try:
        if not isinstance(data, dict):
            return RequestFacts()
        responses = _route("", path) == "responses" or (not path and "instructions" in data)
        return RequestFacts(
            model=as_str(data.get("model")),
            is_stream=data.get("stream") is True,
            user=as_str(data.get("user")) or as_str(as_dict(data.get("metadata")).get("user_id")),
            include_usage=as_dict(data.get("stream_options")).get("include_usage") is True,
            system_prompt=_system_prompt(data),
            messages_fingerprint=_fingerprint(data, responses),
            previous_response_id=as_str(data.get("previous_response_id")),
        )
    except Exception:
        return RequestFacts()
