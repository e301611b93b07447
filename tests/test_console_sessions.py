"""``/console/sessions`` and ``/console/sessions/{id}`` through real HTTP, on both stores."""

from __future__ import annotations

import re

import pytest

from analysis_data import ago, rate, row, signal
from conftest import Gateway
from console_client import console, text_of
from feedgate.appkeys import WRITER
from feedgate.store.ops import PutFeedback, WriteOp


@pytest.fixture
async def sessions(either_gateway: Gateway) -> Gateway:
    ops: list[WriteOp] = [
        row("t1", when=ago(hours=3), session="chat-1", user="u1", question="first question", answer="first answer"),
        row("t2", when=ago(hours=2), session="chat-1", user="u1", question="second\nquestion", answer="second answer"),
        row("t3", when=ago(hours=1), session="chat-2", user="u2", model="claude-sonnet-4-5"),
        row("t4", when=ago(minutes=30), session="chat-3", user="u1"),
        row("t5", when=ago(minutes=10), user="u1"),  # no session: not listed
        rate("t1", True),
        rate("t2", False, comment="lost the thread"),
        signal("t2", "regenerated", False),
        PutFeedback("session", "chat-1", "explicit", False, comment="never solved it"),
        PutFeedback("session", "chat-2", "explicit", True),
    ]
    await either_gateway.app[WRITER].submit(ops)
    return either_gateway


def listed_sessions(page_html: str) -> list[str]:
    return re.findall(r'<a class="open" href="/console/(?:sessions/|requests\?[^"]*session=)([^"&]+)"', page_html)


async def test_sessions_newest_first_with_size_span_and_rating(sessions: Gateway) -> None:
    async with console(sessions.url) as browser:
        page = await browser.get("/console/sessions")
    assert page.status == 200
    assert listed_sessions(page.text) == ["chat-3", "chat-2", "chat-1"]
    rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)
    chat_1 = text_of(next(r for r in rows if "chat-1" in r))
    assert chat_1.startswith("chat-1 2 ") and chat_1.endswith("down")
    assert text_of(next(r for r in rows if "chat-2" in r)).endswith("up")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=u1", ["chat-3", "chat-1"]),
        ("model=claude-sonnet-4-5", ["chat-2"]),
        ("rating=down", ["chat-1"]),
        ("since=90m", ["chat-3", "chat-2"]),
        ("user=nobody", []),
    ],
)
async def test_sessions_take_the_list_filters(sessions: Gateway, query: str, expected: list[str]) -> None:
    async with console(sessions.url) as browser:
        page = await browser.get(f"/console/sessions?{query}")
    assert page.status == 200 and listed_sessions(page.text) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [("rating=maybe", "rating must be up, down or none"), ("before=nonsense", "not a page position")],
)
async def test_bad_session_filters_are_a_message(sessions: Gateway, query: str, message: str) -> None:
    async with console(sessions.url) as browser:
        page = await browser.get(f"/console/sessions?{query}")
    assert page.status == 400 and message in text_of(page.text)


async def test_session_pages_walk_every_session_once(either_gateway: Gateway) -> None:
    # Sessions sharing a last moment are told apart by their ID.
    ops: list[WriteOp] = [row(f"p{i}", when=ago(minutes=i // 2), session=f"s{i:03d}") for i in range(70)]
    await either_gateway.app[WRITER].submit(ops)
    seen: list[str] = []
    async with console(either_gateway.url) as browser:
        path: str | None = "/console/sessions"
        while path is not None:
            page = await browser.get(path)
            assert page.status == 200
            seen += listed_sessions(page.text)
            older = re.search(r'<a href="(/console/sessions\?[^"]+)" rel="next">Older</a>', page.text)
            path = older.group(1).replace("&amp;", "&") if older else None
    assert sorted(seen) == sorted(f"s{i:03d}" for i in range(70)) and len(seen) == 70


async def test_one_session_shows_its_turns_in_order_with_their_feedback(sessions: Gateway) -> None:
    async with console(sessions.url) as browser:
        page = await browser.get("/console/sessions/chat-1")
        missing = await browser.get("/console/sessions/chat-404")
        opened = await browser.get("/console/requests/t2")
    assert page.status == 200
    text = text_of(page.text)
    assert "Session rating: down · “never solved it” · 2 turns" in text
    assert text.index("first question") < text.index("second question") < text.index("second answer")
    assert '<div class="text">second\nquestion</div>' in page.text
    assert "rated down · “lost the thread” regenerated" in text and "rated up" in text
    # Each turn opens its request with the session as the list, so prev/next walk the session.
    assert 'href="/console/requests/t1?session=chat-1"' in page.text
    assert missing.status == 404 and "No logged request carries session ID chat-404" in text_of(missing.text)
    assert 'href="/console/sessions/chat-1">Its session (chat-1)</a>' in opened.text


async def test_a_session_id_no_path_can_hold_links_to_the_list(gateway: Gateway) -> None:
    await gateway.app[WRITER].submit(row("odd", when=ago(minutes=1), session="<b>a b</b>"))
    async with console(gateway.url) as browser:
        listing = await browser.get("/console/sessions")
        opened = await browser.get("/console/requests/odd")
    assert 'href="/console/requests?session=%3Cb%3Ea+b%3C%2Fb%3E"' in listing.text
    assert "<b>a b</b>" not in listing.text and "&lt;b&gt;a b&lt;/b&gt;" in listing.text
    assert 'href="/console/requests?session=%3Cb%3Ea+b%3C%2Fb%3E">Its session' in opened.text
