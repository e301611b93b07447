"""Helicone-RateLimit-Policy: quotas per tenant and segment, Helicone's headers, 429 and 400."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from conftest import Chat, Gateway, GatewayFactory
from fakes import FakeUpstream
from feedgate.appkeys import STORE
from feedgate.proxy.features.ratelimit import LocalRateCounter, parse_policy

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def post(
    http: aiohttp.ClientSession, gateway: Gateway, headers: dict[str, str], body: object = CHAT
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{gateway.v1}/chat/completions", json=body, headers={"Authorization": "Bearer sk-a", **headers}
    ) as r:
        await r.read()
        return r


async def test_quota_reached_with_the_sdk(gateway: Gateway, fake: FakeUpstream) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-tenant", max_retries=0) as client:
        headers = {"Helicone-RateLimit-Policy": "2;w=60"}
        remaining = []
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(**CHAT, extra_headers=headers)
            remaining.append(raw.headers["helicone-ratelimit-remaining"])
            assert raw.headers["helicone-ratelimit-limit"] == "2"
            assert raw.headers["helicone-ratelimit-policy"] == "2;w=60;u=request"
        assert remaining == ["1", "0"]
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(**CHAT, extra_headers=headers)
    response = caught.value.response
    assert response.status_code == 429 and caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    assert response.headers["helicone-ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["helicone-ratelimit-reset"]) <= 60
    assert response.headers["retry-after"] == response.headers["helicone-ratelimit-reset"]
    assert len(fake.received) == 2  # the refused call never went upstream
    row = await gateway.row(response.headers["helicone-id"])
    assert row["status"] == 429 and row["error_type"] == "rate_limited"
    # Another tenant (another key) has its own quota.
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-other-tenant", max_retries=0) as other:
        await other.chat.completions.create(**CHAT, extra_headers=headers)


async def test_user_and_property_segments(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    user_policy = {"Helicone-RateLimit-Policy": "1;w=60;s=user"}
    assert (await post(http, gateway, {**user_policy, "Helicone-User-Id": "alice"})).status == 200
    assert (await post(http, gateway, {**user_policy, "Helicone-User-Id": "alice"})).status == 429
    assert (await post(http, gateway, {**user_policy, "Helicone-User-Id": "bob"})).status == 200
    # The body's "user" counts when the header is absent, as in Helicone.
    assert (await post(http, gateway, user_policy, {**CHAT, "user": "carol"})).status == 200
    assert (await post(http, gateway, user_policy, {**CHAT, "user": "carol"})).status == 429

    org_policy = {"Helicone-RateLimit-Policy": "1;w=60;s=org"}
    assert (await post(http, gateway, {**org_policy, "Helicone-Property-Org": "acme"})).status == 200
    assert (await post(http, gateway, {**org_policy, "Helicone-Property-Org": "acme"})).status == 429
    assert (await post(http, gateway, {**org_policy, "Helicone-Property-Org": "initech"})).status == 200


@pytest.mark.parametrize(
    ("policy", "extra", "fragment"),
    [
        ("ten;w=60", {}, "quota"),
        ("10", {}, "w=<seconds>"),
        ("10;w=0", {}, "at least 1"),
        ("10;w=60;u=tokens", {}, "u must be request or cents"),
        ("10;w=60;x=1", {}, "unknown parameter"),
        ("10;w=60;s=user", {}, "Helicone-User-Id"),
        ("10;w=60;s=team", {}, "Helicone-Property-team"),
    ],
)
async def test_malformed_policy_is_400_saying_why(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession, policy: str, extra: dict[str, str], fragment: str
) -> None:
    async with http.post(
        f"{gateway.v1}/chat/completions",
        json=CHAT,
        headers={"Authorization": "Bearer sk", "Helicone-RateLimit-Policy": policy, **extra},
    ) as r:
        assert r.status == 400
        assert fragment in (await r.json())["error"]["message"]
    assert not fake.received
    await gateway.settled()
    assert await gateway.app[STORE].count_requests() == 0  # refused before anything happened


async def test_cents_policy_counts_cost_after_the_answer(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    # A price high enough that one small call costs more than the 1-cent quota.
    gateway = await make_gateway(prices={"fake-pricey": {"input": 10_000.0, "output": 10_000.0}})
    headers = {"Helicone-RateLimit-Policy": "1;w=3600;u=cents"}
    body = {**CHAT, "model": "fake-pricey"}
    first = await post(http, gateway, headers, body)
    assert first.status == 200 and first.headers["Helicone-RateLimit-Policy"] == "1;w=3600;u=cents"
    row = await gateway.row(first.headers["Helicone-Id"])
    assert row["cost_usd"] * 100 > 1
    for _ in range(50):  # the cost is counted just after the answer went out
        second = await post(http, gateway, headers, body)
        if second.status == 429:
            break
        await asyncio.sleep(0.01)
    assert second.status == 429 and second.headers["Helicone-RateLimit-Remaining"] == "0"


def test_parse_policy_accepts_helicone_forms() -> None:
    assert parse_policy("1000;w=3600").header == "1000;w=3600;u=request"
    policy = parse_policy(" 500;w=60;u=cents;s=user ")
    assert (policy.quota, policy.window_s, policy.unit, policy.segment) == (500, 60, "cents", "user")


async def test_window_slides() -> None:
    counter = LocalRateCounter()
    assert (await counter.take("k", 10, 2, 1, now=100.0)).allowed
    assert (await counter.take("k", 10, 2, 1, now=105.0)).allowed
    refused = await counter.take("k", 10, 2, 1, now=109.0)
    assert not refused.allowed and refused.oldest == 100.0
    assert (await counter.take("k", 10, 2, 1, now=110.5)).allowed  # the first unit left the window
