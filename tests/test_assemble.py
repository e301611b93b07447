# ruff: noqa: E501  (the SSE fixtures below are verbatim wire lines; one event per line reads best)
from __future__ import annotations

from typing import Any

import orjson
import pytest

from feedgate.logrows.assemble import (
    Assembled,
    RequestFacts,
    Usage,
    assemble_json,
    assemble_sse,
    request_facts,
)

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

# ------------------------------------------------------------------------------------ fixtures

OPENAI_TEXT_STREAM = rb"""data: {"id":"chatcmpl-AXq1","object":"chat.completion.chunk","created":1732600000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-AXq1","object":"chat.completion.chunk","created":1732600000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-AXq1","object":"chat.completion.chunk","created":1732600000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" there!"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-AXq1","object":"chat.completion.chunk","created":1732600000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

data: [DONE]

"""

OPENAI_USAGE_STREAM = rb"""data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1732600100,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_45cf54deae","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1732600100,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_45cf54deae","choices":[{"index":0,"delta":{"content":"4"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1732600100,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_45cf54deae","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1732600100,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_45cf54deae","choices":[],"usage":{"prompt_tokens":1920,"completion_tokens":1,"total_tokens":1921,"prompt_tokens_details":{"cached_tokens":1792,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

"""

OPENAI_TOOLS_STREAM = rb"""data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_wX1","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"lo"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"cation\": \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_yZ2","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\": "}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"Europe/Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-T1","object":"chat.completion.chunk","created":1732600200,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: [DONE]

"""

OPENAI_N2_STREAM = rb"""data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":1,"delta":{"content":"Bonjour"},"finish_reason":null}]}

data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}

data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" you"},"finish_reason":null}]}

data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":1,"delta":{},"finish_reason":"length"}]}

data: {"id":"chatcmpl-N2","object":"chat.completion.chunk","created":1732600300,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: [DONE]

"""

OPENAI_REFUSAL_STREAM = rb"""data: {"id":"chatcmpl-R1","object":"chat.completion.chunk","created":1732600400,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-R1","object":"chat.completion.chunk","created":1732600400,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"refusal":"I'm sorry,"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-R1","object":"chat.completion.chunk","created":1732600400,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"refusal":" I can't help with that."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-R1","object":"chat.completion.chunk","created":1732600400,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

data: [DONE]

"""

# OpenRouter style: CRLF line ends, keep-alive comments.
OPENROUTER_CRLF_STREAM = (
    b": OPENROUTER PROCESSING\r\n\r\n"
    b'data: {"id":"gen-1","object":"chat.completion.chunk","created":1732600500,"model":"anthropic/claude-3.5-sonnet",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hey"},"finish_reason":null}]}\r\n\r\n'
    b": OPENROUTER PROCESSING\r\n\r\n"
    b'data: {"id":"gen-1","object":"chat.completion.chunk","created":1732600500,"model":"anthropic/claude-3.5-sonnet",'
    b'"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}\r\n\r\n'
    b"data: [DONE]\r\n\r\n"
)

# Azure: a first chunk with prompt_filter_results, no choices and an empty model.
AZURE_STREAM = rb"""data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}

data: {"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1732600600,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","system_fingerprint":"fp_67802d9a6d"}

data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Yes."},"finish_reason":null,"index":0,"logprobs":null}],"created":1732600600,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","system_fingerprint":"fp_67802d9a6d"}

data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1732600600,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","system_fingerprint":"fp_67802d9a6d"}

data: [DONE]

"""

LEGACY_COMPLETIONS_STREAM = rb"""data: {"id":"cmpl-L1","object":"text_completion","created":1732600700,"choices":[{"text":"\n\n","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}

data: {"id":"cmpl-L1","object":"text_completion","created":1732600700,"choices":[{"text":"This is","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}

data: {"id":"cmpl-L1","object":"text_completion","created":1732600700,"choices":[{"text":" a test.","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}

data: {"id":"cmpl-L1","object":"text_completion","created":1732600700,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct"}

data: {"id":"cmpl-L1","object":"text_completion","created":1732600700,"choices":[],"model":"gpt-3.5-turbo-instruct","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}

data: [DONE]

"""

ANTHROPIC_TOOL_STREAM = rb"""event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\", \"unit\": \"fahrenheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""

ANTHROPIC_JSON_CACHED = rb"""{
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": "claude-3-5-sonnet-20241022",
  "content": [
    {"type": "text", "text": "The contract's key terms are "},
    {"type": "text", "text": "payment within 30 days."}
  ],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 0,
    "output_tokens": 393
  }
}"""


# ---------------------------------------------------------------------------------- OpenAI SSE


def test_openai_plain_text_stream() -> None:
    got = assemble_sse("openai", CHAT, OPENAI_TEXT_STREAM)
    assert got.message == {
        "id": "chatcmpl-AXq1",
        "object": "chat.completion",
        "created": 1732600000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}],
    }
    assert got.text == "Hello there!"
    assert got.finish_reason == "stop"
    assert got.model == "gpt-4o-mini-2024-07-18"
    assert got.response_id == "chatcmpl-AXq1"
    assert got.usage == Usage()


def test_openai_stream_with_include_usage() -> None:
    got = assemble_sse("openai", CHAT, OPENAI_USAGE_STREAM)
    assert got.text == "4"
    assert got.finish_reason == "stop"
    assert got.usage == Usage(
        input_tokens=1920,
        output_tokens=1,
        total_tokens=1921,
        cache_read_tokens=1792,
        cache_write_tokens=None,
        reasoning_tokens=0,  # completion_tokens_details.reasoning_tokens
    )
    assert got.message is not None
    assert got.message["usage"]["prompt_tokens_details"] == {"cached_tokens": 1792, "audio_tokens": 0}
    assert len(got.message["choices"]) == 1


def test_openai_stream_with_two_tool_calls() -> None:
    got = assemble_sse("openai", CHAT, OPENAI_TOOLS_STREAM)
    assert got.message is not None
    assert got.message["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_wX1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "call_yZ2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                    },
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert got.text is None
    assert got.finish_reason == "tool_calls"


def test_openai_stream_n2_keeps_choices_apart() -> None:
    got = assemble_sse("openai", CHAT, OPENAI_N2_STREAM)
    assert got.message is not None
    assert got.message["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hi you"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "Bonjour"}, "finish_reason": "length"},
    ]
    assert got.text == "Hi you"
    assert got.finish_reason == "stop"


def test_openai_refusal_stream() -> None:
    got = assemble_sse("openai", CHAT, OPENAI_REFUSAL_STREAM)
    assert got.message is not None
    assert got.message["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": "I'm sorry, I can't help with that.",
    }
    assert got.text == "I'm sorry, I can't help with that."
    assert got.finish_reason == "stop"


def _long_stream(
    contents: list[str], *, role_chunk: bool = True, odd: dict[int, dict[str, Any]] | None = None
) -> bytes:
    """A chat stream as OpenAI sends it: a role chunk, one chunk per content piece, a finish chunk, usage."""
    head = {"id": "chatcmpl-L1", "object": "chat.completion.chunk", "created": 1732600300, "model": "gpt-4o-mini"}

    def event(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**head, "choices": choices, **extra}) + b"\n\n"

    out = []
    if role_chunk:
        out.append(event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
    for at, text in enumerate(contents):
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        choice.update((odd or {}).get(at, {}))
        out.append(event([choice]))
    out.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    out.append(
        event([], usage={"prompt_tokens": 7, "completion_tokens": len(contents), "total_tokens": 7 + len(contents)})
    )
    return b"".join(out) + b"data: [DONE]\n\n"


TRICKY = [
    "plain",
    ' with "quotes"',
    " back\\slash\\",
    " \u00e9t\u00e9 \U0001f600",
    "\n\ttabs",
    '"delta":{"content":"x"}',
    "",
    " end",
]


@pytest.mark.parametrize(
    ("contents", "role_chunk", "odd", "expected"),
    [
        (TRICKY * 5, True, None, "".join(TRICKY * 5)),
        (TRICKY * 5, False, None, "".join(TRICKY * 5)),
        (["a", "b", "c", "d"], True, {2: {"delta": {"content": "c", "refusal": None}}}, "abcd"),
        (["a", "b", "c", "d"], True, {1: {"logprobs": {"content": []}}}, "abcd"),
        (["a", "b", "c", "d", "e"], True, {3: {"delta": {"role": "assistant", "content": "d"}}}, "abcde"),
    ],
)
def test_long_stream_text_is_exact_whatever_its_chunks_look_like(
    contents: list[str], role_chunk: bool, odd: dict[int, dict[str, Any]] | None, expected: str
) -> None:
    got = assemble_sse("openai", CHAT, _long_stream(contents, role_chunk=role_chunk, odd=odd))
    assert got.text == expected
    assert got.message is not None
    assert got.message["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": expected}, "finish_reason": "stop"}
    ]
    assert got.usage.output_tokens == len(contents) and got.finish_reason == "stop"
    assert got.model == "gpt-4o-mini" and got.response_id == "chatcmpl-L1"


def test_long_stream_with_a_second_choice_in_the_middle_keeps_both() -> None:
    raw = _long_stream(["a", "b", "c", "d", "e", "f"], odd={3: {"index": 1}})
    got = assemble_sse("openai", CHAT, raw)
    assert got.message is not None
    assert [c["message"]["content"] for c in got.message["choices"]] == ["abcef", "d"]


def test_long_stream_cut_inside_the_run_keeps_the_prefix() -> None:
    raw = _long_stream([f" w{i}" for i in range(30)])
    cut = raw.index(b'" w17"')
    got = assemble_sse("openai", CHAT, raw[:cut])
    assert got.text == "".join(f" w{i}" for i in range(17)) and got.finish_reason is None


def test_openai_truncated_stream_keeps_what_arrived() -> None:
    cut = OPENAI_TEXT_STREAM.index(b'" there!"') + 4  # inside the third event's JSON
    got = assemble_sse("openai", CHAT, OPENAI_TEXT_STREAM[:cut])
    assert got.text == "Hello"
    assert got.finish_reason is None
    assert got.response_id == "chatcmpl-AXq1"
    assert got.model == "gpt-4o-mini-2024-07-18"


@pytest.mark.parametrize(
    ("path", "fixture", "full"),
    [
        (CHAT, OPENAI_TEXT_STREAM, "Hello there!"),
        (CHAT, OPENAI_TOOLS_STREAM, None),
        ("/v1/completions", LEGACY_COMPLETIONS_STREAM, "\n\nThis is a test."),
        (MESSAGES, ANTHROPIC_TOOL_STREAM, "Okay, let's check the weather for San Francisco, CA:"),
    ],
)
def test_stream_cut_anywhere_never_raises_and_gives_a_prefix(path: str, fixture: bytes, full: str | None) -> None:
    kind = "anthropic" if path == MESSAGES else "openai"
    for cut in range(len(fixture) + 1):
        got = assemble_sse(kind, path, fixture[:cut])
        if full is None:
            assert got.text is None
        elif got.text is not None:
            assert full.startswith(got.text), cut
    assert assemble_sse(kind, path, fixture).text == full


def test_openrouter_crlf_and_comments() -> None:
    got = assemble_sse("openai", "/api/v1/chat/completions", OPENROUTER_CRLF_STREAM)
    assert got.text == "Hey!"
    assert got.finish_reason == "stop"
    assert got.model == "anthropic/claude-3.5-sonnet"
    assert got.usage == Usage(input_tokens=11, output_tokens=2, total_tokens=13)


def test_azure_stream_skips_the_empty_prompt_filter_chunk() -> None:
    path = "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    got = assemble_sse("openai", path, AZURE_STREAM)
    assert got.text == "Yes."
    assert got.model == "gpt-4o-2024-05-13"
    assert got.response_id == "chatcmpl-AZ1"
    assert got.message is not None
    assert got.message["created"] == 1732600600
    assert got.message["object"] == "chat.completion"


def test_legacy_completions_stream() -> None:
    got = assemble_sse("openai", "/v1/completions", LEGACY_COMPLETIONS_STREAM)
    assert got.message == {
        "id": "cmpl-L1",
        "object": "text_completion",
        "created": 1732600700,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": "\n\nThis is a test.", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    assert got.text == "\n\nThis is a test."
    assert got.finish_reason == "length"
    assert got.usage == Usage(input_tokens=5, output_tokens=7, total_tokens=12)


def test_tool_call_without_index_from_compatible_server() -> None:
    raw = (
        b'data: {"id":"x","model":"llama","choices":[{"index":0,"delta":{"tool_calls":'
        b'[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
        b'data: {"id":"x","model":"llama","choices":[{"index":0,"delta":{"tool_calls":'
        b'[{"id":"b","type":"function","function":{"name":"g","arguments":{"k":1}}}]},'
        b'"finish_reason":"tool_calls"}]}\n\n'
    )
    got = assemble_sse("openai", CHAT, raw)
    assert got.message is not None
    calls = got.message["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", "f", "{}"),
        ("b", "g", '{"k":1}'),
    ]


def test_stream_request_answered_with_json_error() -> None:
    body = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    assert assemble_sse("openai", CHAT, body) == Assembled()
    err = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert assemble_sse("anthropic", MESSAGES, err) == Assembled()


# ------------------------------------------------------------------------------- OpenAI JSON


def test_openai_chat_json_with_cached_tokens() -> None:
    body = orjson.dumps(
        {
            "id": "chatcmpl-J1",
            "object": "chat.completion",
            "created": 1732600800,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Paris.", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
            },
        }
    )
    got = assemble_json("openai", CHAT, body)
    assert got.text == "Paris."
    assert got.finish_reason == "stop"
    assert got.model == "gpt-4o-2024-08-06"
    assert got.response_id == "chatcmpl-J1"
    assert got.usage == Usage(2006, 300, 2306, 1920, None)
    assert got.message is not None and got.message["object"] == "chat.completion"


def test_openai_json_total_computed_when_missing() -> None:
    body = (
        b'{"id":"c","object":"text_completion","model":"m","choices":[{"text":"ok","index":0,'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}'
    )
    got = assemble_json("openai", "/v1/completions", body)
    assert got.text == "ok"
    assert got.usage == Usage(input_tokens=3, output_tokens=4, total_tokens=7)


def test_embeddings_json() -> None:
    body = (
        b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,'
        b'-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}'
    )
    got = assemble_json("openai", "/v1/embeddings", body)
    assert got == Assembled(
        message=None,
        text=None,
        finish_reason=None,
        model="text-embedding-3-small",
        usage=Usage(input_tokens=8, output_tokens=None, total_tokens=8),
        response_id=None,
    )


# ---------------------------------------------------------------------------------- Anthropic


def test_anthropic_text_and_tool_use_stream() -> None:
    got = assemble_sse("anthropic", MESSAGES, ANTHROPIC_TOOL_STREAM)
    assert got.message == {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "text", "text": "Okay, let's check the weather for San Francisco, CA:"},
            {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA", "unit": "fahrenheit"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 472,
            "output_tokens": 89,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    assert got.text == "Okay, let's check the weather for San Francisco, CA:"
    assert got.finish_reason == "tool_use"
    assert got.model == "claude-sonnet-4-5-20250929"
    assert got.response_id == "msg_014p7gG3wDgGV9EUtLvnow3U"
    assert got.usage == Usage(472, 89, 561, 0, 0)


def test_anthropic_stream_equals_its_json_form() -> None:
    streamed = assemble_sse("anthropic", MESSAGES, ANTHROPIC_TOOL_STREAM)
    assert streamed.message is not None
    again = assemble_json("anthropic", MESSAGES, orjson.dumps(streamed.message))
    assert again == streamed


def test_anthropic_bad_tool_json_is_kept_raw() -> None:
    # Cut just before the second partial_json fragment: the tool input stays '{"location":'.
    cut = ANTHROPIC_TOOL_STREAM.rindex(b"event:", 0, ANTHROPIC_TOOL_STREAM.index(b'San Francisco, CA\\"'))
    got = assemble_sse("anthropic", MESSAGES, ANTHROPIC_TOOL_STREAM[:cut])
    assert got.message is not None
    tool = got.message["content"][1]
    assert tool["input"] == {}
    assert tool["_raw_input"] == '{"location":'
    assert got.finish_reason is None
    assert got.usage == Usage(472, 2, 474, 0, 0)


def test_anthropic_error_event_and_thinking() -> None:
    raw = (
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"msg_T","type":"message","role":"assistant",'
        b'"model":"claude-3-7-sonnet-20250219","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
        b"event: content_block_start\n"
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm."}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}\n\n'
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    got = assemble_sse("anthropic", MESSAGES, raw)
    assert got.message is not None
    assert got.message["content"] == [{"type": "thinking", "thinking": "Hmm.", "signature": "EqQB"}]
    assert got.text is None
    assert got.finish_reason is None
    assert got.usage == Usage(input_tokens=10, output_tokens=1, total_tokens=11)


def test_anthropic_json_with_cache_tokens() -> None:
    got = assemble_json("anthropic", MESSAGES, ANTHROPIC_JSON_CACHED)
    assert got.text == "The contract's key terms are payment within 30 days."
    assert got.finish_reason == "end_turn"
    assert got.model == "claude-3-5-sonnet-20241022"
    assert got.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    # 21 uncached input + 393 output + 0 cache reads + 188086 cache writes
    assert got.usage == Usage(
        input_tokens=21,
        output_tokens=393,
        total_tokens=188500,
        cache_read_tokens=0,
        cache_write_tokens=188086,
    )
    assert got.message is not None and got.message["stop_sequence"] is None


def test_vertex_anthropic_path_uses_provider_kind() -> None:
    path = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:streamRawPredict"
    got = assemble_sse("anthropic", path, ANTHROPIC_TOOL_STREAM)
    assert got.finish_reason == "tool_use"
    assert got.usage.total_tokens == 561


# ------------------------------------------------------------------------------------ garbage

GARBAGE: list[bytes] = [
    b"",
    b"\x00\xff\xfe garbage \x81",
    b"<html><body>502 Bad Gateway</body></html>",
    b"data: {not json}\n\ndata: [DONE]\n\n",
    b"event: message_start\ndata: 42\n\n",
    b"[1, 2, 3]",
    b"null",
    b'"a string"',
]


@pytest.mark.parametrize("raw", GARBAGE)
@pytest.mark.parametrize(("kind", "path"), [("openai", CHAT), ("anthropic", MESSAGES), ("openai", "/v1/x")])
def test_garbage_gives_empty_results(kind: str, path: str, raw: bytes) -> None:
    assert assemble_sse(kind, path, raw) == Assembled()
    assert assemble_json(kind, path, raw) == Assembled()
    assert request_facts(raw) == RequestFacts()


def test_wrong_types_inside_valid_json_are_ignored() -> None:
    chunk = (
        b'data: {"id":7,"model":["x"],"usage":"lots","choices":[1,{"index":"0","delta":{"content":5,'
        b'"tool_calls":[{"index":"a","function":"f"},"x"]},"finish_reason":3}]}\n\n'
    )
    got = assemble_sse("openai", CHAT, chunk)
    assert got.text is None
    assert got.model is None
    assert got.response_id is None
    assert got.usage == Usage()
    assert got.message is not None
    assert got.message["choices"][0]["message"]["tool_calls"] == [
        {"id": None, "type": "function", "function": {"name": None, "arguments": ""}}
    ]
    weird: dict[str, Any] = {"type": "message", "content": "nope", "usage": {"input_tokens": True}}
    got2 = assemble_json("anthropic", MESSAGES, orjson.dumps(weird))
    assert (got2.text, got2.usage, got2.finish_reason) == (None, Usage(), None)


# ------------------------------------------------------------------------------ request_facts

OPENAI_REQUEST = rb"""{
  "model": "gpt-4o-mini",
  "stream": true,
  "stream_options": {"include_usage": true},
  "user": "user-1234",
  "messages": [
    {"role": "developer", "content": [{"type": "text", "text": "You are terse."}]},
    {"role": "system", "content": "ignored: not the first"},
    {"role": "user", "content": "What is 2+2?"}
  ],
  "temperature": 0.2
}"""

ANTHROPIC_REQUEST = rb"""{
  "model": "claude-sonnet-4-5",
  "max_tokens": 1024,
  "system": [
    {"type": "text", "text": "You are a contract lawyer."},
    {"type": "text", "text": "<contract>...</contract>", "cache_control": {"type": "ephemeral"}}
  ],
  "metadata": {"user_id": "acct-77"},
  "messages": [{"role": "user", "content": "Summarise the key terms."}]
}"""


def test_request_facts_openai() -> None:
    facts = request_facts(OPENAI_REQUEST)
    assert facts.model == "gpt-4o-mini"
    assert facts.is_stream is True
    assert facts.include_usage is True
    assert facts.user == "user-1234"
    assert facts.system_prompt == "You are terse."
    assert facts.messages_fingerprint is not None
    assert len(facts.messages_fingerprint) == 16
    int(facts.messages_fingerprint, 16)  # hex


def test_request_facts_anthropic() -> None:
    facts = request_facts(ANTHROPIC_REQUEST)
    assert facts == RequestFacts(
        model="claude-sonnet-4-5",
        is_stream=False,
        user="acct-77",
        include_usage=False,
        system_prompt="You are a contract lawyer.\n<contract>...</contract>",
        messages_fingerprint=facts.messages_fingerprint,
    )
    assert facts.messages_fingerprint is not None and len(facts.messages_fingerprint) == 16
    plain = request_facts(b'{"model":"claude-3-haiku","system":"Be brief.","messages":[]}')
    assert plain.system_prompt == "Be brief."


def test_fingerprint_same_conversation_same_hash() -> None:
    a = request_facts(b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi","name":"bob"}],"temperature":0}')
    # Same messages: other model and params, other key order and whitespace.
    b = request_facts(
        b'{ "temperature": 1, "messages": [ {"name": "bob", "content": "hi", "role": "user"} ], "model": "o1" }'
    )
    c = request_facts(b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi!","name":"bob"}]}')
    assert a.messages_fingerprint is not None
    assert a.messages_fingerprint == b.messages_fingerprint
    assert a.messages_fingerprint != c.messages_fingerprint


def test_fingerprint_includes_anthropic_system() -> None:
    base = b'{"messages":[{"role":"user","content":"hi"}],"system":"%s"}'
    one = request_facts(base % b"A").messages_fingerprint
    two = request_facts(base % b"B").messages_fingerprint
    assert one is not None and two is not None and one != two
    assert request_facts(base % b"A").messages_fingerprint == one


def test_request_facts_non_json_and_no_messages() -> None:
    assert request_facts(b"not json at all") == RequestFacts(
        model=None,
        is_stream=False,
        user=None,
        include_usage=False,
        system_prompt=None,
        messages_fingerprint=None,
    )
    emb = request_facts(b'{"model":"text-embedding-3-small","input":"hello"}')
    assert (emb.model, emb.system_prompt, emb.messages_fingerprint, emb.is_stream) == (
        "text-embedding-3-small",
        None,
        None,
        False,
    )
