"""The console's pages through real HTTP (no browser): the request list and its filters, one request, rating
from the console, the overview's numbers, and hostile logged strings shown as text."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from analysis_data import ago, known_dataset, rate, row
from conftest import Gateway, GatewayFactory
from console_client import console, text_of
from feedgate.appkeys import WRITER
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest

NEWEST_FIRST = ["b5", "b4", "b3", "b2", "b1", *(f"a{i}" for i in range(10, 0, -1))]


@pytest.fixture
async def loaded(either_gateway: Gateway) -> Gateway:
    """The known dataset, on SQLite and then on PostgreSQL: the console reads both stores alike."""
    await either_gateway.app[WRITER].submit(known_dataset())
    return either_gateway


def listed(page_html: str) -> list[str]:
    """The request IDs a list page links to, in order."""
    return re.findall(r'<a class="open" href="/console/requests/([^"?]+)', page_html)


async def test_the_list_is_newest_first_with_its_columns(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get("/console/requests")
    assert page.status == 200
    assert listed(page.text) == NEWEST_FIRST
    text = text_of(page.text)
    for column in ("Time (UTC)", "Status", "Model", "User", "Session", "Last user message", "Answer", "Tokens"):
        assert column in text
    assert "question 7" in text and "answer 7" in text and "claude-sonnet-4-5" in text
    assert "helpfulness=1.0" in text and "copied" in text and "regenerated" in text
    assert "$0.1250" in text and "700 ms" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("model=claude-sonnet-4-5", ["b5", "b4", "b3", "b2", "b1"]),
        ("user=u2", ["b5", "b4", "b3", "b2", "b1"]),
        ("prompt=support", [f"a{i}" for i in range(10, 0, -1)]),
        ("rating=down", ["b4", "b3", "b2", "a8", "a7"]),
        ("rating=up", ["b1", "a6", "a5", "a4", "a3", "a2", "a1"]),
        ("rating=none", ["b5", "a10", "a9"]),
        ("model=gpt-4o&rating=down", ["a8", "a7"]),
        ("property=feature:chat", ["b2", "b1", "a5", "a4", "a3", "a2", "a1"]),
        ("property=feature:chat&property=feature:code", []),
        ("signal=copied", ["a2", "a1"]),
        ("score=helpfulness>=0.75", ["a2"]),
        ("score=helpfulness<1", ["a1"]),
        ("score=helpfulness%3D0.5", ["a1"]),
        ("has_comment=yes", ["b2", "a7", "a1"]),
        ("since=12h", ["b5", "b4", "b3", "b2", "b1", "a10", "a9"]),
        ("until=12h", [f"a{i}" for i in range(8, 0, -1)]),
        ("status=2xx", NEWEST_FIRST),
        ("status=4xx", []),  # a1's 429 was retried: only the latest attempt counts
        ("status=failed", []),
        ("model=&rating=&user=", NEWEST_FIRST),  # empty fields, as a filter form sends them, are off
        ("model=&rating=down&user=", ["b4", "b3", "b2", "a8", "a7"]),
        ("model=x%27%20OR%20%271%27%3D%271", []),
    ],
)
async def test_each_filter_narrows_the_list(loaded: Gateway, query: str, expected: list[str]) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get(f"/console/requests?{query}")
    assert page.status == 200, text_of(page.text)
    assert listed(page.text) == expected
    if not expected:
        assert "No logged request matches these filters." in page.text


async def test_empty_form_fields_are_dropped_from_the_address(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get("/console/requests?since=&model=gpt-4o&user=&rating=down", allow_redirects=False)
        everything = await browser.get("/console/requests?since=&model=", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/console/requests?model=gpt-4o&rating=down"
    assert everything.headers["Location"] == "/console/requests"


async def test_the_session_filter_and_links_keep_the_filters(loaded: Gateway) -> None:
    await loaded.app[WRITER].submit(
        [
            row("s1", when=ago(hours=1), session="ticket-1", user="u9"),
            row("s2", when=ago(minutes=30), session="ticket-1"),
        ]
    )
    async with console(loaded.url) as browser:
        page = await browser.get("/console/requests?session=ticket-1&rating=none")
        assert listed(page.text) == ["s2", "s1"]
        # Opening a row keeps the list's filters, so prev/next stay inside it.
        assert 'href="/console/requests/s1?session=ticket-1&amp;rating=none"' in page.text
        # A cell's value narrows the list further; a filter chip's link takes that one filter off.
        assert 'href="/console/requests?session=ticket-1&amp;rating=none&amp;user=u9"' in page.text
        assert 'href="/console/requests?session=ticket-1"' in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("rating=maybe", "rating must be up, down or none"),
        ("score=helpfulness", "score: expected NAME>=NUMBER"),
        ("score=helpfulness>=lots", "expected a number"),
        ("since=yesterday", "is not an ISO 8601 date or time"),
        ("since=9999999d", "reaches back before the year 1"),
        ("property=nocolon", "property: expected KEY:VALUE"),
        ("property=bad%20name:x", "invalid property name"),
        ("status=6xx", "status must be one of"),
        ("has_comment=no", "has_comment: the one value is yes"),
        ("model=a&model=b", "model may be given once"),
        ("colour=red", "unknown filter 'colour'"),
        ("before=yesterday", "is not a page position this list made"),
        ("model=%00", "NUL"),
        ("model=" + "x" * 1001, "at most 1000 characters"),
    ],
)
async def test_bad_filter_values_are_a_clear_message_on_the_page(loaded: Gateway, query: str, message: str) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get(f"/console/requests?{query}")
    assert page.status == 400
    assert "text/html" in page.headers["Content-Type"]
    assert message in text_of(page.text)
    assert 'role="alert"' in page.text and listed(page.text) == []
    assert 'action="/console/requests"' in page.text  # the filter form is still there to fix it


async def test_cursor_pages_walk_the_whole_list_once(either_gateway: Gateway) -> None:
    gateway = either_gateway
    await gateway.app[WRITER].submit([row(f"r{i:03d}", when=ago(minutes=i)) for i in range(120)])
    seen: list[str] = []
    async with console(gateway.url) as browser:
        path: str | None = "/console/requests?model=gpt-4o"
        while path is not None:
            page = await browser.get(path)
            assert page.status == 200
            ids = listed(page.text)
            assert 0 < len(ids) <= 50
            seen += ids
            older = re.search(r'<a href="(/console/requests\?[^"]+)" rel="next">Older</a>', page.text)
            path = older.group(1).replace("&amp;", "&") if older else None
            if path is not None:
                assert "model=gpt-4o" in path
    assert seen == [f"r{i:03d}" for i in range(120)]


async def test_a_request_page_shows_the_call_and_its_feedback(loaded: Gateway) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get("/console/requests/a7?rating=down")
    assert page.status == 200
    text = text_of(page.text)
    assert re.search(r"<details class=\"system\">\s*<summary>System prompt</summary>", page.text)
    assert "You are helpful." in text and "question 7" in text and "answer 7" in text
    assert "Rating now: down · “wrong”" in text
    assert "rated down" in text and "via test" in text
    assert "gpt-4o" in text and "700 ms" in text and "u1" in text and "feature" in text
    # Prev/next stay inside the list the page was opened from: a8 is the next newer thumbs-down.
    assert '<a href="/console/requests/a8?rating=down" rel="prev">Newer</a>' in page.text
    assert 'rel="next"' not in page.text
    assert "<summary>Raw JSON</summary>" in page.text and "&#34;messages&#34;" in page.text
    assert "Rate up" in page.text and "Rate down" in page.text


async def test_rating_from_the_console_is_feedback_the_api_reads_at_once(
    loaded: Gateway, http: aiohttp.ClientSession
) -> None:
    async with console(loaded.url) as browser:
        page = await browser.submit(
            "/console/requests/a9?model=gpt-4o",
            "/console/requests/a9/feedback",
            {"rating": "down", "comment": "made up a citation", "list": "model=gpt-4o"},
        )
        assert page.status == 200 and page.url.endswith("/console/requests/a9?model=gpt-4o")
        assert "made up a citation" in text_of(page.text)
        scored = await browser.submit(
            "/console/requests/a9", "/console/requests/a9/score", {"name": "accuracy", "value": "0.25"}
        )
        assert scored.status == 200
    async with http.get(f"{loaded.v1}/request/a9/feedback") as r:
        state = (await r.json())["data"]
    assert state["rating"] is False and state["comment"] == "made up a citation"
    assert state["user_id"] == "console"
    assert state["history"][-1]["source"] == "console"
    assert state["scores"] == {"accuracy": 0.25}


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"rating": "sideways"}, 400, "Choose Rate up or Rate down."),
        ({"rating": "up", "comment": "x" * 4001}, 422, "comment"),
        ({"rating": "up", "comment": "nul \x00 inside"}, 422, "comment"),
    ],
)
async def test_bad_ratings_are_refused_with_a_message(
    loaded: Gateway, form: dict[str, str], status: int, message: str
) -> None:
    async with console(loaded.url) as browser:
        page = await browser.submit("/console/requests/a9", "/console/requests/a9/feedback", form)
    assert page.status == status and message in text_of(page.text)


@pytest.mark.parametrize(
    ("form", "message"),
    [({"name": "accuracy", "value": "high"}, "A score is a number"), ({"name": "bad name!", "value": "1"}, "scores")],
)
async def test_bad_scores_are_refused_with_a_message(loaded: Gateway, form: dict[str, str], message: str) -> None:
    async with console(loaded.url) as browser:
        page = await browser.submit("/console/requests/a9", "/console/requests/a9/score", form)
    assert page.status in (400, 422) and message in text_of(page.text)


def logged(request_id: str, request: dict[str, Any], response: dict[str, Any]) -> InsertRequest:
    values: dict[str, Any] = dict(zip(REQUEST_COLUMNS, row(request_id, when=ago(minutes=1)).values, strict=True))
    values.update(request_body=orjson.dumps(request), response_body=orjson.dumps(response), response_text=None)
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


async def test_the_conversation_shows_tool_calls_and_images_as_placeholders(gateway: Gateway) -> None:
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "line one\nline two"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": "https://images.example/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4096}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"at": "cat"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ],
    }
    response = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "A cat.\nAnd a square."}}],
    }
    await gateway.app[WRITER].submit(logged("tools", request, response))
    async with console(gateway.url) as browser:
        page = await browser.get("/console/requests/tools")
    assert page.status == 200
    assert "[image: https://images.example/cat.png]" in page.text
    assert "[image: image/png, 3 kB inline]" in page.text
    assert "<img" not in page.text and 'src="https://images.example' not in page.text  # never fetched
    assert "Tool call <code>look</code>" in page.text and "&#34;at&#34;: &#34;cat&#34;" in page.text
    assert "result of call_1" in page.text and "a cat" in page.text
    # Line breaks are kept as they were (the stylesheet shows them: white-space: pre-wrap).
    assert '<div class="text">A cat.\nAnd a square.</div>' in page.text
    assert '<div class="text">line one\nline two</div>' in page.text


async def test_a_failed_call_still_shows_what_was_asked(gateway: Gateway) -> None:
    failed = row("failed", when=ago(minutes=1), status=500, question="will this work?")
    await gateway.app[WRITER].submit(failed)
    async with console(gateway.url) as browser:
        page = await browser.get("/console/requests/failed")
    assert page.status == 200
    text = text_of(page.text)
    assert "will this work?" in text and "not a chat feedgate can read in full" in text
    assert "No answer was logged" in text


async def test_the_overview_shows_the_apis_numbers(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{loaded.v1}/feedback/stats?since=7d&group_by=model") as r:
        stats = (await r.json())["data"]
    async with console(loaded.url) as browser:
        page = await browser.get("/console/")
        narrowed = await browser.get("/console/?since=30d&model=claude-sonnet-4-5&property=feature:chat")
    assert page.status == 200
    text = text_of(page.text)
    overall = stats["overall"]
    assert f"Requests {overall['requests']}" in text
    assert f"Share rated {overall['rated'] / overall['requests']:.1%} ({overall['rated']} rated)" in text
    low, high = overall["positive_rate_low"], overall["positive_rate_high"]
    assert f"Positive rate {overall['positive_rate']:.1%} 95% interval {low:.1%} – {high:.1%}" in text
    assert f"Cost ${overall['cost_usd']:,.2f}" in text
    assert f"Latency p50 {overall['duration_ms_p50']:,.0f} ms" in text
    assert "copied" in text and "regenerated" in text
    for group in stats["groups"]:
        assert f'href="/console/requests?since=7d&amp;model={group["key"]}"' in page.text
    assert "Open regressions" in text
    assert narrowed.status == 200 and "Requests 2" in text_of(narrowed.text)  # b1 and b2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=soon", "is not an ISO 8601 date or time"),
        ("property=feature", "property: expected KEY:VALUE"),
        ("group_by=user", "unknown parameter 'group_by'"),
        ("model=a&model=b", "model may be given once"),
    ],
)
async def test_overview_bad_values_are_a_message(loaded: Gateway, query: str, message: str) -> None:
    async with console(loaded.url) as browser:
        page = await browser.get(f"/console/?{query}")
    assert page.status == 400 and message in text_of(page.text)


HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(2)> <a href="javascript:alert(3)">x</a>'
HOSTILE_MARKUP = ("<script>alert", "<img src=x", '<a href="javascript:', "onerror=alert(2)>")


def assert_shown_as_text(page_html: str, *texts: str) -> None:
    """Each hostile string is on the page as text, and none of it is markup there."""
    for markup in HOSTILE_MARKUP:
        assert markup not in page_html
    assert 'href="javascript:' not in page_html.lower()
    shown = text_of(page_html)
    for text in texts:
        assert " ".join(text.split()) in shown


async def test_hostile_logged_strings_are_shown_as_text(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    client = openai.AsyncOpenAI(
        base_url=gateway.v1,
        api_key="sk-test",
        default_headers={
            "Helicone-User-Id": "<img src=x onerror=alert(4)>",
            "Helicone-Session-Id": "<script>alert(5)</script>",
            "Helicone-Property-Feature": '"><script>alert(6)</script>',
        },
    )
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"echo: {HOSTILE}"}]
    )
    request_id = raw.headers["Helicone-Id"]
    await gateway.settled()
    async with console(gateway.url) as browser:
        rated = await browser.submit(
            f"/console/requests/{request_id}",
            f"/console/requests/{request_id}/feedback",
            {"rating": "down", "comment": HOSTILE},
        )
        assert rated.status == 200
        listing = await browser.get("/console/requests")
        filtered = await browser.get("/console/requests?user=%3Cimg%20src%3Dx%20onerror%3Dalert(4)%3E")
    assert listed(filtered.text) == [request_id]
    for page in (rated, listing, filtered):
        assert_shown_as_text(page.text, HOSTILE, "<img src=x onerror=alert(4)>")
    assert_shown_as_text(rated.text, "<script>alert(5)</script>", '"><script>alert(6)</script>')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rated.text
    await client.close()


async def test_console_pages_add_nothing_to_the_proxy_path(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{gateway.v1}/chat/completions", json=body) as r:
        assert r.status == 200
        assert "Content-Security-Policy" not in r.headers and "Set-Cookie" not in r.headers
    async with http.get(f"{gateway.v1}/request/nope") as r:  # the API's errors keep their JSON shape
        assert r.status == 404 and (await r.json())["error"]


async def test_console_user_agents_never_see_json_errors(gateway: Gateway) -> None:
    async with console(gateway.url) as browser:
        for path in ("/console/requests/a%20b", "/console/requests/x/feedback", "/console/static/none.js"):
            page = await browser.get(path)
            assert page.status in (400, 404, 405)
            assert "text/html" in page.headers["Content-Type"], path


def chart_of(page_html: str) -> Any:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page_html, re.S)
    assert found, "no chart data on the page"
    return orjson.loads(found.group(1))


async def test_the_overview_chart_data_is_the_daily_stats(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{loaded.v1}/feedback/stats?since=7d&group_by=day") as r:
        daily = (await r.json())["data"]["groups"]
    async with http.get(f"{loaded.v1}/feedback/stats?since=7d&group_by=day&model=gpt-4o") as r:
        gpt_daily = {g["key"]: g for g in (await r.json())["data"]["groups"]}
    async with console(loaded.url) as browser:
        page = await browser.get("/console/")
    chart = chart_of(page.text)
    assert chart["days"] == [g["key"] for g in daily]
    assert chart["volume"] == [g["requests"] for g in daily]
    assert [line["model"] for line in chart["series"]] == ["gpt-4o", "claude-sonnet-4-5"]
    gpt = chart["series"][0]
    for day, positive, low, high in zip(chart["days"], gpt["rate"], gpt["low"], gpt["high"], strict=True):
        group = gpt_daily.get(day, {})
        assert (positive, low, high) == (
            group.get("positive_rate"),
            group.get("positive_rate_low"),
            group.get("positive_rate_high"),
        )
    assert '<div id="chart"' in page.text and "overview-chart.js" in page.text and "uPlot.iife.min.js" in page.text


async def test_chart_json_cannot_close_its_script_element(gateway: Gateway) -> None:
    model = "</script><script>alert(1)</script>"
    await gateway.app[WRITER].submit([row("evil", when=ago(minutes=5), model=model)])
    async with console(gateway.url) as browser:
        page = await browser.get("/console/")
    assert page.status == 200
    assert "<script>alert(1)" not in page.text
    assert chart_of(page.text)["series"][0]["model"] == model  # escaped inside, the same string once parsed
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # and in the table, as text


async def test_open_regressions_link_to_their_recent_requests(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(analysis={"min_ratings": 5})
    ops: list[Any] = []
    for i in range(20):
        ops += [row(f"old{i}", when=ago(days=6, minutes=i), model="m-regress"), rate(f"old{i}", True)]
        ops += [row(f"new{i}", when=ago(days=1, minutes=i), model="m-regress"), rate(f"new{i}", i < 2)]
    await gateway.app[WRITER].submit(ops)
    async with console(gateway.url) as browser:
        page = await browser.get("/console/")
        text = text_of(page.text)
        assert "model m-regress: positive rate fell from 100.0% (n=20) to 10.0% (n=20)" in text
        link = re.search(
            r'<a href="(/console/requests\?model=m-regress&amp;since=[^"]+)">its recent requests</a>', page.text
        )
        assert link is not None
        recent = await browser.get(link.group(1).replace("&amp;", "&"))
    assert sorted(listed(recent.text)) == sorted(f"new{i}" for i in range(20))
