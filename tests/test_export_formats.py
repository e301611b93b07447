"""Every dataset export format, validated line by line, for OpenAI and Anthropic rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feedgate.analysis.chat_messages import ExportRow, Inputs, to_chat, to_chat_messages
from feedgate.analysis.training_formats import few_shot, openai_chat_lines, openai_preference_lines, split

ROLES = {"system", "user", "assistant", "tool"}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Get weather", "parameters": WEATHER_SCHEMA},
}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Get weather", "input_schema": WEATHER_SCHEMA}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
}


def completion(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def anthropic_message(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": list(blocks),
        "stop_reason": "end_turn",
    }


def oa_row(
    rid: str, messages: list[dict[str, Any]], answer: dict[str, Any], rating: bool | None = None, **extra: Any
) -> ExportRow:
    return ExportRow(
        rid,
        "openai",
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": messages, **extra},
        answer,
        rating=rating,
    )


def an_row(rid: str, request: dict[str, Any], answer: dict[str, Any], rating: bool | None = None) -> ExportRow:
    return ExportRow(
        rid,
        "anthropic",
        "/v1/messages",
        {"model": "claude", "max_tokens": 100, **request},
        answer,
        rating=rating,
    )


# OpenAI multi-turn tool conversation and its Anthropic twin.
OA_TOOL_TURN = oa_row(
    "oa-tool",
    [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ],
    completion("It is sunny in Paris."),
    rating=True,
    tools=[OPENAI_TOOL],
    parallel_tool_calls=False,
)
AN_TOOL_TURN = an_row(
    "an-tool",
    {
        "system": "You are helpful.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "x"},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}],
            },
        ],
        "tools": [ANTHROPIC_TOOL, {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    },
    anthropic_message({"type": "text", "text": "It is sunny "}, {"type": "text", "text": "in Paris."}),
    rating=True,
)
OA_CALLS_TOOL = oa_row(
    "oa-call",
    [{"role": "user", "content": "Weather in Paris?"}],
    completion(None, [CALL]),
    tools=[OPENAI_TOOL],
)
HAIKU = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write a haiku"}]
HAIKU_ROWS = [
    oa_row("h-unrated", HAIKU, completion("Haiku zero")),
    oa_row("h-bad", HAIKU, completion("Bad haiku"), rating=False),
    oa_row("h-good", HAIKU, completion("Good haiku"), rating=True),
    oa_row("h-good-2", HAIKU, completion("Another good haiku"), rating=True),
]
UNUSABLE = [
    ExportRow(
        "emb",
        "openai",
        "/v1/embeddings",
        {"model": "e", "input": "x"},
        {"object": "list", "data": [{"embedding": [0.1]}]},
    ),
    ExportRow(
        "err",
        "openai",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}]},
        {"error": {"message": "rate limited"}},
    ),
    an_row(
        "an-err",
        {"messages": [{"role": "user", "content": "hi"}]},
        {"type": "error", "error": {"type": "overloaded_error"}},
    ),
    ExportRow("no-resp", "openai", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, None),
    oa_row("empty-answer", [{"role": "user", "content": "hi"}], completion("")),
    oa_row("no-user", [{"role": "system", "content": "x"}], completion("hello")),
    ExportRow(
        "legacy",
        "openai",
        "/v1/completions",
        {"prompt": "x"},
        {"object": "text_completion", "choices": [{"text": "y"}]},
    ),
]
ALL_ROWS = [OA_TOOL_TURN, AN_TOOL_TURN, OA_CALLS_TOOL, *HAIKU_ROWS, *UNUSABLE]


def logged_answer_text(row: ExportRow) -> str | None:
    resp = row.response_message
    assert resp is not None
    if "choices" in resp:
        content: str | None = resp["choices"][0]["message"]["content"]
        return content
    return "".join(b["text"] for b in resp["content"] if b["type"] == "text") or None


def check_messages(messages: list[dict[str, Any]]) -> None:
    assert messages and messages[-1]["role"] == "assistant"
    call_ids: set[str] = set()
    for m in messages:
        assert m["role"] in ROLES
        assert set(m) <= {"role", "content", "tool_calls", "tool_call_id", "name"}
        if m["role"] == "assistant":
            assert "content" in m or m.get("tool_calls")
            for tc in m.get("tool_calls", []):
                assert tc["type"] == "function" and tc["id"]
                assert isinstance(json.loads(tc["function"]["arguments"]), dict)
                call_ids.add(tc["id"])
        if m["role"] == "tool":
            assert m["tool_call_id"] in call_ids and isinstance(m["content"], str)


def check_tools(tools: list[dict[str, Any]]) -> None:
    for t in tools:
        assert t["type"] == "function" and set(t["function"]) <= {"name", "description", "parameters"}


# --- to_chat_messages -----------------------------------------------------------------


@pytest.mark.parametrize("row", [r for r in ALL_ROWS if r not in UNUSABLE], ids=lambda r: r.request_id)
def test_chat_messages_shape_and_final_answer(row: ExportRow) -> None:
    result = to_chat_messages(row)
    assert result is not None
    messages, tools = result
    json.dumps(messages)
    check_messages(messages)
    check_tools(tools or [])
    assert messages[-1].get("content") == logged_answer_text(row)


@pytest.mark.parametrize("row", UNUSABLE, ids=lambda r: r.request_id)
def test_unusable_rows_give_none(row: ExportRow) -> None:
    assert to_chat_messages(row) is None


def test_anthropic_row_exports_to_same_chat_shape_as_openai() -> None:
    assert to_chat_messages(AN_TOOL_TURN) == to_chat_messages(OA_TOOL_TURN)
    messages, tools = to_chat_messages(AN_TOOL_TURN)  # type: ignore[misc]
    assert messages == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny in Paris."},
    ]
    assert tools == [OPENAI_TOOL]  # the server tool without a schema is dropped


def test_tool_call_answer_is_preserved() -> None:
    messages, tools = to_chat_messages(OA_CALLS_TOOL)  # type: ignore[misc]
    assert messages[-1] == {"role": "assistant", "tool_calls": [CALL]}
    assert tools == [OPENAI_TOOL]
    an = an_row(
        "a",
        {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [ANTHROPIC_TOOL]},
        anthropic_message({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}),
    )
    assert to_chat_messages(an) == (messages, tools)


def test_anthropic_details_images_system_blocks_and_prefill() -> None:
    row = an_row(
        "a",
        {
            "system": [
                {"type": "text", "text": "Rule 1.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Rule 2."},
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                        {"type": "text", "text": "What is this?"},
                    ],
                },
                {"role": "assistant", "content": "It is"},
            ],
        },
        anthropic_message({"type": "text", "text": " a cat."}),
    )
    messages, tools = to_chat_messages(row)  # type: ignore[misc]
    assert tools is None
    assert messages == [
        {"role": "system", "content": "Rule 1.\n\nRule 2."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "What is this?"},
            ],
        },
        {"role": "assistant", "content": "It is a cat."},  # prefill merged into the answer
    ]


def test_openai_developer_role_parts_and_legacy_functions() -> None:
    row = oa_row(
        "legacy",
        [
            {"role": "developer", "content": [{"type": "text", "text": "Be exact."}]},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}], "name": "bob"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": "{}"},
            },
            {"role": "function", "name": "get_weather", "content": "rain"},
        ],
        completion("Rain."),
        functions=[{"name": "get_weather", "parameters": WEATHER_SCHEMA}],
    )
    messages, tools = to_chat_messages(row)  # type: ignore[misc]
    check_messages(messages)
    assert messages[0] == {"role": "system", "content": "Be exact."}
    assert messages[1] == {"role": "user", "content": "Weather?"}
    assert messages[2]["tool_calls"][0]["id"] == messages[3]["tool_call_id"] == "call_0"
    assert tools == [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]


# --- openai_chat_lines ----------------------------------------------------------------


def test_openai_chat_lines_valid_and_deduplicated() -> None:
    lines = list(openai_chat_lines(ALL_ROWS))
    for line in lines:
        json.loads(json.dumps(line))
        assert set(line) <= {"messages", "tools", "parallel_tool_calls"}
        check_messages(line["messages"])
        check_tools(line.get("tools", []))
    # OA_TOOL_TURN and AN_TOOL_TURN have the same input -> one line; the 4 haiku rows -> one line
    assert len(lines) == 3
    tool_line, call_line, haiku_line = lines
    assert tool_line["messages"] == to_chat_messages(OA_TOOL_TURN)[0]  # type: ignore[index]
    assert tool_line["tools"] == [OPENAI_TOOL] and tool_line["parallel_tool_calls"] is False
    assert call_line["messages"][-1]["tool_calls"] == [CALL] and "parallel_tool_calls" not in call_line
    # best-rated answer wins, the first one on ties, at the position of the first row
    assert haiku_line["messages"][-1] == {"role": "assistant", "content": "Good haiku"}
    assert "tools" not in haiku_line


# --- openai_preference_lines ----------------------------------------------------------


def test_openai_preference_lines() -> None:
    lines = list(openai_preference_lines(ALL_ROWS))
    assert len(lines) == 1  # only the haiku input has both an up- and a down-rated answer
    line = json.loads(json.dumps(lines[0]))
    assert set(line) == {"input", "preferred_output", "non_preferred_output"}
    assert line["input"] == {"messages": HAIKU}
    assert line["preferred_output"] == [{"role": "assistant", "content": "Good haiku"}]
    assert line["non_preferred_output"] == [{"role": "assistant", "content": "Bad haiku"}]
    # both outputs answer the very same input
    good = next(r for r in HAIKU_ROWS if r.request_id == "h-good")
    bad = next(r for r in HAIKU_ROWS if r.request_id == "h-bad")
    assert to_chat_messages(good)[0][:-1] == to_chat_messages(bad)[0][:-1] == line["input"]["messages"]  # type: ignore[index]


def test_preference_pairs_need_different_answers_and_keep_tools() -> None:
    same = [
        oa_row("1", HAIKU, completion("x"), rating=True),
        oa_row("2", HAIKU, completion("x"), rating=False),
    ]
    assert list(openai_preference_lines(same)) == []
    rows = [
        OA_TOOL_TURN,
        an_row(
            "an-bad",
            AN_TOOL_TURN.request_json or {},
            anthropic_message({"type": "text", "text": "No."}),
            rating=False,
        ),
    ]
    (line,) = openai_preference_lines(rows)
    assert line["input"]["tools"] == [OPENAI_TOOL] and line["input"]["parallel_tool_calls"] is False
    assert line["input"]["messages"] == to_chat_messages(OA_TOOL_TURN)[0][:-1]  # type: ignore[index]
    assert line["non_preferred_output"] == [{"role": "assistant", "content": "No."}]


# --- few_shot -------------------------------------------------------------------------


def test_few_shot() -> None:
    examples = few_shot(ALL_ROWS)
    json.dumps(examples)
    assert examples == [
        {"input": "Weather in Paris?", "output": "It is sunny in Paris.", "system": "You are helpful."},
        {"input": "Write a haiku", "output": "Good haiku", "system": "Be brief."},
    ]  # tool-call-only answers skipped, duplicates collapsed onto the best-rated answer
    no_system = few_shot([oa_row("x", [{"role": "user", "content": "Hi"}], completion("Hello"))])
    assert no_system == [{"input": "Hi", "output": "Hello"}]


# --- split ----------------------------------------------------------------------------


def test_split_deterministic_and_sizes() -> None:
    items = list(range(10))
    train, valid = split(items, 0.8, seed=42)
    assert (len(train), len(valid)) == (8, 2)
    assert sorted(train + valid) == items
    assert split(items, 0.8, seed=42) == (train, valid)
    assert items == list(range(10))  # input untouched
    assert any(split(items, 0.8, seed=s) != (train, valid) for s in range(1, 5))
    assert split(items, 0.0, seed=1)[0] == [] and split(items, 1.0, seed=1)[1] == []
    assert tuple(map(len, split([1, 2], 0.9, seed=0))) == (1, 1)  # both sides non-empty
    assert split([], 0.5, seed=0) == ([], [])
    with pytest.raises(ValueError):
        split(items, 1.5, seed=0)


def test_sdk_model_dumps_are_understood() -> None:
    """Answers as the official SDKs serialise them (with their extra null fields)."""
    anthropic_types = pytest.importorskip("anthropic.types")
    openai_chat = pytest.importorskip("openai.types.chat")
    an = anthropic_types.Message.model_validate(
        {
            **anthropic_message(
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
            ),
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    ).model_dump(mode="json")
    oa = openai_chat.ChatCompletion.model_validate({**completion(None, [CALL]), "created": 1}).model_dump(mode="json")
    user = [{"role": "user", "content": "Weather in Paris?"}]
    an_result = to_chat_messages(an_row("a", {"messages": user, "tools": [ANTHROPIC_TOOL]}, an))
    oa_result = to_chat_messages(oa_row("o", user, oa, tools=[OPENAI_TOOL]))
    assert an_result == oa_result == to_chat_messages(OA_CALLS_TOOL)


def test_rows_sharing_a_request_convert_alike_through_the_shared_request_side() -> None:
    """An export converts each distinct request body once (``Inputs``): every row that sent it, with its own
    answer, must come out exactly as if converted alone, even when the answer continues a prefill or numbers
    legacy function calls after the request's own."""
    legacy: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
        {"role": "function", "name": "get_weather", "content": "rain"},
    ]
    legacy_answer = completion(None)
    legacy_answer["choices"][0]["message"]["function_call"] = {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    prefill = {"messages": [{"role": "user", "content": "Name a cat"}, {"role": "assistant", "content": "Its name"}]}
    groups = [
        [oa_row("l1", legacy, legacy_answer), oa_row("l2", legacy, completion("Rain."))],
        [
            an_row("p1", prefill, anthropic_message({"type": "text", "text": " is Tom."})),
            an_row("p2", prefill, anthropic_message()),
        ],
        [an_row("p3", prefill, anthropic_message({"type": "text", "text": " is Kit."}))],
        *([row] for row in ALL_ROWS),
    ]
    for group in groups:
        inputs = Inputs()
        for row in group * 2:  # each row twice: the second time every request side comes from the memo
            shared = ExportRow(row.request_id, row.provider, row.path, group[0].request_json, row.response_message)
            assert to_chat(shared, inputs) == to_chat(row), row.request_id
    assert to_chat(groups[1][0], Inputs()).answer == {"role": "assistant", "content": "Its name is Tom."}  # type: ignore[union-attr]
    assert prefill["messages"][-1] == {"role": "assistant", "content": "Its name"}  # the request is left as it was
