"""The console in a real Chromium, against a real ``feedgate serve`` with keys and demo data.

Each test fills a store with ``feedgate demo``, logs one call with hostile strings through the gateway (the
openai SDK against the fake upstream), starts ``feedgate serve`` on it as a process, and uses the console as a
reviewer would: by label, role and accessible name, with the mouse and the keyboard. Every page must end with
no CSP violation, no uncaught error and no console error (``tests/browser.py`` listens for them).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest

from browser import BrowserPage, PageOpener
from fakes import FakeUpstream, openai_app, serve_app
from serving import serving

try:
    from playwright.async_api import Page, expect
except ImportError:  # the test extra brings it; an older environment skips these tests rather than fail
    pytest.skip("the playwright package is not installed (pip install -e '.[test]')", allow_module_level=True)

KEY = "fg-console-browser-key-0123456789"
HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(2)> <a href="javascript:alert(3)">click</a>'
HOSTILE_USER = "<img src=x onerror=alert(4)>"


@dataclass
class Served:
    url: str
    hostile_id: str

    async def feedback(self, request_id: str) -> dict[str, object]:
        """What ``GET /v1/request/{id}/feedback`` answers, with the key."""
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {KEY}"}
            async with http.get(f"{self.url}/v1/request/{request_id}/feedback", headers=headers) as r:
                assert r.status == 200
                data: dict[str, object] = (await r.json())["data"]
                return data


async def _demo(database_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedgate", "demo", "--requests", "1000", "--database-url", database_url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    await _demo(database_url)
    async with serve_app(openai_app(FakeUpstream())) as upstream:
        env = {"FEEDGATE_DATABASE_URL": database_url, "FEEDGATE_API_KEYS": KEY, "FEEDGATE_OPENAI_BASE_URL": upstream}
        async with serving(env) as (url, _proc):
            headers = {"Helicone-Auth": f"Bearer {KEY}", "Helicone-User-Id": HOSTILE_USER}
            async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", default_headers=headers) as api:
                raw = await api.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"echo: {HOSTILE}"}]
                )
            request_id = raw.headers["helicone-id"]
            async with aiohttp.ClientSession() as http:
                body = {"rating": False, "comment": HOSTILE}
                feedback = f"{url}/v1/request/{request_id}/feedback"
                for _ in range(100):  # the row is written after the answer: wait until the API knows it
                    async with http.post(feedback, json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
                        if r.status == 201:
                            break
                    await asyncio.sleep(0.05)
            yield Served(url, request_id)


async def log_in(open_page: PageOpener, served: Served, path: str = "/console/") -> BrowserPage:
    opened = await open_page(served.url + path)
    page = opened.page
    await page.wait_for_url(f"{served.url}/console/login**")  # no session yet: every page asks to log in
    await page.get_by_label("feedgate key").fill(KEY)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(served.url + path)
    return opened


async def test_log_in_filter_open_rate_down_and_read_it_back(open_page: PageOpener, served: Served) -> None:
    opened = await log_in(open_page, served)
    page = opened.page
    # The overview's chart is drawn by its static script from the page's JSON.
    await expect(page.locator("#chart canvas").first).to_be_visible()
    await expect(page.locator("#chart")).to_have_attribute("data-drawn", "true")
    await page.get_by_role("link", name="Requests", exact=True).click()
    await page.get_by_label("Model").fill("gpt-4o-mini")
    await page.get_by_label("Rating").select_option("down")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(f"{served.url}/console/requests?model=gpt-4o-mini&rating=down")
    rows = page.locator("table.requests tbody tr")
    assert await rows.count() > 0
    for cell in await page.locator("table.requests tbody tr td:nth-child(3)").all_inner_texts():
        assert cell == "gpt-4o-mini"
    first = page.locator("a.open").first
    href = await first.get_attribute("href")
    assert href is not None and "model=gpt-4o-mini" in href
    request_id = href.split("/console/requests/")[1].split("?")[0]
    await first.click()
    await page.wait_for_url(f"**/console/requests/{request_id}?**")
    await page.get_by_label("Comment (optional)").fill("cites a policy that does not exist")
    await page.get_by_role("button", name="Rate down").click()
    await expect(page.locator("#feedback")).to_contain_text("cites a policy that does not exist")
    stored = await served.feedback(request_id)
    assert stored["rating"] is False and stored["comment"] == "cites a policy that does not exist"
    assert stored["user_id"] == "console"
    # A POST without the page's CSRF token is refused, even from the console's own page with its cookie.
    status = await page.evaluate("fetch('/console/logout', {method: 'POST'}).then((r) => r.status)")
    assert status == 403
    opened.problems.console_errors = [e for e in opened.problems.console_errors if "403" not in e]
    opened.problems.assert_none()


async def test_the_list_works_from_the_keyboard(open_page: PageOpener, served: Served) -> None:
    opened = await log_in(open_page, served, "/console/requests")
    page = opened.page
    links = page.locator("a.open")
    await page.keyboard.press("j")
    await expect(links.nth(0)).to_be_focused()
    await page.keyboard.press("j")
    await expect(links.nth(1)).to_be_focused()
    await page.keyboard.press("k")
    await page.keyboard.press("j")
    second = await links.nth(1).get_attribute("href")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{served.url}{second}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Request")
    # Tab starts at the skip link, which takes the focus past the navigation to the content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    opened.problems.assert_none()


async def test_hostile_logged_strings_are_text_and_run_nothing(open_page: PageOpener, served: Served) -> None:
    opened = await log_in(open_page, served, f"/console/requests/{served.hostile_id}")
    page = opened.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.reload()
    await expect(page.locator(".conversation")).to_contain_text(HOSTILE)
    await expect(page.locator("#feedback")).to_contain_text(HOSTILE)
    await expect(page.locator("main")).to_contain_text(HOSTILE_USER)
    await _nothing_ran(page)
    await page.goto(f"{served.url}/console/requests?rating=down")
    await expect(page.locator("table.requests")).to_contain_text(HOSTILE_USER)
    await _nothing_ran(page)
    assert dialogs == []
    opened.problems.assert_none()


async def _nothing_ran(page: Page) -> None:
    assert await page.locator("main img").count() == 0
    assert await page.locator("a[href^='javascript:' i]").count() == 0
    scripts = await page.locator("script:not([src]):not([type='application/json'])").count()
    assert scripts == 0


async def test_logout_ends_the_session(open_page: PageOpener, served: Served) -> None:
    opened = await log_in(open_page, served, "/console/requests")
    page = opened.page
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{served.url}/console/login")
    await page.goto(f"{served.url}/console/requests")
    await expect(page).to_have_url(f"{served.url}/console/login?next=%2Fconsole%2Frequests")
    cookies = await page.context.cookies()
    assert not [c for c in cookies if c["name"] == "feedgate_console_session"]
    opened.problems.assert_none()


async def test_make_a_dataset_from_a_filter_and_download_an_export(open_page: PageOpener, served: Served) -> None:
    opened = await log_in(open_page, served, "/console/requests")
    page = opened.page
    await page.get_by_label("Rating").select_option("up")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**/console/requests?rating=up")
    await page.get_by_label("Dataset name").fill("thumbs up")
    await page.get_by_role("button", name="Make a dataset").click()
    await page.wait_for_url("**/console/datasets/*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dataset thumbs up")
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Download openai-chat").click()
    download = await waiting.value
    path = await download.path()
    lines = Path(path).read_bytes().splitlines()
    assert lines and download.suggested_filename == "thumbs_up.openai-chat.jsonl"
    for line in lines:
        assert orjson.loads(line)["messages"][-1]["role"] == "assistant"
    opened.problems.assert_none()
