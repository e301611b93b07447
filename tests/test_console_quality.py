"""``/console/quality`` through real HTTP: the API's figures per group, whiskers, and rows that open the list."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from analysis_data import ago, known_dataset, row
from conftest import Gateway
from console_client import console, text_of
from feedgate.appkeys import WRITER


@pytest.fixture
async def loaded(either_gateway: Gateway) -> Gateway:
    await either_gateway.app[WRITER].submit(known_dataset())
    return either_gateway


def table_rows(page_html: str) -> dict[str, str]:
    """Each body row's text, by its first cell's text."""
    body = page_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = {}
    for found in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        text = text_of(found)
        out[text.split(" ")[0]] = text
    return out


async def stats(http: aiohttp.ClientSession, gateway: Gateway, query: str) -> Any:
    async with http.get(f"{gateway.v1}/feedback/stats?{query}") as r:
        assert r.status == 200
        return (await r.json())["data"]


async def test_by_model_shows_the_apis_figures(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    expected = await stats(http, loaded, "since=7d&group_by=model")
    async with console(loaded.url) as browser:
        page = await browser.get("/console/quality")
    assert page.status == 200
    rows = table_rows(page.text)
    for group in expected["groups"]:
        text = rows[group["key"]]
        rate, low, high = group["positive_rate"], group["positive_rate_low"], group["positive_rate_high"]
        assert text.startswith(
            f"{group['key']} {group['requests']} {group['rated']} {group['positive']} {group['negative']} {rate:.1%}"
        )
        assert f"{low:.1%} – {high:.1%}" in text
        label = f'aria-label="positive rate {rate:.1%}, 95% interval {low:.1%} to {high:.1%}"'
        assert label in page.text
        assert f'<a class="open" href="/console/requests?since=7d&amp;model={group["key"]}">' in page.text
    assert "copied +2/−0" in rows["gpt-4o"] and "regenerated +0/−1" in rows["gpt-4o"]
    assert "helpfulness 0.75" in rows["gpt-4o"]


async def test_each_row_opens_the_list_of_its_requests(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        for by in ("day", "user", "prompt", "property:feature"):
            page = await browser.get(f"/console/quality?by={by}")
            assert page.status == 200, text_of(page.text)
            links = re.findall(
                r'<a class="open" href="(/console/requests\?[^"]+)">[^<]*</a>\s*</th>\s*<td class="num">(\d+)',
                page.text,
            )
            assert links, by
            for link, requests in links:
                listed = await browser.get(link.replace("&amp;", "&"))
                assert listed.status == 200
                assert len(re.findall(r'<a class="open" href="/console/requests/', listed.text)) == int(requests), link


async def test_by_path_has_no_list_to_open_and_bad_dimensions_are_a_message(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        by_path = await browser.get("/console/quality?by=path")
        bad = await browser.get("/console/quality?by=colour")
        unknown = await browser.get("/console/quality?group_by=model")
    assert by_path.status == 200 and "/v1/chat/completions" in by_path.text
    assert '<a class="open"' not in by_path.text
    assert bad.status == 400 and "unknown dimension 'colour'" in text_of(bad.text)
    assert unknown.status == 400 and "unknown parameter 'group_by'" in text_of(unknown.text)


async def test_group_keys_are_text(gateway: Gateway) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    await gateway.app[WRITER].submit(row("h", when=ago(minutes=1), model=hostile))
    async with console(gateway.url) as browser:
        page = await browser.get("/console/quality")
    assert page.status == 200 and "<img" not in page.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
