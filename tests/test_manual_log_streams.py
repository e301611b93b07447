"""helicone-helpers' stream logging, for real: ``HeliconeManualLogger.log_builder``, ``add_chunk``, ``send_log``.

The chunks are what the official SDKs yield for a stream from the fake upstream (chat completions, the
Responses API, Anthropic messages), added as the objects an app has (``chunk.model_dump()``) or as the SSE
lines it read (``data: {...}``). The builder posts them to ``/custom/v1/log`` as newline-separated text, and
the row must hold the stream reassembled as if it had been proxied.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from helicone_helpers import HeliconeManualLogger

from conftest import Gateway
from fakes import FakeUpstream, anthropic_app, openai_app, serve_app_in_thread

ThreadedGateway = tuple[Gateway, FakeUpstream, asyncio.AbstractEventLoop]


@pytest.fixture
def fake_url() -> Iterator[str]:
    """A fake upstream serving OpenAI and Anthropic on its own loop, for the blocking SDK clients."""
    fake = FakeUpstream()
    with serve_app_in_thread(anthropic_app(fake, openai_app(fake))) as url:
        yield url


def send(gateway: ThreadedGateway, request: dict[str, Any], chunks: list[Any]) -> dict[str, Any]:
    """Log ``chunks`` through helicone-helpers' builder and read back the row it made."""
    gw, _, loop = gateway
    request_id = str(uuid.uuid4())
    logger = HeliconeManualLogger(api_key="sk-helicone", logging_endpoint=gw.url)
    builder = logger.log_builder(request, {"Helicone-Request-Id": request_id})
    for chunk in chunks:
        builder.add_chunk(chunk)
    asyncio.run(builder.send_log())
    return asyncio.run_coroutine_threadsafe(gw.row(request_id), loop).result(10)


@pytest.mark.parametrize("form", ["objects", "data-lines"])
def test_chat_chunks(threaded_gateway: ThreadedGateway, fake_url: str, form: str) -> None:
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "echo: reported in pieces"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with openai.OpenAI(base_url=f"{fake_url}/v1", api_key="sk", max_retries=0) as api:
        chunks = [c.model_dump() for c in api.chat.completions.create(**request)]
    sent: list[Any] = chunks if form == "objects" else [f"data: {json.dumps(c)}" for c in chunks]
    row = send(threaded_gateway, request, sent)
    usage = chunks[-1]["usage"]
    assert row["is_stream"] == 1 and row["response_text"] == "reported in pieces" and row["finish_reason"] == "stop"
    assert (row["input_tokens"], row["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row["cost_usd"] == pytest.approx((usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.6) / 1e6)
    assert row["api"] == "chat" and row["request_model"] == "gpt-4o-mini" and row["ttft_ms"] is not None
    message = json.loads(row["response_json"])
    assert message["choices"][0]["message"]["content"] == "reported in pieces"


def test_responses_events(threaded_gateway: ThreadedGateway, fake_url: str) -> None:
    request: dict[str, Any] = {"model": "gpt-4.1", "input": "echo: a responses stream", "stream": True}
    with openai.OpenAI(base_url=f"{fake_url}/v1", api_key="sk", max_retries=0) as api:
        events = [e.model_dump() for e in api.responses.create(**request)]
    row = send(threaded_gateway, request, events)
    usage = events[-1]["response"]["usage"]
    assert row["api"] == "responses" and row["response_text"] == "a responses stream"
    assert row["finish_reason"] == "completed" and row["output_tokens"] == usage["output_tokens"]
    assert row["cost_usd"] == pytest.approx((usage["input_tokens"] * 2.0 + usage["output_tokens"] * 8.0) / 1e6)


@pytest.mark.parametrize("form", ["objects", "data-lines"])
def test_anthropic_events(threaded_gateway: ThreadedGateway, fake_url: str, form: str) -> None:
    request: dict[str, Any] = {
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "echo: from claude"}],
        "stream": True,
    }
    with anthropic.Anthropic(base_url=fake_url, api_key="sk-ant", max_retries=0) as claude:
        events = [e.model_dump() for e in claude.messages.create(**request)]
    sent: list[Any] = events if form == "objects" else [f"event: {e['type']}\ndata: {json.dumps(e)}" for e in events]
    row = send(threaded_gateway, request, sent)
    assert row["api"] == "messages" and row["response_text"] == "from claude" and row["finish_reason"] == "end_turn"
    inp = events[0]["message"]["usage"]["input_tokens"]
    out = events[-2]["usage"]["output_tokens"]
    assert (row["input_tokens"], row["output_tokens"]) == (inp, out)
    assert row["cost_usd"] == pytest.approx((inp * 0.8 + out * 4.0) / 1e6)
