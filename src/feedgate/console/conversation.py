"""A logged call as something a person reads: its messages, roles, tool calls, images as placeholders.

The conversation comes from the analysis layer's one conversion of every dialect into chat messages
(``analysis/chat_messages.py``: Chat Completions, Anthropic Messages, the Responses API), so the console
shows what an export would hold. A call that conversion cannot read (an error answer, embeddings, a body
that is not JSON) falls back to the request's own ``messages`` or ``input``, read as plainly as possible; the
raw JSON view shows everything anyway. Nothing here fetches anything: an image is a line of text naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from feedgate.analysis.chat_messages import ExportRow, join_text, to_chat

PREVIEW_CHARS = 160


@dataclass(slots=True)
class Part:
    kind: str  # "text" or "image"
    text: str


@dataclass(slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass(slots=True)
class Conversation:
    system: list[Message]
    messages: list[Message]
    answer: Message | None
    read_as_chat: bool  # False: the fallback reading; the raw view is the better guide


def image_placeholder(url: Any) -> str:
    """What stands for an image: its kind and size for inline data, its address for a link (never fetched)."""
    if not isinstance(url, str):
        return "[image]"
    if url.startswith("data:"):
        media = url[5:].split(";", 1)[0] or "image"
        return f"[image: {media}, {len(url) * 3 // 4 // 1024} kB inline]"
    return f"[image: {url[:200]}]"


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Part("text", content)] if content else []
    out: list[Part] = []
    for item in content if isinstance(content, list) else []:
        if not isinstance(item, dict):
            if isinstance(item, str):
                out.append(Part("text", item))
            continue
        kind = item.get("type")
        if kind in ("image_url", "input_image", "image"):
            image = item.get("image_url", item.get("source"))
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(image, dict) and image.get("type") == "base64":
                url = f"data:{image.get('media_type', 'image')};base64,{image.get('data', '')}"
            out.append(Part("image", image_placeholder(url)))
        else:
            text = item.get("text", item.get("content"))
            if isinstance(text, str):
                out.append(Part("text", text))
            elif text is not None:
                out.append(Part("text", json.dumps(text, ensure_ascii=False, indent=2)))
    return out


def _message(raw: dict[str, Any]) -> Message:
    message = Message(str(raw.get("role") or "?"), _parts(raw.get("content")))
    for call in raw.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            message.tool_calls.append(
                ToolCall(str(call.get("id") or ""), str(function.get("name") or ""), _pretty(function.get("arguments")))
            )
    if raw.get("tool_call_id") is not None:
        message.tool_call_id = str(raw["tool_call_id"])
    return message


def _pretty(arguments: Any) -> str:
    """Tool-call arguments indented when they are JSON, as sent otherwise."""
    if isinstance(arguments, str):
        try:
            return json.dumps(json.loads(arguments), ensure_ascii=False, indent=2)
        except ValueError:
            return arguments
    return json.dumps(arguments, ensure_ascii=False, indent=2)


def conversation(row: dict[str, Any]) -> Conversation:
    """The conversation of one call in the shape ``analysis/request_rows.helicone_row`` gives it."""
    request_body, response_body = row.get("request_body"), row.get("response_body")
    chat = to_chat(
        ExportRow(
            request_id=str(row.get("request_id")),
            provider=str(row.get("provider") or ""),
            path=row.get("request_path"),
            request_json=request_body if isinstance(request_body, dict) else None,
            response_message=response_body if isinstance(response_body, dict) else None,
        )
    )
    if chat is not None:
        messages = [_message(m) for m in chat.input]
        return Conversation(
            system=[m for m in messages if m.role == "system"],
            messages=[m for m in messages if m.role != "system"],
            answer=_message(chat.answer),
            read_as_chat=True,
        )
    return _fallback(request_body, row.get("response_text"))


def _fallback(body: Any, answer_text: Any) -> Conversation:
    raw: list[Any] = []
    system: list[Message] = []
    if isinstance(body, dict):
        found = body.get("messages", body.get("input", body.get("prompt")))
        raw = found if isinstance(found, list) else [{"role": "user", "content": found}] if found else []
        if body.get("system") is not None:
            system.append(Message("system", _parts(body["system"])))
        if isinstance(body.get("instructions"), str):
            system.append(Message("system", _parts(body["instructions"])))
    messages = [_message(m) for m in raw if isinstance(m, dict)]
    system += [m for m in messages if m.role in ("system", "developer")]
    answer = Message("assistant", _parts(answer_text)) if isinstance(answer_text, str) and answer_text else None
    return Conversation(system, [m for m in messages if m.role not in ("system", "developer")], answer, False)


def last_user_text(body: Any) -> str | None:
    """The text of the last user message of a request body in any dialect, for the list's preview."""
    if not isinstance(body, dict):
        return None
    found = body.get("messages", body.get("input", body.get("prompt")))
    if isinstance(found, str):
        return found
    for item in reversed(found if isinstance(found, list) else []):
        if isinstance(item, dict) and item.get("role", "user") == "user":
            text = join_text(item.get("content"), " ")
            if text is None and isinstance(item.get("content"), list):
                text = " ".join(p.text for p in _parts(item["content"]))
            if text:
                return text
    return None


def preview(text: Any) -> str:
    """The start of a text on one line, for a table cell."""
    if not isinstance(text, str) or not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
