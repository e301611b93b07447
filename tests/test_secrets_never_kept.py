"""A key sent every way a client can put one reaches neither the store nor the gateway's output, even at
log_level debug: headers of any credential name, query parameters, Helicone-Target-Url and Helicone-Fallbacks
values, JSON body fields, properties, manual logs. The whole SQLite file and everything the real
``feedgate serve`` printed are searched for it."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

import aiohttp
import orjson

from serving import spawn, wait_ready
from tcpproxy import free_port
from test_hostile_proxy_input import raw_call


async def test_a_key_sent_every_known_way_is_nowhere_in_the_store_or_the_output(
    tmp_path: Path, combined_url: str, other_url: str
) -> None:
    key = "sk-" + secrets.token_hex(16)
    db = tmp_path / "secrets.db"
    port = free_port()
    env = {
        "FEEDGATE_OPENAI_BASE_URL": combined_url,
        "FEEDGATE_ANTHROPIC_BASE_URL": combined_url,
        "FEEDGATE_DATABASE_URL": f"sqlite:///{db}",
        "FEEDGATE_PROXY_ALLOWED_TARGET_ORIGINS": other_url,
        "FEEDGATE_LOG_LEVEL": "debug",
    }
    proc = await spawn(env, port)
    url = f"http://127.0.0.1:{port}"
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: fine"}]}
    try:
        await wait_ready(url, proc)
        async with aiohttp.ClientSession() as http:

            async def call(path: str, body: object, **headers: str) -> None:
                async with http.post(f"{url}{path}", json=body, headers=headers) as answer:
                    assert answer.status == 200, await answer.text()

            await call("/v1/chat/completions", chat, Authorization=f"Bearer {key}")
            await call("/v1/chat/completions", chat, **{"x-goog-api-key": key, "api-key": key, "Cookie": f"s={key}"})
            await call("/v1/chat/completions", chat, **{"Helicone-Auth": f"Bearer {key}", "X-Amz-Security-Token": key})
            await call(
                "/anthropic/v1/messages",
                {"model": "claude-3-5-haiku-latest", "max_tokens": 10, "messages": chat["messages"]},
                **{"x-api-key": key, "anthropic-version": "2023-06-01"},
            )
            await call(
                "/v1/chat/completions", {**chat, "api_key": key, "metadata": {"client_secret": key}, "apiKey": key}
            )
            await call("/v1/chat/completions", chat, **{"Helicone-Property-Api-Key": key})
            await call("/v1/chat/completions", chat, **{"Helicone-Target-Url": f"{other_url}/v1?key={key}"})
            fallbacks = [
                {
                    "target-url": f"{other_url}?api_key={key}",
                    "headers": {"api-key": key, "Authorization": f"Bearer {key}"},
                }
            ]
            await call("/v1/chat/completions", chat, **{"Helicone-Fallbacks": orjson.dumps(fallbacks).decode()})
            for name in ("key", "api_key", "secret", "password", "access_token", "sig"):
                status, _ = await raw_call(
                    url, "POST", f"/v1/chat/completions?{name}={key}".encode(), [], orjson.dumps(chat)
                )
                assert status == 200
            manual = {
                "providerRequest": {
                    "url": f"https://api.example.com/v1/chat/completions?key={key}",
                    "json": {**chat, "api_key": key},
                    "meta": {"Authorization": f"Bearer {key}", "Helicone-Property-Token": key},
                },
                "providerResponse": {"json": {"choices": []}, "status": 200, "headers": {"Set-Cookie": f"s={key}"}},
            }
            await call("/custom/v1/log", manual)
            async with http.get(f"{url}/readyz") as ready:
                assert ready.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await proc.communicate()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("secrets.db*"))
    assert b"fine" in stored and stored.count(b"[redacted]") >= 20  # the calls were logged, their keys replaced
    assert key.encode() not in stored
    printed = out + err
    assert b"POST /v1/chat/completions 200" in printed and key.encode() not in printed
