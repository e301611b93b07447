"""Responses API bodies on their own: streams cut off at every kind of item, and conversion to chat messages.

The gateway tests (``test_responses_api.py``) cover whole answers through the SDK; these cover what a real
stream can end with that the fake's switches do not reach: an item left open in the middle of its deltas.
"""

from __future__ import annotations

import json
from typing import Any

from feedgate.analysis.chat_messages import ExportRow, to_chat_messages
from feedgate.logrows.assemble import api_of, assemble_json, assemble_sse, request_facts

PATH = "/v1/responses"


def sse(*events: dict[str, Any], crlf: bool = False) -> bytes:
    raw = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    return raw.replace(b"\n", b"\r\n") if crlf else raw


def added(index: int, **item: Any) -> dict[str, Any]:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


HEAD: dict[str, Any] = {
    "id": "resp_1",
    "object": "response",
    "status": "in_progress",
    "model": "o4-mini",
    "output": [],
    "usage": None,
}


def test_stream_cut_in_the_middle_of_each_kind_of_item_keeps_what_arrived() -> None:
    raw = sse(
        {"type": "response.created", "response": HEAD},
        added(0, id="rs_1", type="reasoning", summary=[]),
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "Think"},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "ing."},
        added(1, id="m", type="message", role="assistant", content=[]),
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "Half an "},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "answer"},
        added(2, id="fc", type="function_call", call_id="call_9", name="f", arguments=""),
        {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '{"a": '},
    )
    got = assemble_sse("openai", PATH, raw)
    assert got.text == "Half an answer" and got.finish_reason == "in_progress" and got.model == "o4-mini"
    assert got.message is not None
    reasoning, message, call = got.message["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thinking."}]
    assert message["content"] == [{"type": "output_text", "text": "Half an answer", "annotations": []}]
    assert call["arguments"] == '{"a": ' and call["call_id"] == "call_9"  # cut JSON kept as it came


def test_refusal_and_error_event() -> None:
    raw = sse(
        {"type": "response.created", "response": HEAD},
        added(0, id="m", type="message", content=[]),
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "I can't help."},
        {"type": "error", "code": "server_error", "message": "boom"},
        crlf=True,
    )
    got = assemble_sse("openai", PATH, raw)
    assert got.text == "I can't help." and got.finish_reason == "failed"
    assert got.message is not None and got.message["error"] == {"code": "server_error", "message": "boom"}


def test_terminal_event_wins_and_usage_is_read() -> None:
    final = {
        **HEAD,
        "status": "incomplete",
        "incomplete_details": {"reason": "content_filter"},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "ok"}]}],
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 17,
        },
    }
    raw = sse({"type": "response.created", "response": HEAD}, {"type": "response.incomplete", "response": final})
    got = assemble_sse("openai", PATH, raw)
    assert (got.text, got.finish_reason, got.response_id) == ("ok", "content_filter", "resp_1")
    assert got.usage == (10, 7, 17, 4, None, 5)
    assert assemble_json("openai", PATH, json.dumps(final).encode()) == got


def test_api_and_path_recognition() -> None:
    assert api_of("openai", "/v1/responses/resp_1", None) == "responses"
    assert api_of("openai", "/v1/responses/resp_1/cancel", None) == "responses"
    assert api_of("openai", "/v1/responses/resp_1/input_items", None) == "other"
    assert api_of("openai", "/v1/embeddings", None) == "embeddings"
    assert api_of("anthropic", "/v1/messages/count_tokens", None) == "other"
    assert api_of("openai", "custom-model-nopath", {"object": "response"}) == "responses"
    # A stream on an unknown path is read by its events' shape.
    raw = sse({"type": "response.completed", "response": {**HEAD, "status": "completed"}})
    assert assemble_sse("openai", "custom-model-nopath", raw).finish_reason == "completed"


def test_request_facts_of_a_responses_body_and_an_embeddings_body_with_the_same_input() -> None:
    body = b'{"model":"gpt-4.1","input":"hello","instructions":"Be brief.","previous_response_id":"resp_0"}'
    facts = request_facts(body, PATH)
    assert facts.system_prompt == "Be brief." and facts.previous_response_id == "resp_0"
    assert facts.messages_fingerprint is not None
    assert request_facts(body.replace(b"resp_0", b"resp_1"), PATH).messages_fingerprint != facts.messages_fingerprint
    assert (
        request_facts(b'{"model":"text-embedding-3-small","input":"hello"}', "/v1/embeddings").messages_fingerprint
        is None
    )
    developer = b'{"model":"gpt-4.1","input":[{"role":"developer","content":"Rules."},{"role":"user","content":"hi"}]}'
    assert request_facts(developer, PATH).system_prompt == "Rules."


def test_input_items_convert_to_chat_messages() -> None:
    request = {
        "model": "gpt-4.1",
        "instructions": "Be kind.",
        "input": [
            {"role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                ],
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
            {"type": "function_call", "call_id": "c1", "name": "look", "arguments": '{"q": 1}'},
            {"type": "reasoning", "id": "rs", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
        ],
        "tools": [{"type": "function", "name": "look", "parameters": {"type": "object"}}, {"type": "web_search"}],
        "parallel_tool_calls": False,
    }
    answer = {
        "object": "response",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "A cat."}]}],
    }
    got = to_chat_messages(ExportRow("r", "openai", PATH, request, answer))
    assert got is not None
    messages, tools = got
    assert messages == [
        {"role": "system", "content": "Be kind."},
        {"role": "system", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q": 1}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        {"role": "assistant", "content": "A cat."},
    ]
    assert tools == [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}]
    # A response holding only reasoning (or nothing) has no answer to train on.
    empty = {"object": "response", "output": [{"type": "reasoning", "summary": []}]}
    assert to_chat_messages(ExportRow("r", "openai", PATH, request, empty)) is None
