"""A Responses API call as OpenAI chat messages, so every export treats it like a chat call.

The rules (beside those ``chat_messages.py`` lists for every dialect):

* ``instructions`` is the system message. Only the call's own: the API does not carry the instructions of the
  calls before it into this one.
* ``input`` as a string is one user message; as items: messages keep their role (``developer`` becomes
  ``system``), their ``input_text``/``output_text`` parts become text and ``input_image`` parts image URLs;
  ``function_call`` items become the assistant's tool calls (joined to the assistant message before them);
  ``function_call_output`` items become ``tool`` messages; ``reasoning`` items and references are dropped.
* the answer is the ``output``: its message text and its function calls, as one assistant message; the
  reasoning summary is not part of it.
* a call made with ``previous_response_id`` continues a conversation the provider kept. When feedgate logged
  the calls before it (``EarlierTurn``, oldest first), their inputs and answers come before this call's input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feedgate.analysis.chat_parts import (
    JSON,
    Chat,
    as_list,
    assistant_message,
    function_call,
    function_tools,
    join_text,
)


@dataclass(slots=True)
class EarlierTurn:
    """A logged call this one continues: its request body and its answer (the response object)."""

    request_json: JSON | None
    response_message: JSON | None


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value if isinstance(value, list) else []


def _content(content: Any) -> str | list[JSON] | None:
    """Input content (a string or Responses parts) as a string, or OpenAI ``text``/``image_url`` parts."""
    if isinstance(content, str):
        return content
    parts: list[JSON] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            parts.append({"type": "text", "text": part["refusal"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: JSON = {"url": part["image_url"]}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts or None


def _call(item: JSON) -> JSON | None:
    return function_call(str(item.get("call_id") or item.get("id") or ""), item.get("name"), item.get("arguments"))


def _add_calls(messages: list[JSON], calls: list[JSON]) -> None:
    """Tool calls join the assistant message just before them (one turn may say something and call tools)."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).extend(calls)
        if not last.get("content"):
            last.pop("content", None)
    else:
        messages.append(assistant_message(None, calls))


def input_messages(items: Any, messages: list[JSON]) -> None:
    """Append the chat messages of a Responses ``input`` (a string or items) to ``messages``."""
    for item in _items(items):
        if not isinstance(item, dict):
            continue
        kind, role = item.get("type"), item.get("role")
        if kind == "function_call":
            call = _call(item)
            if call is not None:
                _add_calls(messages, [call])
        elif kind == "function_call_output":
            output = item.get("output")
            result = output if isinstance(output, str) else join_text(output, "\n") or ""
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": result})
        elif role in ("system", "developer"):
            system = join_text(_content(item.get("content")), "\n\n")
            if system is not None:
                messages.append({"role": "system", "content": system})
        elif role == "user":
            content = _content(item.get("content"))
            if content is not None:
                messages.append({"role": "user", "content": content})
        elif role == "assistant":
            text = join_text(_content(item.get("content")), "")
            if text:
                messages.append(assistant_message(text, []))
        # reasoning items, item references and provider-side tool calls carry nothing a chat line can hold


def response_tool_calls(response: JSON) -> list[JSON]:
    """The function calls of a response's ``output``, as OpenAI chat tool calls."""
    calls = []
    for item in as_list(response.get("output")):
        if isinstance(item, dict) and item.get("type") == "function_call":
            call = _call(item)
            if call is not None:
                calls.append(call)
    return calls


def _answer(response: JSON) -> JSON | None:
    texts: list[str] = []
    for item in as_list(response.get("output")):
        if isinstance(item, dict) and item.get("type") == "message":
            text = join_text(_content(item.get("content")), "")
            if text:
                texts.append(text)
    calls = response_tool_calls(response)
    text = "".join(texts) or None
    if not text and not calls:
        return None
    return assistant_message(text, calls)


def responses_chat(req: JSON, resp: JSON, earlier: list[EarlierTurn]) -> Chat | None:
    """The chat a Responses call continued and answered; None when the answer holds neither text nor calls."""
    answer = _answer(resp)
    if answer is None:
        return None
    messages: list[JSON] = []
    instructions = req.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    for turn in earlier:
        if isinstance(turn.request_json, dict):
            input_messages(turn.request_json.get("input"), messages)
        reply = _answer(turn.response_message) if isinstance(turn.response_message, dict) else None
        if reply is not None:
            messages.append(reply)
    input_messages(req.get("input"), messages)
    tools = function_tools(req.get("tools"))
    parallel = req.get("parallel_tool_calls")
    return Chat(messages, answer, tools or None, parallel if isinstance(parallel, bool) else None)
