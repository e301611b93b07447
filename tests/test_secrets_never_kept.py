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
import pytest

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


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_feedback_tokens_and_their_secret_are_nowhere_in_the_store_or_the_output(
    tmp_path: Path, upstream_url: str, log_format: str
) -> None:
    """A token is a credential: used, refused, altered or expired, it is in no log line and no stored row."""
    token_secret = "token-secret-" + secrets.token_hex(16)
    db = tmp_path / "tokens.db"
    env = {
        "FEEDGATE_OPENAI_BASE_URL": upstream_url,
        "FEEDGATE_DATABASE_URL": f"sqlite:///{db}",
        "FEEDGATE_FEEDBACK_TOKEN_SECRETS": token_secret,
        "FEEDGATE_LOG_LEVEL": "debug",
        "FEEDGATE_LOG_FORMAT": log_format,
    }
    port = free_port()
    proc = await spawn(env, port)
    url = f"http://127.0.0.1:{port}"
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: fine"}]}
    used: list[str] = []
    try:
        await wait_ready(url, proc)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/v1/chat/completions", json=chat, headers={"Authorization": "Bearer sk-x"}
            ) as r:
                request_id, token = r.headers["Helicone-Id"], r.headers["Feedgate-Feedback-Token"]
            altered = token[:-3] + "AAA"
            used += [token, altered]

            async def post(path: str, body: object, bearer: str, expected: int) -> None:
                headers = {"Authorization": f"Bearer {bearer}"}
                async with http.post(f"{url}{path}", json=body, headers=headers) as answer:
                    assert answer.status == expected, await answer.text()

            await post(f"/v1/request/{request_id}/feedback", {"rating": True}, token, 201)
            await post(f"/v1/request/{request_id}/feedback", {"rating": True}, altered, 401)
            await post("/v1/request/another-id/score", {"scores": {"stars": 1}}, token, 403)
            await post("/v1/request/query", {"filter": "all"}, token, 401)
            await post("/v1/chat/completions", chat, token, 401)
            async with http.post(f"{url}/v1/feedback-tokens", json={"request_ids": ["msg-1"]}) as r:
                used.append((await r.json())["data"]["request_tokens"]["msg-1"])
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await proc.communicate()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("tokens.db*"))
    assert b"fine" in stored  # the call was logged
    printed = out + err
    assert b"/v1/request/query" in printed and b"401" in printed  # the refusals were logged, as lines
    for secret in (token_secret, *used):
        assert secret.encode() not in stored and secret.encode() not in printed
        # Nor their signature alone (a token cut at a line's edge).
        assert secret.rsplit(".", 1)[-1].encode() not in stored + printed
