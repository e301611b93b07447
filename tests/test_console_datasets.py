"""``/console/datasets`` through real HTTP: made from the list's filter, previewed, downloaded like the API's."""

from __future__ import annotations

import re

import aiohttp
import orjson
import pytest

from analysis_data import known_dataset
from conftest import Gateway
from console_client import console, text_of
from feedgate.appkeys import WRITER


@pytest.fixture
async def loaded(either_gateway: Gateway) -> Gateway:
    await either_gateway.app[WRITER].submit(known_dataset())
    return either_gateway


async def api_export(http: aiohttp.ClientSession, gateway: Gateway, dataset_id: str, query: str) -> bytes:
    async with http.get(f"{gateway.v1}/datasets/{dataset_id}/export?{query}") as r:
        assert r.status == 200
        return await r.read()


async def test_a_dataset_from_the_list_filter_previews_and_downloads_like_the_api(
    loaded: Gateway, http: aiohttp.ClientSession
) -> None:
    async with console(loaded.url) as browser:
        made = await browser.submit(
            "/console/requests?model=gpt-4o&has_comment=yes",
            "/console/datasets",
            {"name": "commented <gpt-4o>", "list": "model=gpt-4o&has_comment=yes"},
        )
        assert made.status == 200
        found = re.search(r"/console/datasets/([0-9a-f-]{36})$", made.url)
        assert found, made.url
        dataset_id = found.group(1)
        text = text_of(made.text)
        assert "Dataset commented <gpt-4o>" in text and "2 requests" in text  # a1 and a7
        assert "&lt;gpt-4o&gt;" in made.text
        for fmt in ("openai-chat", "few-shot", "jsonl"):
            assert f'href="/console/datasets/{dataset_id}/export?format={fmt}"' in made.text
        previews = re.findall(r"<pre>(.*?)</pre>", made.text, re.S)
        assert previews  # the first lines of each format, readable JSON
        listing = await browser.get("/console/datasets")
        assert 'href="/console/requests?model=gpt-4o&amp;has_comment=yes"' in listing.text
        for query in ("format=openai-chat", "format=jsonl", "format=few-shot&split=0.5&seed=3&part=validation"):
            async with browser.http.get(f"{loaded.url}/console/datasets/{dataset_id}/export?{query}") as r:
                assert r.status == 200
                assert r.headers["Content-Disposition"].startswith("attachment;")
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["Cache-Control"] == "no-store"
                body = await r.read()
            assert body == await api_export(http, loaded, dataset_id, query)
            for line in body.splitlines():
                orjson.loads(line)
    async with http.get(f"{loaded.v1}/datasets/{dataset_id}") as r:
        assert (await r.json())["data"]["requests_count"] == 2


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": " ", "list": ""}, "A dataset needs a name."),
        ({"name": "x", "list": "rating=maybe"}, "rating must be up, down or none"),
        ({"name": "x" * 201, "list": ""}, "at most 200 characters"),
    ],
)
async def test_bad_datasets_are_a_message(loaded: Gateway, form: dict[str, str], message: str) -> None:
    async with console(loaded.url) as browser:
        page = await browser.submit("/console/requests", "/console/datasets", form)
    assert page.status == 400 and message in text_of(page.text)


async def test_bad_downloads_and_unknown_datasets(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        made = await browser.submit("/console/requests", "/console/datasets", {"name": "all", "list": ""})
        base = made.url.split("?")[0]
        for query, status, message in (
            ("format=csv", 400, "format must be one of"),
            ("format=jsonl&colour=red", 400, "unknown parameter 'colour'"),
            ("format=jsonl&split=2", 400, "split"),
        ):
            page = await browser.get(base.replace(loaded.url, "") + f"/export?{query}")
            assert page.status == status and message in text_of(page.text), query
            assert "text/html" in page.headers["Content-Type"]
        missing = await browser.get("/console/datasets/no-such-dataset")
        refused = await browser.post("/console/datasets", {"name": "no token", "list": ""})
    assert missing.status == 404 and "There is no dataset with ID no-such-dataset." in text_of(missing.text)
    assert refused.status == 403
