"""A failure of feedgate's own is never aiohttp's bare ``500 Internal Server Error`` page.

Each way an unexpected exception can reach a proxied route is provoked by making one step of the proxy raise
(fault injection: the code around the step is the real one): before the call, before the answer began,
after a stream began, and in the bookkeeping after the answer. Before the answer began the client gets a 500
in the OpenAI shape with its ``Helicone-Id``; after, the connection is cut as for an upstream breaking off;
either way the row says ``internal_error``. Bookkeeping after the answer never fails the call.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from conftest import Gateway
from fakes import FakeUpstream
from feedgate.proxy import handler, stream_usage

CHAT: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "echo: a b c d e f"}]}


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug")


@pytest.mark.parametrize("step", ["upstream_headers", "add_credentials"])
async def test_failure_before_the_answer_is_a_500_in_the_openai_shape_and_logged(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setattr(handler, step, broken)
    async with http.post(f"{gateway.v1}/chat/completions", json=CHAT) as r:
        assert r.status == 500 and r.content_type == "application/json"
        request_id = r.headers["Helicone-Id"]
        body = await r.json()
    assert body == {
        "error": {"message": "internal error; see the gateway log", "type": "server_error", "param": None, "code": None}
    }
    assert fake.received == []
    row = await gateway.row(request_id)
    assert (row["status"], row["error_type"], row["error_message"]) == (500, "internal_error", "RuntimeError: a bug")
    # The SDK raises its own error for it, as for any 500 from OpenAI.
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        with pytest.raises(openai.InternalServerError, match="internal error"):
            await api.chat.completions.create(**CHAT)


async def test_failure_after_a_stream_began_cuts_the_connection_and_is_logged(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed: list[bytes] = []

    def feed_then_break(self: stream_usage.UsageChunkFilter, chunk: bytes) -> bytes:
        fed.append(chunk)
        if len(fed) > 1:
            raise RuntimeError("a bug mid-stream")
        return chunk

    # The filter that hides the usage feedgate asked for runs on every chunk of a chat stream.
    monkeypatch.setattr(stream_usage.UsageChunkFilter, "feed", feed_then_break)
    async with openai.AsyncOpenAI(
        base_url=gateway.v1, api_key="sk", max_retries=0, default_headers={"X-Fake-Behavior": "slow:20"}
    ) as api:
        stream = await api.chat.completions.create(**CHAT, stream=True)
        request_id = stream.response.headers["helicone-id"]
        with pytest.raises(openai.APIError):
            async for _chunk in stream:
                pass
    row = await gateway.row(request_id)
    assert row["status"] == 200 and row["error_type"] == "internal_error"
    assert row["error_message"] == "RuntimeError: a bug mid-stream"


async def test_failing_bookkeeping_after_the_answer_does_not_fail_the_call(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler, "entry_op", broken)  # storing the answer in the cache
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        for stream in (False, True):
            raw = await api.chat.completions.with_raw_response.create(
                **CHAT, stream=stream, extra_headers={"Helicone-Cache-Enabled": "true"}
            )
            if stream:
                chunks = [c async for c in raw.parse()]  # type: ignore[union-attr]
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c d e f"
            else:
                assert raw.parse().choices[0].message.content == "a b c d e f"  # type: ignore[union-attr]
            row = await gateway.row(raw.headers["helicone-id"])
            assert row["status"] == 200 and row["error_type"] is None
