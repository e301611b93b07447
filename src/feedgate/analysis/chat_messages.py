"""A logged exchange as OpenAI chat messages: the one shape every training format starts from.

The gateway logs both OpenAI-style and Anthropic-style traffic, so everything is first normalised into
one shape, OpenAI chat messages with function tools, which is what the fine-tuning formats expect
(``training_formats.py``). Pure: rows in, dicts out (``json.dumps``-able), no I/O.

Normalisation rules (kept identical for both dialects so equal conversations give
equal exports, which also makes deduplication work across providers):

* roles are only ``system``, ``user``, ``assistant`` and ``tool`` (``developer`` becomes
  ``system``; legacy ``function`` messages and ``function_call`` become tool calls with
  synthetic ids ``call_<n>``);
* content made of a single text part is a string; several parts or images stay a list
  of OpenAI parts (``text`` / ``image_url``); system text parts are joined by a blank
  line, assistant text parts are concatenated, tool-result text parts joined by newlines;
  ``thinking`` blocks, documents and audio are dropped;
* tool calls are ``{"id", "type": "function", "function": {"name", "arguments": str}}``
  and tools are ``{"type": "function", "function": {"name", "description"?, "parameters"?}}``;
  provider-side tools without a schema (Anthropic server tools) are dropped;
* an Anthropic assistant prefill (the request's last message is from the assistant)
  is merged into the answer, because that is what the user actually saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chat", "ExportRow", "join_text", "to_chat", "to_chat_messages"]

JSON = dict[str, Any]


@dataclass(slots=True)
class ExportRow:
    """One logged request/response, as needed for dataset export."""

    request_id: str
    provider: str  # "openai" | "anthropic" | any other (OpenAI-compatible) provider
    path: str | None
    request_json: JSON | None  # parsed request body
    response_message: JSON | None  # OpenAI chat.completion or Anthropic message (streams reassembled)
    rating: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    datetime_utc: str = ""


@dataclass(slots=True)
class Chat:
    input: list[JSON]  # messages before the answer
    answer: JSON  # the logged answer as an assistant message
    tools: list[JSON] | None
    parallel_tool_calls: bool | None


# --- content helpers ----------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    """``value`` if it is a list, else nothing: logged bodies are whatever the client sent, valid or not."""
    return value if isinstance(value, list) else []


def join_text(content: Any, sep: str) -> str | None:
    """The text parts of ``content`` (a string or a list of parts/blocks) joined by ``sep``."""
    items = [content] if isinstance(content, str) else content if isinstance(content, list) else []
    texts: list[str] = []
    for part in items:
        text = part.get("text", part.get("refusal")) if isinstance(part, dict) else part
        if isinstance(text, str) and (not isinstance(part, dict) or part.get("type") in ("text", "refusal", None)):
            texts.append(text)
    return sep.join(texts) if texts else None


def _parts(content: Any) -> str | list[JSON] | None:
    """User content (OpenAI parts or Anthropic blocks) as OpenAI ``text``/``image_url`` parts."""
    if isinstance(content, str):
        return content
    parts: list[JSON] = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, dict) else None
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        elif kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and part.get("image_url"):
            image = part["image_url"]
            parts.append({"type": "image_url", "image_url": {"url": image} if isinstance(image, str) else image})
        elif kind == "image" and isinstance(part.get("source"), dict):  # Anthropic
            src = part["source"]
            if src.get("type") == "base64":
                url = f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif src.get("type") == "url" and isinstance(src.get("url"), str):
                parts.append({"type": "image_url", "image_url": {"url": src["url"]}})
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text  # a single text part is plain string content
    return parts or None


def _assistant(content: str | None, tool_calls: list[JSON]) -> JSON:
    msg: JSON = {"role": "assistant"}
    if content or not tool_calls:
        msg["content"] = content if content is not None else ""
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def _call(call_id: str, name: Any, arguments: Any) -> JSON | None:
    if not isinstance(name, str) or not name:
        return None
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tools(specs: Any) -> list[JSON]:
    """Function tools from OpenAI ``tools``, legacy ``functions`` or Anthropic ``tools``."""
    out: list[JSON] = []
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "function" and isinstance(spec.get("function"), dict):
            spec = spec["function"]  # OpenAI tool
        elif "input_schema" in spec:  # Anthropic client tool (server tools have no schema)
            spec = {**spec, "parameters": spec["input_schema"]}
        elif "type" in spec:  # other provider-side tools
            continue
        name, description, parameters = spec.get("name"), spec.get("description"), spec.get("parameters")
        if isinstance(name, str) and name:
            fn: JSON = {"name": name}
            if isinstance(description, str):
                fn["description"] = description
            if isinstance(parameters, dict):
                fn["parameters"] = parameters
            out.append({"type": "function", "function": fn})
    return out


# --- OpenAI dialect -------------------------------------------------------------------


def _openai_assistant(msg: JSON, legacy_ids: list[str]) -> JSON | None:
    calls: list[JSON] = []
    for tc in _list(msg.get("tool_calls")):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict):
            call = _call(str(tc.get("id") or f"call_{len(legacy_ids)}"), fn.get("name"), fn.get("arguments"))
            if call is not None:
                calls.append(call)
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        call = _call(f"call_{len(legacy_ids)}", fc.get("name"), fc.get("arguments"))
        if call is not None:
            legacy_ids.append(call["id"])
            calls.append(call)
    content = join_text(msg.get("content"), "")
    if content is None and isinstance(msg.get("refusal"), str):
        content = msg["refusal"]
    if not content and not calls:
        return None
    return _assistant(content, calls)


def _openai_chat(req: JSON, resp: JSON) -> Chat | None:
    choices = resp.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        return None
    legacy_ids: list[str] = []
    messages: list[JSON] = []
    for m in _list(req.get("messages")):
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            text = join_text(m.get("content"), "\n\n")
            if text is not None:
                messages.append({"role": "system", "content": text})
        elif role == "user":
            content = _parts(m.get("content"))
            if content is not None:
                messages.append({"role": "user", "content": content})
        elif role == "assistant":
            msg = _openai_assistant(m, legacy_ids)
            if msg is not None:
                messages.append(msg)
        elif role in ("tool", "function"):
            call_id = m.get("tool_call_id") or (legacy_ids[-1] if legacy_ids else "call_0")
            text = join_text(m.get("content"), "\n") or ""
            messages.append({"role": "tool", "tool_call_id": str(call_id), "content": text})
    answer = _openai_assistant(first["message"], legacy_ids)
    if answer is None:
        return None
    tools = _tools(req.get("tools")) + _tools(req.get("functions"))
    ptc = req.get("parallel_tool_calls")
    return Chat(messages, answer, tools or None, ptc if isinstance(ptc, bool) else None)


# --- Anthropic dialect ----------------------------------------------------------------


def _anthropic_assistant(blocks: Any) -> tuple[str | None, list[JSON]]:
    if isinstance(blocks, str):
        return blocks, []
    texts: list[str] = []
    calls: list[JSON] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            call = _call(str(block.get("id") or ""), block.get("name"), json.dumps(block.get("input", {})))
            if call is not None:
                calls.append(call)
    return ("".join(texts) if texts else None), calls


def _anthropic_chat(req: JSON, resp: JSON) -> Chat | None:
    messages: list[JSON] = []
    system = join_text(req.get("system"), "\n\n")
    if system is not None:
        messages.append({"role": "system", "content": system})
    for m in _list(req.get("messages")):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if role == "assistant":
            text, calls = _anthropic_assistant(content)
            if text or calls:
                messages.append(_assistant(text, calls))
        elif role == "user":
            blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
            rest: list[Any] = []
            for block in blocks:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    text = join_text(block.get("content"), "\n") or ""
                    messages.append(
                        {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}
                    )
                else:
                    rest.append(block)
            user_content = _parts(rest)
            if user_content is not None:
                messages.append({"role": "user", "content": user_content})
    text, calls = _anthropic_assistant(resp.get("content"))
    if messages and messages[-1]["role"] == "assistant" and "tool_calls" not in messages[-1]:
        text = messages.pop()["content"] + (text or "")  # prefill: the answer continues it
    if not text and not calls:
        return None
    tools = _tools(req.get("tools"))
    choice = req.get("tool_choice")
    disable = choice.get("disable_parallel_tool_use") if isinstance(choice, dict) else None
    return Chat(messages, _assistant(text, calls), tools or None, (not disable) if isinstance(disable, bool) else None)


def to_chat(row: ExportRow) -> Chat | None:
    req, resp = row.request_json, row.response_message
    if not isinstance(req, dict) or not isinstance(resp, dict):
        return None
    if isinstance(resp.get("choices"), list):
        chat = _openai_chat(req, resp)
    elif resp.get("type") == "message" or (resp.get("role") == "assistant" and "content" in resp):
        chat = _anthropic_chat(req, resp)
    else:
        return None  # embeddings, errors, legacy completions, unknown shapes
    if chat is None or not any(m["role"] == "user" for m in chat.input):
        return None
    return chat


def to_chat_messages(row: ExportRow) -> tuple[list[JSON], list[JSON] | None] | None:
    """``(messages, tools)`` for a row: the input messages followed by the logged answer
    as the final assistant message, and the function tools offered (``None`` if none).

    ``None`` when the row has no usable chat input or answer (embeddings, error rows...).
    """
    chat = to_chat(row)
    if chat is None:
        return None
    return [*chat.input, chat.answer], chat.tools
