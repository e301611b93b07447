"""Reading the log back, health probes, and secrets kept out of the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "echo: the answer"}]


async def test_get_request_in_helicone_shape(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-live-abc", max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={
                "Helicone-Request-Id": "conv-1",
                "Helicone-Property-Feature": "chat",
                "Helicone-Session-Id": "s1",
                "Helicone-Session-Path": "/a",
                "Helicone-Session-Name": "n",
            },
        )
        await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"Helicone-Request-Id": "conv-1"},
        )
    completion = raw.parse()
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/conv-1") as r:
        assert r.status == 200 and r.headers["Helicone-Id"]
        body = await r.json()
    assert body["error"] is None
    row = body["data"]
    assert row["request_id"] == "conv-1" and row["attempts"] == 2 and row["attempt"] == 2
    assert row["response_status"] == 200 and row["model"] == completion.model
    assert row["request_body"]["messages"] == MESSAGES
    assert row["response_body"]["choices"][0]["message"]["content"] == "the answer"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens  # type: ignore[union-attr]
    assert row["completion_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert row["total_tokens"] == completion.usage.total_tokens  # type: ignore[union-attr]
    assert row["delay_ms"] > 0 and row["time_to_first_token"] is None
    assert row["provider"] == "openai" and row["request_path"] == "/v1/chat/completions"
    assert row["request_created_at"].endswith("Z")
    # The first attempt carried the Helicone headers; the latest one is shown.
    assert row["request_properties"] == {}


async def test_stream_row_shows_assembled_message(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        stream = await api.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        request_id = stream.response.headers["helicone-id"]
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        row = (await r.json())["data"]
    assert row["response_body"]["choices"][0]["message"]["content"] == text == "the answer"
    assert row["time_to_first_token"] is not None and row["is_stream"] is True
    assert row["response_events"].rstrip().endswith("data: [DONE]")


async def test_unknown_and_bad_ids(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gateway.v1}/request/nope") as r:
        assert r.status == 404
        body = await r.json()
        assert body["data"] is None and "nope" in body["error"]
    async with http.get(f"{gateway.v1}/request/bad%20id") as r:
        assert r.status == 400 and (await r.json())["data"] is None


async def test_health_and_readiness(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gateway.url}/healthz") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
    async with http.get(f"{gateway.url}/readyz") as r:
        body = await r.json()
    assert r.status == 200 and body["status"] == "ready"
    assert body["log"]["dropped_queue_full"] == 0 and body["queue"]["capacity"] > 0


async def test_full_queue_never_fails_a_call_and_is_counted(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gw = await make_gateway(database={"queue_size": 1})
    async with openai.AsyncOpenAI(base_url=gw.v1, api_key="sk", max_retries=0) as api:
        answers = await asyncio.gather(
            *[api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(30)]
        )
    assert all(a.choices[0].message.content == "the answer" for a in answers)
    await gw.settled()
    async with http.get(f"{gw.url}/readyz") as r:
        log = (await r.json())["log"]
    assert log["dropped_queue_full"] > 0
    assert log["written"] + log["dropped_queue_full"] == 30


async def test_secrets_never_reach_the_database_file(gateway: Gateway, fake: FakeUpstream) -> None:
    secrets = [
        "sk-proj-SECRETPROVIDERKEY42",
        "anthropic-SECRET-x-api-key",
        "azure-SECRET-api-key",
        "session=SECRETCOOKIE",
        "sk-helicone-SECRETPROXYKEY",
    ]
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key=secrets[0], max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={
                "x-api-key": secrets[1],
                "api-key": secrets[2],
                "Cookie": secrets[3],
                "Helicone-Auth": f"Bearer {secrets[4]}",
            },
        )
    await gateway.row(raw.headers["helicone-id"])
    assert fake.last.header("Authorization") == f"Bearer {secrets[0]}"  # forwarded, not stored
    db_path = gateway.settings.database.url.removeprefix("sqlite:///")
    stored = b"".join(Path(p).read_bytes() for p in (db_path, db_path + "-wal") if _exists(p))
    for secret in secrets:
        assert secret.encode() not in stored


async def test_key_in_the_query_string_is_not_stored(gateway: Gateway, fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_query={"key": "AIzaSECRETQUERYKEY", "api-version": "2024-10-21"},
        )
    row = await gateway.row(raw.headers["helicone-id"])
    assert fake.last.query["key"] == "AIzaSECRETQUERYKEY"  # forwarded as sent
    assert "AIzaSECRETQUERYKEY" not in row["query"] and "api-version=2024-10-21" in row["query"]


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)
