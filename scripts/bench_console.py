"""How fast the console's pages answer on a big store: p50 and p95 per page, against the issue's budgets.

    feedgate demo --requests 1000000 --database-url sqlite:///demo.db     # once: about 3 GB, some minutes
    python scripts/bench_console.py --database-url sqlite:///demo.db [--repeat 20]

Starts feedgate in this process on a free port (console open: no keys, so no login in the figures), then
asks each page ``--repeat`` times over loopback and prints the median and the 95th percentile of the
time to the last byte. Filter values (a model, a user, a session, a property, a signal, a score) are taken
from the store's own newest requests, so the script works on any store. Budgets (issue #16, at a million
requests on SQLite): the request list's first page with any one filter, p95 under 300 ms; a request's
page under 100 ms; the overview with its chart under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from feedgate.app import create_app
from feedgate.config import load_settings

BUDGETS_MS = {"list": 300.0, "request": 100.0, "overview": 1000.0}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def timed(http: aiohttp.ClientSession, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        async with http.get(url) as answer:
            await answer.read()
            if answer.status != 200:
                raise SystemExit(f"{url} answered {answer.status}")
        out.append((time.perf_counter() - start) * 1000.0)
    return out


async def pages(http: aiohttp.ClientSession, base: str) -> list[tuple[str, str]]:
    """(budget kind, path) for every page measured, with filter values found in the store."""
    async with http.get(f"{base}/console/requests") as answer:
        first = await answer.text()

    def found(pattern: str) -> str:
        match = re.search(pattern, first)
        if match is None:
            raise SystemExit(f"the newest requests have no value for {pattern!r}: use a demo store")
        return match.group(1).replace("&amp;", "&")

    model = found(r"requests\?model=([^\"&]+)\"")
    user = found(r"requests\?user=([^\"&]+)\"")
    session = found(r"requests\?session=([^\"&]+)\"")
    request_id = found(r'class="open" href="/console/requests/([^"?]+)"')
    async with http.get(f"{base}/console/requests/{request_id}") as answer:
        page = await answer.text()
    prop = found_in(page, r"requests\?property=([^\"&]+)\"")
    filters = [
        f"model={model}",
        f"user={user}",
        f"session={session}",
        "rating=down",
        "rating=none",
        "signal=regenerated",
        f"property={prop}",
        f"score={quote('helpfulness>=0.5')}",
        "status=2xx",
        "status=5xx",
        "has_comment=yes",
        "since=24h",
    ]
    out = [("list", "/console/requests")] + [("list", f"/console/requests?{f}") for f in filters]
    out += [
        ("request", f"/console/requests/{request_id}"),
        ("request", f"/console/requests/{request_id}?rating=down"),
        ("request", f"/console/requests/{request_id}?{urlencode({'model': model.replace('%2F', '/')})}"),
        ("overview", "/console/"),
        ("overview", "/console/?since=30d"),
        ("other", "/console/quality"),
        ("other", "/console/insights"),
        ("other", "/console/sessions"),
    ]
    return out


def found_in(page: str, pattern: str) -> str:
    match = re.search(pattern, page)
    return match.group(1).replace("&amp;", "&") if match else "feature:support"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a store, e.g. one feedgate demo filled")
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (default 20)")
    parser.add_argument(
        "--properties",
        default="feature",
        help="analysis.properties, comma-separated: the properties the store's rollups keep (default feature)",
    )
    args = parser.parse_args()
    properties = [name for name in args.properties.split(",") if name]
    settings = load_settings(
        environ={}, overrides={"database": {"url": args.database_url}, "analysis": {"properties": properties}}
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            measured = await pages(http, base)
            print(f"{'page':70s} {'p50 ms':>8s} {'p95 ms':>8s}  budget")
            for kind, path in measured:
                await timed(http, base + path, 1)  # warm: templates compiled, pages cached by the OS
                values = await timed(http, base + path, args.repeat)
                budget = BUDGETS_MS.get(kind)
                verdict = "" if budget is None else ("ok" if p95(values) <= budget else f"OVER {budget:.0f}")
                print(f"{path[:70]:70s} {statistics.median(values):8.1f} {p95(values):8.1f}  {verdict}")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
