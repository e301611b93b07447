"""The pieces every dialect's conversion shares: the ``Chat`` it produces and the OpenAI parts, calls and tools.

Split out of ``chat_messages.py`` so the Chat Completions, Messages and Responses dialects each convert in a
module of their own over one set of helpers. The rules they follow are listed in ``chat_messages.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(slots=True)
class Chat:
    input: list[JSON]  # messages before the answer
    answer: JSON  # the logged answer as an assistant message
    tools: list[JSON] | None
    parallel_tool_calls: bool | None


# --- content helpers ----------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
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


def parts(content: Any) -> str | list[JSON] | None:
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


def assistant_message(content: str | None, tool_calls: list[JSON]) -> JSON:
    msg: JSON = {"role": "assistant"}
    if content or not tool_calls:
        msg["content"] = content if content is not None else ""
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def function_call(call_id: str, name: Any, arguments: Any) -> JSON | None:
    if not isinstance(name, str) or not name:
        return None
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_tools(specs: Any) -> list[JSON]:
    """Function tools from OpenAI ``tools`` (Chat Completions or Responses), legacy ``functions`` or Anthropic
    ``tools``; provider-side tools (web search, file search, Anthropic's server tools) have no schema and go."""
    out: list[JSON] = []
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "function" and isinstance(spec.get("function"), dict):
            spec = spec["function"]  # OpenAI tool
        elif spec.get("type") == "function" and "name" in spec:  # the Responses API's flat function tool
            pass
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
