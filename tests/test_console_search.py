"""The request list's text search (``q``) through real HTTP on both stores: what it finds in prompts and
answers, with the other filters and cursor pages, its bound, and bad or hostile values; and the search's
reads on both stores, bodies that are not UTF-8 included."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from analysis_data import row
from conftest import Gateway
from console_client import console, text_of
from feedgate.appkeys import WRITER
from feedgate.console import listing
from feedgate.store.filters import compile_filter
from feedgate.store.ops import WriteOp
from feedgate.store.protocol import Store
from feedgate.store.reads.search import adjacent_match, search_before
from test_store_contract import row as store_row

QUESTIONS = {
    "walrus": ("Where does the Walrus live?", "In the Arctic."),
    "platypus": ("Which mammal lays eggs?", "The PLATYPUS does."),
    "percent": ("Is 50% off a good deal?", "It depends on snake_case prices."),
    "plain": ("Is 50 off a good deal?", "It depends on snakeXcase prices."),
    "claude": ("Where does the walrus sleep?", "On ice."),
}


def ago(**delta: float) -> datetime:
    """Before the time of the call, not of the import (``analysis_data.ago``): ``until=8m`` in a test run
    minutes after the import must still cut between the rows as the test placed them."""
    return datetime.now(UTC) - timedelta(**delta)


@pytest.fixture
async def searchable(either_gateway: Gateway) -> Gateway:
    ops: list[WriteOp] = []
    for minutes, (request_id, (question, answer)) in enumerate(QUESTIONS.items()):
        model = "claude-sonnet-4-5" if request_id == "claude" else "gpt-4o"
        ops.append(row(request_id, when=ago(minutes=10 - minutes), model=model, question=question, answer=answer))
    await either_gateway.app[WRITER].submit(ops)
    return either_gateway


def listed(page_html: str) -> list[str]:
    return re.findall(r'<a class="open" href="/console/requests/([^"?]+)', page_html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=walrus", ["claude", "walrus"]),  # in the prompt, whatever its case
        ("q=WALRUS", ["claude", "walrus"]),
        ("q=platypus", ["platypus"]),  # only in the answer
        ("q=Arctic", ["walrus"]),
        ("q=50%25", ["percent"]),  # a literal %, not a wildcard
        ("q=%25", ["percent"]),
        ("q=e_c", ["percent"]),  # a literal _, not any one character
        ("q=%5C", []),  # a backslash is itself too
        ("q=walrus&model=gpt-4o", ["walrus"]),
        ("q=walrus&model=claude-sonnet-4-5&since=1h", ["claude"]),
        ("q=walrus&until=8m", ["walrus"]),
        ("q=narwhal", []),
    ],
)
async def test_the_search_finds_text_in_prompts_and_answers(
    searchable: Gateway, query: str, expected: list[str]
) -> None:
    async with console(searchable.url) as browser:
        page = await browser.get(f"/console/requests?{query}")
    assert page.status == 200, text_of(page.text)
    assert listed(page.text) == expected
    if not expected:
        assert "No logged request matches these filters." in page.text
    assert "looked at the" not in page.text  # far below the bound


async def test_the_search_is_in_the_form_and_the_links(searchable: Gateway) -> None:
    async with console(searchable.url) as browser:
        page = await browser.get("/console/requests?q=walrus&model=gpt-4o")
        opened = await browser.get("/console/requests/claude?q=walrus")
    assert '<label for="q">Text in prompt or answer</label>' in page.text
    assert 'id="q" name="q" type="search" value="walrus"' in page.text
    assert 'href="/console/requests/walrus?q=walrus&amp;model=gpt-4o"' in page.text  # the request page keeps it
    # No dataset from a search: the dataset's filter could not hold it, so it would not be what the list shows.
    assert 'action="/console/datasets"' not in page.text and "take q off to make one" in text_of(page.text)
    # Prev/next of a request opened from a search walk the matches only: "percent" and "plain" lie between.
    assert opened.status == 200
    assert 'href="/console/requests/walrus?q=walrus"' in opened.text
    assert "/console/requests/plain?" not in opened.text and "/console/requests/percent?" not in opened.text


async def test_cursor_pages_keep_the_search(either_gateway: Gateway) -> None:
    ops: list[WriteOp] = [row(f"m{i:03d}", when=ago(minutes=2 * i), question=f"needle {i}") for i in range(60)]
    ops += [row(f"o{i:03d}", when=ago(minutes=2 * i + 1), question=f"hay {i}") for i in range(60)]
    await either_gateway.app[WRITER].submit(ops)
    seen: list[str] = []
    async with console(either_gateway.url) as browser:
        path: str | None = "/console/requests?q=Needle"
        while path is not None:
            page = await browser.get(path)
            assert page.status == 200
            seen += listed(page.text)
            older = re.search(r'<a href="(/console/requests\?[^"]+)" rel="next">Older</a>', page.text)
            path = older.group(1).replace("&amp;", "&") if older else None
            if path is not None:
                assert "q=Needle" in path and "before=" in path
    assert seen == [f"m{i:03d}" for i in range(60)]


async def test_the_page_says_when_the_bound_stopped_the_search(
    either_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "SEARCH_CAP", 4)  # 50,000 rows would make a slow test of the same code
    questions = ["needle" if i in (1, 6) else "hay" for i in range(10)]
    ops: list[WriteOp] = [row(f"r{i}", when=ago(minutes=i), question=q) for i, q in enumerate(questions)]
    await either_gateway.app[WRITER].submit(ops)
    async with console(either_gateway.url) as browser:
        first = await browser.get("/console/requests?q=needle")
        assert listed(first.text) == ["r1"]
        text = text_of(first.text)
        assert "The text search looked at the 4 newest requests the other filters select and stopped there" in text
        further = re.search(r'<a href="(/console/requests\?[^"]+)">search the next 4 older requests</a>', first.text)
        assert further is not None
        second = await browser.get(further.group(1).replace("&amp;", "&"))
        assert listed(second.text) == ["r6"] and "from this page on" in text_of(second.text)
        onward = re.findall(r'href="(/console/requests\?q=needle&amp;before=[^"]+)"', second.text)
        third = await browser.get(onward[-1].replace("&amp;", "&"))
    assert listed(third.text) == [] and "No logged request matches these filters." in third.text
    assert "looked at the" not in third.text  # r8 and r9: the end of the list, not the bound


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=" + "x" * 201, "q: the text search takes 1 to 200 characters, not 201"),
        ("q=a%00b", "q: must not contain the NUL character"),
        ("q=a&q=b", "q may be given once"),
    ],
)
async def test_bad_searches_are_a_clear_message(searchable: Gateway, query: str, message: str) -> None:
    async with console(searchable.url) as browser:
        page = await browser.get(f"/console/requests?{query}")
    assert page.status == 400
    assert message in text_of(page.text) and 'role="alert"' in page.text
    assert listed(page.text) == [] and 'action="/console/requests"' in page.text


async def test_the_longest_search_is_taken(searchable: Gateway) -> None:
    async with console(searchable.url) as browser:
        page = await browser.get("/console/requests?q=" + "x" * 200)
    assert page.status == 200 and "No logged request matches these filters." in page.text


async def test_pages_that_cannot_bound_a_search_refuse_it(searchable: Gateway) -> None:
    async with console(searchable.url) as browser:
        sessions = await browser.get("/console/sessions?q=walrus")
        listed_page = await browser.get("/console/requests")
        made = await browser.post(
            "/console/datasets", {"csrf": listed_page.csrf, "name": "walruses", "list": "q=walrus"}
        )
    assert sessions.status == 400 and "the text search works on the request list only" in text_of(sessions.text)
    assert made.status == 400 and "the text search works on the request list only" in text_of(made.text)


async def test_a_hostile_search_is_shown_as_text(searchable: Gateway) -> None:
    async with console(searchable.url) as browser:
        page = await browser.get("/console/requests?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%20autofocus")
    assert page.status == 200
    assert "<script>alert(1)" not in page.text and '" autofocus' not in page.text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;&#34; autofocus"' in page.text
    assert 'q = <script>alert(1)</script>" autofocus' in text_of(page.text)  # its chip, as text


async def test_search_reads_on_both_stores(store: Store) -> None:
    """The bound counted from the cursor, neighbours among matches, and bodies no text decoding would take."""
    await store.apply(
        [
            store_row("latin1", 1, request_body=b'{"q": "caf\xe9 Needle"}', response_text=None),
            store_row("nul", 2, request_body=b'{"q": "\x00 Needle"}', response_text=None),
            store_row("hay", 3, request_body=b'{"q": "hay"}', response_text="hay"),
            store_row("answer", 4, request_body=b"\xff\xfe", response_text="a nEEdle here"),
        ]
    )
    where = compile_filter("all", store.dialect).where
    found = await search_before(store, where, "Needle", None, 10)
    assert [r["request_id"] for r in found.rows] == ["answer", "nul", "latin1"] and found.stopped_at is None
    assert [r["request_id"] for r in (await search_before(store, where, "caf\xe9", None, 10)).rows] == []
    folded = [r["request_id"] for r in (await search_before(store, where, "NEEDLE", None, 10)).rows]
    assert folded[0] == "answer" and folded[-1] == "latin1"  # "nul" too on SQLite: PostgreSQL keeps its case
    # The bound: the 2 newest rows ("answer", "hay"), then the 2 after them, and no further: none are left.
    bounded = await search_before(store, where, "Needle", None, 10, cap=2)
    assert [r["request_id"] for r in bounded.rows] == ["answer"]
    assert bounded.stopped_at is not None
    rest = await search_before(store, where, "Needle", bounded.stopped_at, 10, cap=2)
    assert [r["request_id"] for r in rest.rows] == ["nul", "latin1"] and rest.stopped_at is None
    position = (found.rows[0]["datetime_utc"], found.rows[0]["id"])
    assert await adjacent_match(store, where, "Needle", position, newer=False) == "nul"
    assert await adjacent_match(store, where, "Needle", position, newer=False, cap=1) is None
