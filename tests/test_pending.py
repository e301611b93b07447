"""Pending feedback: listed by ``feedgate pending``, logged and dropped when nothing claims it in time."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import aiohttp
import orjson
import pytest

from conftest import GatewayFactory
from feedgate.appkeys import STORE, WRITER
from feedgate.store.pending import sweep_once


async def test_unclaimed_feedback_is_reported_then_dropped(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # The TTL outlasts the CLI's start-up on a slow machine, so the listing below sees the entry for sure.
    caplog.set_level(logging.WARNING, logger="feedgate.pending")
    gw = await make_gateway(feedback={"pending_ttl_s": 3.0})
    posted = time.monotonic()
    async with http.post(f"{gw.v1}/request/typo-id/feedback", json={"rating": False, "comment": "meh"}) as r:
        assert r.status == 202
    async with http.post(f"{gw.v1}/request/typo-id/score", json={"scores": {"stars": 1}}) as r:
        assert r.status == 202

    listed = subprocess.run(
        [sys.executable, "-m", "feedgate", "pending", "--json", "--database-url", gw.settings.database.url],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(row["request_id"], row["events"]) for row in rows] == [("typo-id", 2)]

    await asyncio.sleep(max(0.0, posted + 3.2 - time.monotonic()))
    # The gateway's own sweeper (once a second) may get there first: either way, reported once and dropped.
    await sweep_once(gw.app[STORE], gw.app[WRITER], 3.0)
    assert caplog.text.count("dropping unclaimed feedback for request typo-id") == 1
    async with http.get(f"{gw.v1}/request/typo-id/feedback") as r:
        data = (await r.json())["data"]
    assert data["rating"] is None and data["history"] == [] and data["scores"] == {}


async def test_claimed_feedback_is_never_dropped(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gw = await make_gateway(feedback={"pending_ttl_s": 0.1})
    async with http.post(f"{gw.v1}/request/late-1/feedback", json={"rating": True}) as r:
        assert r.status == 202
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{gw.v1}/chat/completions", json=body, headers={"Helicone-Request-Id": "late-1"}) as r:
        assert r.status == 200
    await gw.settled()

    await asyncio.sleep(0.2)
    assert await sweep_once(gw.app[STORE], gw.app[WRITER], 0.1) == 0
    async with http.get(f"{gw.v1}/request/late-1") as r:
        assert (await r.json())["data"]["feedback_rating"] is True
