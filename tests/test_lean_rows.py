"""Leaner rows (issue #15): a stream's raw events and large request bodies kept compressed, or a stream's events
not kept at all (``log.stream_events``), while everything a user reads returns them as sent."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
import zstandard

from conftest import Gateway, GatewayFactory
from console_client import console, text_of
from feedgate.appkeys import STORE
from feedgate.store.bodies import BodyPacker
from feedgate.store.dialect import Frag
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import export_rows
from feedgate.store.reads.search import adjacent_match, search_before

FILLER = " ".join(f"background fact number {n} about the project." for n in range(400))  # ~18 KB
BIG_CHAT = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [{"role": "system", "content": FILLER}, {"role": "user", "content": "echo: the answer"}],
}


@pytest.fixture(params=["sqlite", "postgres"])
def on_either(request: pytest.FixtureRequest, make_gateway: GatewayFactory) -> GatewayFactory:
    """A gateway factory on SQLite, then on a fresh PostgreSQL schema (that half skips without PostgreSQL)."""
    if request.param == "sqlite":
        return make_gateway
    url = request.getfixturevalue("pg_schemas").new_url()

    async def make(**sections: Any) -> Gateway:
        return await make_gateway(database={"url": url}, **sections)

    return make


async def chat(gateway: Gateway, http: aiohttp.ClientSession, request_id: str, body: dict[str, Any]) -> bytes:
    """The bytes the client received for ``body`` sent as is (a stream's events, byte for byte)."""
    headers = {"Authorization": "Bearer sk-test", "Helicone-Request-Id": request_id}
    async with http.post(f"{gateway.v1}/chat/completions", data=orjson.dumps(body), headers=headers) as r:
        assert r.status == 200
        received = await r.read()
    await gateway.settled()
    return received


async def stored(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """The row as it sits in the table (bodies not decoded): what the store holds, not what a user reads."""
    sql = (
        "SELECT request_body, response_body, response_json, request_body_encoding, response_body_encoding "
        "FROM requests WHERE request_id = ?"
    )
    rows = await gateway.app[STORE].query(sql, (request_id,))
    return rows[0]


async def read_back(gateway: Gateway, http: aiohttp.ClientSession, request_id: str) -> dict[str, Any]:
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        assert r.status == 200
        row: dict[str, Any] = (await r.json())["data"]
    return row


async def exported(gateway: Gateway, http: aiohttp.ClientSession, fmt: str) -> list[dict[str, Any]]:
    async with http.get(f"{gateway.v1}/export", params={"format": fmt}) as r:
        assert r.status == 200
        return [orjson.loads(line) for line in (await r.read()).splitlines() if line]


async def test_compressed_stream_and_large_request_read_back_as_sent(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    gateway = either_gateway
    assert gateway.settings.log.stream_events == "compressed"  # the default
    sent = orjson.dumps(BIG_CHAT)
    received = await chat(gateway, http, "lean-1", BIG_CHAT)
    row = await stored(gateway, "lean-1")
    assert (row["request_body_encoding"], row["response_body_encoding"]) == ("zstd", "zstd")
    assert len(row["request_body"]) < len(sent) / 4 and len(row["response_body"]) < len(received)
    # The events as the upstream sent them (the client's copy may differ: the gateway asks for usage and strips
    # that chunk from a client that did not ask for it), so the compressed bytes decompressed are the reference.
    events = zstandard.ZstdDecompressor().decompress(bytes(row["response_body"]))
    assert events.startswith(b"data: {") and events.endswith(b"data: [DONE]\n\n")
    attempts = await gateway.app[STORE].request_attempts("lean-1")
    assert attempts[-1]["request_body"] == sent and attempts[-1]["response_body"] == events
    api = await read_back(gateway, http, "lean-1")
    assert api["request_body"] == BIG_CHAT
    assert api["response_events"] == events.decode() and api["response_events_kept"] is True
    assert api["response_body"]["choices"][0]["message"]["content"] == "the answer"
    async with http.post(f"{gateway.v1}/request/query", json={"filter": "all", "limit": 5}) as r:
        [queried] = (await r.json())["data"]
    assert queried["request_body"] == BIG_CHAT and queried["response_events"] == events.decode()
    [line] = await exported(gateway, http, "jsonl")
    assert line["request_body"] == BIG_CHAT and line["response_events"] == events.decode()
    [chat_line] = await exported(gateway, http, "openai-chat")
    assert chat_line["messages"][0]["content"] == FILLER
    assert chat_line["messages"][-1] == {"role": "assistant", "content": "the answer"}


async def test_small_request_bodies_stay_as_sent(either_gateway: Gateway, http: aiohttp.ClientSession) -> None:
    small = {**BIG_CHAT, "messages": [{"role": "user", "content": "echo: hi"}], "stream": False}
    await chat(either_gateway, http, "lean-small", small)
    row = await stored(either_gateway, "lean-small")
    assert row["request_body_encoding"] is None and bytes(row["request_body"]) == orjson.dumps(small)
    assert row["response_body_encoding"] is None  # a JSON answer is kept as sent: its message is its body


async def test_stream_events_none_keeps_the_reassembled_message(
    on_either: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await on_either(log={"stream_events": "none"})
    await chat(gateway, http, "lean-none", BIG_CHAT)
    row = await stored(gateway, "lean-none")
    assert row["response_body"] is None and row["response_body_encoding"] == "dropped"
    assert row["request_body_encoding"] == "zstd"
    api = await read_back(gateway, http, "lean-none")
    assert api["response_events"] is None and api["response_events_kept"] is False
    assert api["response_body"]["choices"][0]["message"]["content"] == "the answer"
    assert api["response_text"] == "the answer" and api["request_body"] == BIG_CHAT
    [chat_line] = await exported(gateway, http, "openai-chat")
    assert chat_line["messages"][-1] == {"role": "assistant", "content": "the answer"}
    async with console(gateway.url) as browser:
        page = await browser.get("/console/requests/lean-none")
    assert page.status == 200 and "the answer" in text_of(page.text) and "background fact number 399" in page.text


async def test_stream_events_raw_keeps_bytes_as_today(on_either: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await on_either(log={"stream_events": "raw", "request_body_compress_over_bytes": 0})
    received = await chat(gateway, http, "lean-raw", BIG_CHAT)
    row = await stored(gateway, "lean-raw")
    assert row["request_body_encoding"] is None and row["response_body_encoding"] is None
    assert bytes(row["request_body"]) == orjson.dumps(BIG_CHAT)
    assert bytes(row["response_body"]).startswith(b"data: {") and b"the" in received
    assert (await read_back(gateway, http, "lean-raw"))["response_events"] == bytes(row["response_body"]).decode()


def old_row(request_id: str) -> InsertRequest:
    """A row as written before m012: no encoding (the columns read NULL, as ALTER TABLE leaves them)."""
    values: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=request_id,
        datetime_utc="2026-01-02T03:04:05.000000Z",
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        is_stream=1,
        status=200,
        properties_json="{}",
        request_body=orjson.dumps(BIG_CHAT),
        response_body=b'data: {"choices": []}\n\ndata: [DONE]\n\n',
        response_json='{"choices": [{"message": {"role": "assistant", "content": "old"}}]}',
        body_bytes=10,
    )
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


async def test_rows_written_before_the_encodings_still_read(store: Store) -> None:
    await store.apply([old_row("old-1")])
    [attempt] = await store.request_attempts("old-1")
    assert attempt["request_body"] == orjson.dumps(BIG_CHAT)
    assert bytes(attempt["response_body"]) == b'data: {"choices": []}\n\ndata: [DONE]\n\n'
    [[exported_row]] = [chunk async for chunk in export_rows(store, [attempt["id"]], full=True)]
    assert bytes(exported_row["request_body"]) == orjson.dumps(BIG_CHAT)


def packed_row(request_id: str, seconds: int, body: bytes, answer: str) -> InsertRequest:
    """A row whose request body the writer stored compressed."""
    row = old_row(request_id)
    values = dict(zip(REQUEST_COLUMNS, row.values, strict=True))
    packed, encoding = BodyPacker(request_over_bytes=1000).request(body)
    assert encoding == "zstd"
    values.update(
        datetime_utc=f"2026-01-02T03:04:{seconds:02d}.000000Z",
        request_body=packed,
        request_body_encoding=encoding,
        response_text=answer,
    )
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


async def test_the_text_search_finds_words_in_compressed_request_bodies(store: Store) -> None:
    needle_body = orjson.dumps({"messages": [{"role": "user", "content": FILLER + " The Walrus sleeps."}]})
    await store.apply(
        [
            packed_row("big-walrus", 1, needle_body, "ok"),
            packed_row("big-other", 2, orjson.dumps(BIG_CHAT), "no match here"),
            packed_row("answer-walrus", 3, orjson.dumps(BIG_CHAT), "a WALRUS answer"),
            old_row("plain"),
        ]
    )
    everything = Frag("1 = 1")
    found = await search_before(store, everything, "walrus", None, 10)
    assert [row["request_id"] for row in found.rows] == ["answer-walrus", "big-walrus"]
    assert found.rows[1]["request_body"] == needle_body  # decoded for the list, as every read is
    first = await search_before(store, everything, "walrus", None, 1)
    assert [row["request_id"] for row in first.rows] == ["answer-walrus"]
    position = (str(first.rows[0]["datetime_utc"]), int(first.rows[0]["id"]))
    assert await adjacent_match(store, everything, "WALRUS", position, newer=False) == "big-walrus"
    assert await adjacent_match(store, everything, "walrus", position, newer=True) is None
