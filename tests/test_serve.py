"""The real ``feedgate serve`` process: the sync SDK, and SIGTERM under load losing no row."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import aiohttp
import openai
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway
from fakes import FakeUpstream
from serving import spawn, wait_ready
from tcpproxy import free_port

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


def test_sync_client_chat_and_stream(threaded_gateway: tuple[Gateway, FakeUpstream, asyncio.AbstractEventLoop]) -> None:
    gateway, fake, loop = threaded_gateway
    with openai.OpenAI(base_url=gateway.v1, api_key="sk-sync", max_retries=0) as api:
        raw = api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "Hello from fake upstream"
        with api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
            stream_id = stream.response.headers["helicone-id"]
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from fake upstream"
    rows = asyncio.run_coroutine_threadsafe(gateway.rows(stream_id), loop).result(10)
    assert rows[0]["response_text"] == text and rows[0]["is_stream"] == 1
    first = asyncio.run_coroutine_threadsafe(gateway.rows(raw.headers["helicone-id"]), loop).result(10)
    assert first[0]["status"] == 200


async def test_sigterm_under_load_loses_no_answered_row(tmp_path: Path, upstream_url: str) -> None:
    port = free_port()
    db = tmp_path / "serve.db"
    env = {"FEEDGATE_OPENAI_BASE_URL": upstream_url, "FEEDGATE_DATABASE_URL": f"sqlite:///{db}"}
    proc = await spawn(env, port)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, proc)
    answered: list[str] = []

    async def one(http: aiohttp.ClientSession, n: int) -> None:
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": n % 2 == 0}
        headers = {"Authorization": "Bearer sk-x", "X-Fake-Behavior": "slow:20"}
        try:
            async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                await r.read()
                if r.status == 200:
                    answered.append(r.headers["Helicone-Id"])
        except aiohttp.ClientError:
            pass  # sent after the listener closed: never answered, so nothing to log

    async with aiohttp.ClientSession() as http:
        load = [asyncio.create_task(one(http, n)) for n in range(300)]
        while len(answered) < 50:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*load)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    with sqlite3.connect(db) as conn:
        logged = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
    assert len(answered) >= 50
    assert set(answered) <= logged
    # The access log has one line per request and never a body.
    assert b"/v1/chat/completions 200" in stderr and b"Say hello" not in stderr


async def test_malformed_requests_are_refused_without_filling_the_log(tmp_path: Path, upstream_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FEEDGATE_OPENAI_BASE_URL": upstream_url,
        "FEEDGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
    }
    proc = await spawn(env, port, stdout=asyncio.subprocess.DEVNULL)
    await wait_ready(f"http://127.0.0.1:{port}", proc)
    malformed = [
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",  # a control character in the request line
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",  # a header over aiohttp's limit
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",  # impossible framing
    ]
    for n in range(150):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(malformed[n % len(malformed)])
        assert (await reader.readline()).split()[1] == b"400"
        writer.close()
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    # One short line for the lot (a flood within ten seconds), never a traceback per request.
    assert b"Traceback" not in stderr and stderr.count(b"malformed request") == 1, stderr.decode()[-2000:]
    assert len(stderr) < 40_000
