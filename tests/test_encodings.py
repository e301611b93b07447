"""Every answer the client can decode, feedgate logs; request bodies are forwarded as the headers describe them.

The openai SDK offers zstd and br as soon as their packages are installed (they are, in the test extra), as
a langchain user's SDK does. feedgate then offers the provider only what it can log (gzip, deflate), and
an answer that comes in another encoding anyway is logged with a marker and counted, never as garbled text.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import aiohttp
import openai
import pytest

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream
from feedgate.logrows.build import decoded_body
from feedgate.proxy.headers import loggable_accept_encoding

LONG = "echo: " + " ".join(f"word{i}" for i in range(400))


async def readyz_log(http: aiohttp.ClientSession, gateway: Gateway) -> dict[str, Any]:
    async with http.get(f"{gateway.url}/readyz") as r:
        body = await r.json()
    log: dict[str, Any] = body["log"]
    return log


async def read_back(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        row: dict[str, Any] = (await r.json())["data"]
    return row


def sdk(gateway: Gateway, behavior: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gateway.v1, api_key="sk", max_retries=0, default_headers={"X-Fake-Behavior": behavior}
    )


@pytest.mark.parametrize("encoding", ["zstd", "br"])
async def test_sdk_offering_zstd_and_br_gets_an_answer_the_log_can_read(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession, encoding: str
) -> None:
    # The fake answers in zstd or br whenever the caller offers it, and in gzip otherwise.
    async with sdk(gateway, f"encoding:{encoding},encoding:gzip") as api:
        raw = await api.responses.with_raw_response.create(model="gpt-4.1", input="echo: compressed or not")
        assert raw.http_request.headers["Accept-Encoding"] == "gzip, deflate, br, zstd"
        response = raw.parse()
    assert fake.last.header("Accept-Encoding") == "gzip, deflate"
    assert raw.headers["Content-Encoding"] == "gzip"  # the client still gets an encoding it asked for
    row = await read_back(http, gateway, raw.headers["helicone-id"])
    assert row["response_text"] == response.output_text == "compressed or not"
    assert row["finish_reason"] == "completed" and row["response_model"] == "gpt-4.1"
    assert response.usage is not None and row["completion_tokens"] == response.usage.output_tokens
    assert row["cost"] == pytest.approx((response.usage.input_tokens * 2.0 + 3 * 8.0) / 1e6)
    assert "feedgate-undecodable" not in row["properties"]


@pytest.mark.parametrize("encoding", ["zstd", "br"])
async def test_answer_in_an_encoding_feedgate_cannot_decode_is_marked_and_counted(
    gateway: Gateway, http: aiohttp.ClientSession, encoding: str
) -> None:
    # An upstream that ignores Accept-Encoding: the client (which offered it) decodes; the log cannot.
    async with sdk(gateway, f"force-encoding:{encoding}") as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "echo: fine for the client"}]
        )
    assert raw.parse().choices[0].message.content == "fine for the client"
    row = await read_back(http, gateway, raw.headers["helicone-id"])
    assert row["properties"]["feedgate-undecodable"] == encoding
    assert row["response_body"] is None and row["response_text"] is None  # never garbled bytes as text
    assert row["request_model"] == "gpt-4o" and row["model"] == "gpt-4o"
    assert (await readyz_log(http, gateway))["undecodable_answers"] == 1


async def test_corrupt_gzip_answer_is_marked(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession(auto_decompress=False) as raw_http:
        headers = {"X-Fake-Behavior": "corrupt-gzip", "Accept-Encoding": "gzip"}
        async with raw_http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
            request_id = r.headers["Helicone-Id"]
    row = await read_back(http, gateway, request_id)
    assert row["properties"]["feedgate-undecodable"] == "gzip" and row["response_body"] is None
    assert (await readyz_log(http, gateway))["undecodable_answers"] == 1


async def test_gzip_answer_over_the_cap_is_cut_and_marked(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(database={"max_decoded_answer_bytes": 2048})
    async with sdk(gateway, "encoding:gzip") as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": LONG}]
        )
    assert raw.headers["Content-Encoding"] == "gzip" and len(raw.parse().choices[0].message.content or "") > 2048
    row = await read_back(http, gateway, raw.headers["helicone-id"])
    assert row["properties"]["feedgate-truncated"] == "decoded answer cut at 2048 bytes"
    assert len(row["response_body"]) == 2048  # the cut JSON is kept as its text
    assert (await readyz_log(http, gateway))["truncated_answers"] == 1


def test_a_decompression_bomb_decodes_only_to_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in about 64 KB
    assert len(bomb) < 100_000
    decoded = decoded_body(bomb, "gzip", limit=1024 * 1024)
    assert (len(decoded.body), decoded.problem) == (1024 * 1024, "truncated")
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw_deflate.compress(b"plain deflate without its header") + raw_deflate.flush()
    assert decoded_body(body, "deflate").body == b"plain deflate without its header"
    assert decoded_body(gzip.compress(b"x"), "x-unknown, gzip").problem == "undecodable"


async def test_gzip_request_body_is_forwarded_decoded_and_logged(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    plain = b'{"model":"gpt-4o","messages":[{"role":"user","content":"echo: unzipped"}]}'
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with http.post(f"{gateway.v1}/chat/completions", data=gzip.compress(plain), headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["choices"][0]["message"]["content"] == "unzipped"
        request_id = r.headers["Helicone-Id"]
    assert fake.last.body == plain and fake.last.header("Content-Encoding") is None
    assert fake.last.header("Content-Length") == str(len(plain))
    row = await read_back(http, gateway, request_id)
    assert row["request_body"]["messages"][0]["content"] == "echo: unzipped"
    assert row["response_text"] == "unzipped"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
async def test_request_body_that_does_not_decompress_is_a_400(
    gateway: Gateway, fake: FakeUpstream, encoding: str
) -> None:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    body = b"\x1f\x8b\x08\x00 not compressed"
    # aiohttp closes a connection whose body it could not read: one connection per request.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.post(f"{gateway.v1}/chat/completions", data=body, headers=headers) as r:
            assert r.status == 400 and r.headers["Helicone-Id"]
            error = (await r.json())["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_body_encoding"
        assert f"content-encoding: {encoding}" in error["message"]
        assert fake.received == []  # nothing reached the provider
        # The feedback routes answer the same body in their own shape.
        async with http.post(f"{gateway.v1}/request/x/feedback", data=body, headers=headers) as r:
            assert r.status == 400
            answer = await r.json()
        assert answer["data"] is None and "cannot be read" in answer["error"]


def test_accept_encoding_keeps_what_the_client_offered_and_the_log_can_read() -> None:
    assert loggable_accept_encoding("gzip, deflate, br, zstd") == "gzip, deflate"
    assert loggable_accept_encoding("br;q=1.0, gzip;q=0.8, zstd") == "gzip;q=0.8"
    assert loggable_accept_encoding("br") == "identity"  # identity is always acceptable unless refused
    assert loggable_accept_encoding("*, br") == "gzip, deflate"
    assert loggable_accept_encoding("gzip;q=0, br, deflate") == "deflate"
