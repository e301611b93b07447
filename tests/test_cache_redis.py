"""With ``redis.url`` set, the response cache lives in Redis: instances with separate stores share it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp

from conftest import GatewayFactory
from fakes import FakeUpstream
from test_shared_state import REDIS_URL, drop_prefix, redis_or_skip


async def test_two_instances_share_cached_answers_through_redis(
    make_gateway: GatewayFactory, fake: FakeUpstream, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await redis_or_skip()
    # A seed of its own keeps this run's entries apart from any other run's on the same Redis.
    seed = uuid.uuid4().hex
    a = await make_gateway(redis={"url": REDIS_URL}, database={"url": f"sqlite:///{tmp_path / 'a.db'}"})
    b = await make_gateway(redis={"url": REDIS_URL}, database={"url": f"sqlite:///{tmp_path / 'b.db'}"})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: shared"}], "stream": True}
    headers = {"Authorization": "Bearer k", "Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": seed}
    try:
        async with http.post(f"{a.v1}/chat/completions", json=body, headers=headers) as r:
            assert r.headers["Helicone-Cache"] == "MISS"
            first = await r.read()
            first_id = r.headers["Helicone-Id"]
        for _ in range(100):  # the entry is saved in the background, after the answer
            async with http.post(f"{b.v1}/chat/completions", json=body, headers=headers) as r:
                replayed = await r.read()
                if r.headers["Helicone-Cache"] == "HIT":
                    break
            await asyncio.sleep(0.02)
        assert r.headers["Helicone-Cache"] == "HIT" and replayed == first
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert len([x for x in fake.received if x.path == "/v1/chat/completions"]) == 1
        hit = await b.row(r.headers["Helicone-Id"])
        assert hit["cache_reference_id"] == first_id and hit["cost_usd"] == 0.0
        assert await b.rows(first_id) == []  # the original is logged by A only: the entry came through Redis
    finally:
        await drop_prefix("feedgate:kv:cache:")
