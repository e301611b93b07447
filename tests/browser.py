"""Real-browser tests: Debian's Chromium driven by Playwright's async API, on the test's own event loop.

A pytest plugin (``pytest_plugins`` in conftest.py). Tests ask for:

- ``open_page(url)``: a fresh browser context and page at ``url``, whose ``problems`` collect every console
  error, uncaught page error and Content-Security-Policy violation (the ``securitypolicyviolation`` event,
  heard from the first script on, before the page's own), so a test can assert none happened;
- ``page_host``: a small web server on another port (so another origin than a gateway) serving the pages
  and files a test puts on it, with the headers it gives (a strict CSP, above all).

Chromium is ``/usr/bin/chromium`` (Debian's package; ``.ci/run`` installs it) or the executable named by
``FEEDGATE_TEST_CHROMIUM``. Without it, or without the playwright package, browser tests skip saying so.
Playwright downloads no browser here: it launches that executable. Its async API is the one that fits:
pytest-aiohttp runs each test in an event loop, where the sync API refuses to run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from fakes import serve_app

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page

CHROMIUM_ENV = "FEEDGATE_TEST_CHROMIUM"
DEBIAN_CHROMIUM = "/usr/bin/chromium"

# Runs in every page before its own scripts (injected by the browser, so no CSP applies to it), and reports
# each CSP violation through a function Playwright exposes to the page.
_LISTEN_FOR_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__feedgateTestCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`
  );
}, true);
"""


@dataclass
class Problems:
    """What went wrong in a page, as the browser saw it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def assert_none(self) -> None:
        assert self.csp_violations == [], f"CSP violations: {self.csp_violations}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


@dataclass
class BrowserPage:
    page: Page
    problems: Problems


PageOpener = Callable[[str], Awaitable[BrowserPage]]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium to launch. Session-scoped, so it reads the environment before ``clean_environ`` empties it."""
    path = os.environ.get(CHROMIUM_ENV) or DEBIAN_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(
            f"no Chromium at {path} (apt-get install chromium, or set {CHROMIUM_ENV}): browser tests skipped",
        )
    return path


@pytest.fixture
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]'): browser tests skipped")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def open_page(browser: Browser) -> PageOpener:
    async def open_at(url: str) -> BrowserPage:
        context = await browser.new_context()
        problems = Problems()

        def on_csp_violation(description: str) -> None:
            problems.csp_violations.append(description)

        await context.expose_function("__feedgateTestCspViolation", on_csp_violation)
        await context.add_init_script(_LISTEN_FOR_CSP)
        page = await context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            url = message.location.get("url", "?")
            # The browser asks every origin for its icon by itself; a 404 there is no page's doing.
            if message.type == "error" and not url.endswith("/favicon.ico"):
                problems.console_errors.append(f"{message.text} ({url})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
        await page.goto(url)
        return BrowserPage(page, problems)

    return open_at  # each context closes with the browser


@dataclass
class PageHost:
    """A web server on its own port: an origin other than any gateway's, for pages that embed one."""

    url: str
    files: dict[str, tuple[bytes, str, dict[str, str]]]

    def add(self, path: str, body: str, content_type: str = "text/html", headers: dict[str, str] | None = None) -> str:
        self.files[path] = (body.encode(), content_type, headers or {})
        return self.url + path


@pytest.fixture
async def page_host() -> AsyncIterator[PageHost]:
    files: dict[str, tuple[bytes, str, dict[str, str]]] = {}

    async def serve(request: web.Request) -> web.Response:
        if request.path not in files:
            raise web.HTTPNotFound()
        body, content_type, headers = files[request.path]
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    async with serve_app(app) as url:
        yield PageHost(url.rstrip("/"), files)
