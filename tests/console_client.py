"""A browser without a browser for the console's handler tests: cookies kept, forms posted with their token."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    text: str
    headers: Any
    url: str

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no CSRF token on {self.url}"
        return html.unescape(found.group(1))


class Console:
    """One browser: its own cookie jar (IP cookies allowed: the gateway is on 127.0.0.1)."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = session

    async def get(self, path: str, **kwargs: Any) -> Page:
        async with self.http.get(self.base + path, **kwargs) as r:
            return Page(r.status, await r.text(), r.headers, str(r.url))

    async def post(self, path: str, form: dict[str, str], follow: bool = True, **kwargs: Any) -> Page:
        async with self.http.post(self.base + path, data=form, allow_redirects=follow, **kwargs) as r:
            return Page(r.status, await r.text(), r.headers, str(r.url))

    async def submit(self, page_path: str, action: str, form: dict[str, str], follow: bool = True) -> Page:
        """Load ``page_path`` and post ``form`` to ``action`` with the token that page carries, as a browser would."""
        page = await self.get(page_path)
        return await self.post(action, {"csrf": page.csrf, **form}, follow=follow)

    async def login(self, key: str) -> Page:
        return await self.submit("/console/login", "/console/login", {"key": key})

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


@asynccontextmanager
async def console(base: str) -> AsyncIterator[Console]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Console(base, session)


def text_of(page_html: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html)).split())
