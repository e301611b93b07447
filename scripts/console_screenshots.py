"""Remake the README's console screenshots from demo data: docs/console-overview.png and docs/console-request.png.

    python scripts/console_screenshots.py [--requests 20000] [--chromium /usr/bin/chromium]

Fills a store in a temporary directory with ``feedgate demo`` (fixed seed, so reruns show the same data
shifted to today), starts feedgate in this process on a free port, and photographs the overview and one
thumbs-down request with Playwright driving Chromium (Debian's ``chromium``; Playwright downloads nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from feedgate.app import create_app
from feedgate.config import load_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


async def demo(database_url: str, requests: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedgate", "demo", "--requests", str(requests), "--seed", "7",
        "--database-url", database_url, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if await proc.wait() != 0:
        raise SystemExit("feedgate demo failed")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'demo.db'}"
        await demo(database_url, args.requests)
        runner = web.AppRunner(create_app(load_settings(environ={}, overrides={"database": {"url": database_url}})))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/console/requests?rating=down&has_comment=yes") as answer:
                    found = re.search(r'class="open" href="(/console/requests/[^"]+)"', await answer.text())
            if found is None:
                raise SystemExit("no thumbs-down request with a comment in the demo data")
            request_path = found.group(1).replace("&amp;", "&")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=args.chromium, headless=True)
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(f"{base}/console/")
                await page.locator("#chart[data-drawn='true']").wait_for()
                await page.screenshot(path=str(DOCS / "console-overview.png"), full_page=False)
                await page.goto(base + request_path)
                await page.screenshot(path=str(DOCS / "console-request.png"), full_page=False)
                await browser.close()
        finally:
            await runner.cleanup()
    print(f"wrote {DOCS / 'console-overview.png'} and {DOCS / 'console-request.png'}")


if __name__ == "__main__":
    asyncio.run(main())
