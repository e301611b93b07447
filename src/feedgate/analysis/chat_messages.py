"""A logged exchange as OpenAI chat messages: the one shape every training format starts from.

The gateway logs Chat Completions, Responses API and Anthropic Messages traffic, so everything is first
normalised into one shape, OpenAI chat messages with function tools, which is what the fine-tuning formats
expect (``training_formats.py``). Pure: rows in, dicts out (``json.dumps``-able), no I/O. The Responses API's
own rules are in ``responses_messages.py``; the helpers all dialects share in ``chat_parts.py``.

Normalisation rules (kept identical for every dialect so equal conversations give
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

from feedgate.analysis.chat_parts import (
    JSON,
    Chat,
    as_list,
    assistant_message,
    function_call,
    function_tools,
    join_text,
    parts,
)
from feedgate.analysis.responses_messages import EarlierTurn, response_tool_calls, responses_chat

__all__ = [
    "JSON",
    "Chat",
    "EarlierTurn",
    "ExportRow",
    "answer_tool_calls",
    "join_text",
    "Inputs",
    "to_chat",
    "to_chat_messages",
]


@dataclass(slots=True)
class ExportRow:
    """One logged request/response, as needed for dataset export."""

    request_id: str
    provider: str  # "openai" | "anthropic" | any other (OpenAI-compatible) provider
    path: str | None
    request_json: JSON | None  # parsed request body
    # OpenAI chat.completion, Anthropic message or Responses API response (streams reassembled)
    response_message: JSON | None
    rating: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    datetime_utc: str = ""
    # A Responses call made with previous_response_id: the logged calls it continues, oldest first.
    earlier: list[EarlierTurn] = field(default_factory=list)


# --- OpenAI dialect -------------------------------------------------------------------


def _openai_assistant(msg: JSON, legacy_ids: list[str]) -> JSON | None:
    calls: list[JSON] = []
    for tc in as_list(msg.get("tool_calls")):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if isinstance(fn, dict):
            call = function_call(str(tc.get("id") or f"call_{len(legacy_ids)}"), fn.get("name"), fn.get("arguments"))
            if call is not None:
                calls.append(call)
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        call = function_call(f"call_{len(legacy_ids)}", fc.get("name"), fc.get("arguments"))
        if call is not None:
            legacy_ids.append(call["id"])
            calls.append(call)
    content = join_text(msg.get("content"), "")
    if content is None and isinstance(msg.get("refusal"), str):
        content = msg["refusal"]
    if not content and not calls:
        return None
    return assistant_message(content, calls)


# What a dialect makes of a request alone: input messages, the ids given to legacy function calls (the answer's
# own continue from them), tools, parallel_tool_calls. Rows that sent the same body share it (``Inputs``).
RequestSide = tuple[list[JSON], list[str], list[JSON] | None, bool | None]


def _openai_input(req: JSON) -> RequestSide:
    legacy_ids: list[str] = []
    messages: list[JSON] = []
    for m in as_list(req.get("messages")):
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            text = join_text(m.get("content"), "\n\n")
            if text is not None:
                messages.append({"role": "system", "content": text})
        elif role == "user":
            content = parts(m.get("content"))
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
    tools = function_tools(req.get("tools")) + function_tools(req.get("functions"))
    ptc = req.get("parallel_tool_calls")
    return messages, legacy_ids, tools or None, ptc if isinstance(ptc, bool) else None


def _openai_chat(req: JSON, resp: JSON, inputs: Inputs | None = None) -> Chat | None:
    choices = resp.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        return None
    messages, legacy_ids, tools, ptc = inputs.side("openai", req) if inputs is not None else _openai_input(req)
    answer = _openai_assistant(first["message"], list(legacy_ids))
    if answer is None:
        return None
    return Chat(messages, answer, tools, ptc)


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
            call = _tool_use_call(block)
            if call is not None:
                calls.append(call)
    return ("".join(texts) if texts else None), calls


def _anthropic_calls(blocks: Any) -> list[JSON]:
    """``_anthropic_assistant``'s calls alone: an export asks every answer for them, and most have none."""
    calls: list[JSON] = []
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call = _tool_use_call(block)
                if call is not None:
                    calls.append(call)
    return calls


def _tool_use_call(block: JSON) -> JSON | None:
    return function_call(str(block.get("id") or ""), block.get("name"), json.dumps(block.get("input", {})))


def _anthropic_input(req: JSON) -> RequestSide:
    messages: list[JSON] = []
    system = join_text(req.get("system"), "\n\n")
    if system is not None:
        messages.append({"role": "system", "content": system})
    for m in as_list(req.get("messages")):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if role == "assistant":
            text, calls = _anthropic_assistant(content)
            if text or calls:
                messages.append(assistant_message(text, calls))
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
            user_content = parts(rest)
            if user_content is not None:
                messages.append({"role": "user", "content": user_content})
    tools = function_tools(req.get("tools"))
    choice = req.get("tool_choice")
    disable = choice.get("disable_parallel_tool_use") if isinstance(choice, dict) else None
    return messages, [], tools or None, (not disable) if isinstance(disable, bool) else None


def _anthropic_chat(req: JSON, resp: JSON, inputs: Inputs | None = None) -> Chat | None:
    messages, _, tools, parallel = inputs.side("anthropic", req) if inputs is not None else _anthropic_input(req)
    text, calls = _anthropic_assistant(resp.get("content"))
    if messages and messages[-1]["role"] == "assistant" and "tool_calls" not in messages[-1]:
        # Prefill: the answer continues it. Sliced, not popped: the request side may be shared (Inputs).
        text = messages[-1]["content"] + (text or "")
        messages = messages[:-1]
    if not text and not calls:
        return None
    return Chat(messages, assistant_message(text, calls), tools, parallel)


class Inputs:
    """The request sides converted so far, by request body, for an export that meets the same conversation in
    many rows: each is converted once. The parsed body is held with its result, so its id stays its own;
    bounded, so memory stays flat. Rows sharing one must treat it as read-only, as every format does."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._sides: dict[tuple[str, int], tuple[JSON, RequestSide]] = {}

    def side(self, dialect: str, req: JSON) -> RequestSide:
        found = self._sides.get((dialect, id(req)))
        if found is not None and found[0] is req:
            return found[1]
        side = _openai_input(req) if dialect == "openai" else _anthropic_input(req)
        if len(self._sides) >= self.size:
            self._sides.clear()
        self._sides[(dialect, id(req))] = (req, side)
        return side

    def clear(self) -> None:
        self._sides.clear()


def to_chat(row: ExportRow, inputs: Inputs | None = None) -> Chat | None:
    """The row as chat messages; ``inputs`` shares the conversion of a request body among the rows that sent it
    (they must hold the same parsed object: ``export_run`` parses each distinct body once)."""
    req, resp = row.request_json, row.response_message
    if not isinstance(req, dict) or not isinstance(resp, dict):
        return None
    if resp.get("object") == "response":
        chat = responses_chat(req, resp, row.earlier)
    elif isinstance(resp.get("choices"), list):
        chat = _openai_chat(req, resp, inputs)
    elif resp.get("type") == "message" or (resp.get("role") == "assistant" and "content" in resp):
        chat = _anthropic_chat(req, resp, inputs)
    else:
        return None  # embeddings, errors, legacy completions, unknown shapes
    if chat is None or not _asks(chat.input):
        return None
    return chat


def _asks(messages: list[JSON]) -> bool:
    # A loop, not any() over a generator: this runs once per exported row, and the generator costs more than
    # the few messages it usually looks at before the first user message.
    for message in messages:
        if message["role"] == "user":
            return True
    return False


def answer_tool_calls(message: Any) -> list[JSON] | None:
    """The tool calls of a logged answer in any dialect, as OpenAI chat tool calls; None when it made none."""
    if not isinstance(message, dict):
        return None
    if message.get("object") == "response":
        calls = response_tool_calls(message)
    elif isinstance(message.get("choices"), list):
        first = message["choices"][0] if message["choices"] else None
        msg = first.get("message") if isinstance(first, dict) else None
        if isinstance(msg, dict) and not msg.get("tool_calls") and not msg.get("function_call"):
            return None  # most answers: no need to normalise the text only to find no calls
        reply = _openai_assistant(msg, []) if isinstance(msg, dict) else None
        calls = reply.get("tool_calls", []) if reply is not None else []
    elif message.get("type") == "message":
        calls = _anthropic_calls(message.get("content"))
    else:
        calls = []
    return calls or None


def to_chat_messages(row: ExportRow) -> tuple[list[JSON], list[JSON] | None] | None:
    """``(messages, tools)`` for a row: the input messages followed by the logged answer
    as the final assistant message, and the function tools offered (``None`` if none).

    ``None`` when the row has no usable chat input or answer (embeddings, error rows...).
    """
    chat = to_chat(row)
    if chat is None:
        return None
    return [*chat.input, chat.answer], chat.tools
