"""``/console/insights`` through real HTTP: poor-rating patterns with their comments, regressions as bars."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from analysis_data import ago, rate, row
from conftest import GatewayFactory
from console_client import console, text_of
from feedgate.appkeys import WRITER

HOSTILE = "<script>alert('comment')</script>"


async def test_patterns_and_regressions_with_their_requests(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(analysis={"min_ratings": 5})
    ops: list[Any] = []
    for i in range(20):  # m-good: always up; m-bad: down since a day ago, up before
        ops += [row(f"g{i}", when=ago(days=2, minutes=i), model="m-good"), rate(f"g{i}", True)]
        ops += [row(f"old{i}", when=ago(days=6, minutes=i), model="m-bad"), rate(f"old{i}", True)]
        comment = HOSTILE if i == 0 else "wrong again" if i == 1 else None
        ops += [row(f"bad{i}", when=ago(hours=20, minutes=i), model="m-bad"), rate(f"bad{i}", False, comment=comment)]
    await gateway.app[WRITER].submit(ops)
    async with http.get(f"{gateway.v1}/feedback/insights?since=30d") as r:
        api = (await r.json())["data"]
    async with console(gateway.url) as browser:
        page = await browser.get("/console/insights")
        assert page.status == 200
        text = text_of(page.text)
        found = next(i for i in api["insights"] if i["dimension"] == "model")
        assert found["key"] == "m-bad"
        share = f"{found['negative_rate']:.1%} thumbs-down ({found['negative']} of {found['rated']};"
        assert f"model m-bad: {share}" in text
        # Example comments come first, as text, each opening its request.
        assert "<script>alert" not in page.text and f"“{HOSTILE}” — request bad0" in text
        assert "“wrong again” — request bad1" in text
        assert '<a href="/console/requests/bad0">request bad0</a>' in page.text
        link = re.search(
            r'<a href="(/console/requests\?[^"]*model=m-bad[^"]*)">its thumbs-down requests</a>', page.text
        )
        assert link is not None
        listed = await browser.get(link.group(1).replace("&amp;", "&"))
        ids = re.findall(r'<a class="open" href="/console/requests/([^"?]+)', listed.text)
        assert sorted(ids) == sorted(f"bad{i}" for i in range(20))
        # The regression is drawn as before/after bars and says its figures.
        assert "model m-bad: positive rate fell from 100.0% (n=20) to 0.0% (n=20)" in text
        assert 'aria-label="positive rate: before 100.0% (n=20), recent 0.0% (n=20)"' in page.text


async def test_insights_bad_values_are_a_message(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    async with console(gateway.url) as browser:
        for query, message in (("since=later", "is not an ISO 8601"), ("by=model", "unknown parameter 'by'")):
            page = await browser.get(f"/console/insights?{query}")
            assert page.status == 400 and message in text_of(page.text)
        empty = await browser.get("/console/insights")
    assert empty.status == 200 and text_of(empty.text).count("None found.") == 2
